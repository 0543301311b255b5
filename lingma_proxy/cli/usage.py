"""`python lingma_proxy.py usage [--since 7d] [--by day|model|client|account] [--json|--csv]`: what was spent.

It reads the ledger file (read-only) of the configured proxy, running or not.
"""

from __future__ import annotations

import csv
import sqlite3
import sys
import time

import ujson

from ..config import Config
from ..usage.ledger import db_path
from ..usage.report import TOTALS, UsageQueryError, open_for_reading, parse_since, totals


def run_usage(cfg: Config, since: str, by: str, output: str) -> int:
    """output: "table", "json" or "csv"."""
    path = db_path(cfg)
    try:
        since_ts = time.time() - parse_since(since)
        conn = open_for_reading(path)
        try:
            rows = totals(conn, since_ts, by) if conn is not None else []
        finally:
            if conn is not None:
                conn.close()
    except UsageQueryError as err:
        print(f"lingma-proxy usage: {err}", file=sys.stderr)
        return 2
    except sqlite3.Error as exc:
        print(f"lingma-proxy usage: cannot read {path}: {exc}", file=sys.stderr)
        return 1
    if output == "json":
        print(ujson.dumps(rows, ensure_ascii=False, indent=2))
    elif output == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([by, *TOTALS])
        writer.writerows([[row[by], *(_csv_cell(row[name]) for name in TOTALS)] for row in rows])
    elif not rows:
        print(f"no requests recorded in the last {since} ({path})")
    else:
        print("\n".join(usage_table(rows, by)))
    return 0


def usage_table(rows: list[dict], by: str) -> list[str]:
    """Aligned columns, numbers to the right, then a total line."""
    header = (by, "requests", "errors", "tokens in", "tokens out", "upstream", "p50 1st token")
    total = {name: sum(row[name] for row in rows) for name in TOTALS[:-1]}
    lines = [
        header,
        *(_cells(row[by] or "-", row) for row in rows),
        _cells("total", {**total, "first_token_p50_ms": None}),
    ]
    widths = [max(len(line[col]) for line in lines) for col in range(len(header))]
    return ["  ".join(_align(line, widths)) for line in lines]


def _align(line: tuple[str, ...], widths: list[int]) -> list[str]:
    """The key column to the left, the numbers to the right."""
    cells = zip(line, widths, strict=True)
    return [cell.ljust(width) if col == 0 else cell.rjust(width) for col, (cell, width) in enumerate(cells)]


def _cells(key: str, row: dict) -> tuple[str, ...]:
    p50 = row["first_token_p50_ms"]
    return (
        key,
        *(f"{row[name]:,}" for name in TOTALS[:-1]),
        "-" if p50 is None else f"{p50:,.0f} ms",
    )


def _csv_cell(value: float | None) -> str | float:
    return "" if value is None else value
