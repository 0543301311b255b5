"""Reading the ledger: totals grouped by day, model, client or account, and the status page's chart series.

Readers open the file read-only, each with a connection of its own: in WAL mode they never wait for the
writer, and the writer never waits for them.
"""

from __future__ import annotations

import datetime
import math
import re
import sqlite3
import time
from collections import defaultdict
from pathlib import Path

# The grouping key of each --by, as SQL over a row. A request that failed before a model was chosen
# counts under the model it asked for.
GROUPS = {
    "day": "date(ts, 'unixepoch', 'localtime')",
    "model": "CASE WHEN model_served != '' THEN model_served ELSE model_asked END",
    "client": "client",
    "account": "account",
}
TOTALS = ("requests", "errors", "input_tokens", "output_tokens", "upstream_tokens", "first_token_p50_ms")
_ERROR = "(status >= 400 OR error_type != '')"
_SINCE = re.compile(r"(\d{1,6})([mhdw])")
_UNIT_SEC = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class UsageQueryError(ValueError):
    """A --since or --by the ledger cannot answer; the message is one line."""


def parse_since(text: str) -> float:
    """A span such as 30m, 48h, 7d or 2w, in seconds."""
    found = _SINCE.fullmatch(text.strip())
    if not found:
        raise UsageQueryError(f"since must be a number and a unit (m, h, d or w), such as 7d; got {text!r}")
    return int(found.group(1)) * _UNIT_SEC[found.group(2)]


def group_sql(by: str) -> str:
    if by not in GROUPS:
        raise UsageQueryError(f"by must be one of {', '.join(GROUPS)}; got {by!r}")
    return GROUPS[by]


def open_for_reading(path: Path) -> sqlite3.Connection | None:
    """The ledger, read-only; None when nothing was ever recorded there."""
    if not path.is_file():
        return None
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        has_table = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'requests'").fetchone()
    except sqlite3.Error:
        conn.close()
        raise
    if not has_table:
        conn.close()
        return None
    return conn


def totals(conn: sqlite3.Connection, since_ts: float, by: str) -> list[dict]:
    """One row per group: the key under its own name (day, model, client or account), then TOTALS."""
    key = group_sql(by)
    sums = conn.execute(
        f"SELECT {key} AS k, COUNT(*), SUM({_ERROR}), SUM(input_tokens), SUM(output_tokens), SUM(upstream_tokens) "
        "FROM requests WHERE ts >= ? GROUP BY k",
        (since_ts,),
    ).fetchall()
    latencies = _grouped_latencies(conn, key, since_ts)
    rows = [
        {
            by: group,
            "requests": requests,
            "errors": errors,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "upstream_tokens": upstream_tokens,
            "first_token_p50_ms": percentile(latencies.get(group, []), 0.5),
        }
        for group, requests, errors, input_tokens, output_tokens, upstream_tokens in sums
    ]
    # Days read best in order; everything else biggest first.
    rows.sort(key=(lambda row: row["day"]) if by == "day" else (lambda row: (-row["requests"], row[by])))
    return rows


def _grouped_latencies(conn: sqlite3.Connection, key: str, since_ts: float) -> dict:
    """First-token times per group, sorted; SQLite has no percentile function."""
    grouped: dict = defaultdict(list)  # keyed by the group's value: text, or an hour as a number
    cursor = conn.execute(
        f"SELECT {key} AS k, first_token_ms FROM requests WHERE ts >= ? AND first_token_ms IS NOT NULL "
        "ORDER BY first_token_ms",
        (since_ts,),
    )
    for group, first_token_ms in cursor:
        grouped[group].append(first_token_ms)
    return grouped


def percentile(ordered: list[int], q: float) -> float | None:
    """The q-quantile of sorted values, interpolated between the two nearest (q=0.5 is the median)."""
    if not ordered:
        return None
    at = (len(ordered) - 1) * q
    low, high = math.floor(at), math.ceil(at)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def chart(conn: sqlite3.Connection | None, unit: str, count: int, now: float | None = None) -> dict:
    """The last `count` hours or days (unit "hour" or "day"), every bucket present, oldest first:
    requests and tokens (in + out) per model, and first-token p50/p95 over all models."""
    now = time.time() if now is None else now
    if unit == "hour":
        current = int(now // 3600) * 3600
        buckets: list = [current - 3600 * back for back in range(count - 1, -1, -1)]
        key, since_ts = "CAST(ts / 3600 AS INTEGER) * 3600", float(buckets[0])
    else:
        today = datetime.date.fromtimestamp(now)
        buckets = [(today - datetime.timedelta(days=back)).isoformat() for back in range(count - 1, -1, -1)]
        start = datetime.date.fromisoformat(buckets[0])
        key, since_ts = GROUPS["day"], time.mktime(start.timetuple())
    position = {bucket: index for index, bucket in enumerate(buckets)}
    series: dict[str, dict[str, list[int]]] = {}
    latencies: dict = {}
    if conn is not None:
        model = GROUPS["model"]
        per_model = conn.execute(
            f"SELECT {key} AS b, {model} AS m, COUNT(*), SUM(input_tokens + output_tokens) FROM requests "
            "WHERE ts >= ? GROUP BY b, m",
            (since_ts,),
        )
        for bucket, name, requests, tokens in per_model:
            if bucket in position:
                line = series.setdefault(name or "(no model)", {"requests": [0] * count, "tokens": [0] * count})
                line["requests"][position[bucket]] = requests
                line["tokens"][position[bucket]] = tokens
        latencies = _grouped_latencies(conn, key, since_ts)
    return {
        "buckets": buckets,
        "models": series,
        "first_token_p50_ms": [percentile(latencies.get(bucket, []), 0.5) for bucket in buckets],
        "first_token_p95_ms": [percentile(latencies.get(bucket, []), 0.95) for bucket in buckets],
    }
