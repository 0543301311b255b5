"""The run's table: one column per target, one block per workload, then the ratios beside their targets."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

COLUMNS = ("floor", "direct", "lingma-proxy", "litellm")
COLUMN_WIDTH = 18
LABEL_WIDTH = 42


@dataclass
class Check:
    name: str
    measured: float | None
    unit: str
    target: str
    passed: bool | None  # None: no target, or not measured in this run

    def line(self) -> str:
        verdict = {True: "PASS", False: "FAIL", None: "info" if self.measured is not None else "n/a "}[self.passed]
        value = "—" if self.measured is None else f"{_fmt(self.measured)} {self.unit}".rstrip()
        target = f"target {self.target}" if self.target else "no target"
        return f"  [{verdict}] {self.name:<58} {value:>12}   {target}"


def _get(results: dict, target: str, *path: str) -> float | None:
    value = results.get(target)
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value if isinstance(value, (int, float)) else None


def _difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _median(results: dict, name: str) -> float | None:
    """A ratio's median over the alternating rounds (rounds.py), when the run had them."""
    return _get(results, "rounds", name, "median")


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def checks(results: dict) -> list[Check]:
    """Issue 11's and issue 22's targets, from this run's numbers."""
    proxy = "lingma-proxy"
    added_ms = _difference(_get(results, proxy, "small_c1", "p50_ms"), _get(results, "direct", "small_c1", "p50_ms"))
    chunk_us = _difference(
        _get(results, proxy, "stream500", "per_chunk_us"), _get(results, "direct", "stream500", "per_chunk_us")
    )
    ttfb_ms = _difference(
        _get(results, proxy, "stream500", "first_token_p50_ms"),
        _get(results, "direct", "stream500", "first_token_p50_ms"),
    )
    floor_share = _median(results, "rps") or _ratio(
        _get(results, proxy, "small_c32", "rps"), _get(results, "floor", "small_c32", "rps")
    )
    floor_share_c1 = _ratio(_get(results, proxy, "small_c1", "rps"), _get(results, "floor", "small_c1", "rps"))
    upstream_share = _ratio(_get(results, proxy, "small_c32", "rps"), _get(results, "direct", "small_c32", "rps"))
    over_litellm = _median(results, "over_litellm") or _ratio(
        _get(results, proxy, "small_c32", "rps"), _get(results, "litellm", "small_c32", "rps")
    )
    errors = _get(results, proxy, "burst200", "errors")
    rss = _get(results, proxy, "process", "rss_peak_200_streams_mb")
    rss_idle = _get(results, proxy, "process", "rss_idle_mb")
    floor_cpu = _get(results, "floor", "small_c32", "cpu_us", "server")
    proxy_cpu = _median(results, "proxy_cpu") or _ratio(
        _get(results, proxy, "small_c32", "cpu_us", "server"), floor_cpu
    )
    simulator_cpu = _median(results, "simulator_cpu") or _ratio(
        _get(results, proxy, "small_c32", "cpu_us", "simulator"), floor_cpu
    )
    chunk_cpu = _median(results, "chunk_cpu_us") or _get(results, proxy, "stream500", "cpu_us_per_chunk", "server")

    rounds = _get(results, "rounds", "rounds")
    in_rounds = f", median of {rounds} rounds" if rounds else ""
    litellm_rounds = in_rounds if _median(results, "over_litellm") else ""

    def check(
        name: str, value: float | None, unit: str, target: str, ok: Callable[[float], bool] | None = None
    ) -> Check:
        return Check(name, value, unit, target, None if value is None or ok is None else ok(value))

    return [
        check("added latency per small request, p50 (proxy − direct)", added_ms, "ms", "< 2 ms", lambda v: v < 2),
        check("per-chunk streaming overhead (proxy − direct)", chunk_us, "µs", "< 50 µs", lambda v: v < 50),
        check("first-token overhead, 500-chunk stream (proxy − direct)", ttfb_ms, "ms", ""),
        check(f"proxy CPU per request ÷ floor's, c=32{in_rounds}", proxy_cpu, "×", "≤ 3", lambda v: v <= 3),
        check(f"simulator CPU per request ÷ floor's{in_rounds}", simulator_cpu, "×", "≤ 2.5", lambda v: v <= 2.5),
        check(f"proxy CPU per chunk, 500-chunk stream{in_rounds}", chunk_cpu, "µs", "≤ 25 µs", lambda v: v <= 25),
        check(f"proxy rps ÷ floor rps, c=32{in_rounds}", floor_share, "×", "≥ 0.25", lambda v: v >= 0.25),
        check("proxy rps ÷ floor rps, c=1", floor_share_c1, "×", ""),
        check("proxy rps ÷ direct-upstream rps, c=32", upstream_share, "×", "≥ 0.8", lambda v: v >= 0.8),
        check(f"proxy rps ÷ LiteLLM rps, c=32{litellm_rounds}", over_litellm, "×", "≥ 10", lambda v: v >= 10),
        check("errors in 200 concurrent streams", errors, "", "0", lambda v: v == 0),
        check("proxy RSS idle", rss_idle, "MB", "≤ 80 MB", lambda v: v <= 80),
        check("proxy RSS at 200 streams (peak)", rss, "MB", "< 150 MB", lambda v: v < 150),
    ]


def _fmt(value: float | None, digits: int | None = None) -> str:
    """Integers as they are; floats with fewer decimals the larger they get (three significant-ish digits)."""
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    if digits is None:
        digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return f"{value:,.{digits}f}"


def _pair(a: float | None, b: float | None) -> str:
    return "—" if a is None and b is None else f"{_fmt(a)} / {_fmt(b)}"


def _cpu(r: dict, key: str) -> str:
    """CPU µs of the server process / of the simulator behind it, where each was measured."""
    spent = r.get(key) or {}
    return _pair(spent.get("server"), spent.get("simulator"))


# (label, how to read the cell from one target's results)
_ROWS: list[tuple[str, list[tuple[str, Callable[[dict], str]]]]] = [
    (
        "small non-stream, c=1",
        [
            ("requests/s", lambda r: _fmt(r.get("rps"))),
            ("p50 / p99 ms", lambda r: _pair(r.get("p50_ms"), r.get("p99_ms"))),
        ],
    ),
    (
        "small non-stream, c=32",
        [
            ("requests/s", lambda r: _fmt(r.get("rps"))),
            ("p50 / p99 ms", lambda r: _pair(r.get("p50_ms"), r.get("p99_ms"))),
            ("CPU µs per request, server / simulator", lambda r: _cpu(r, "cpu_us")),
        ],
    ),
    (
        "stream, 500 chunks, c=1",
        [
            ("first token p50 ms", lambda r: _fmt(r.get("first_token_p50_ms"))),
            ("per chunk µs (total − first token) / 500", lambda r: _fmt(r.get("per_chunk_us"))),
            ("CPU µs per chunk, server / simulator", lambda r: _cpu(r, "cpu_us_per_chunk")),
            ("total p50 ms", lambda r: _fmt(r.get("p50_ms"))),
        ],
    ),
    (
        "200 concurrent streams, 100 chunks each",
        [
            ("errors", lambda r: _fmt(r.get("errors"))),
            (
                "first token p50 / p99 ms (from connect)",
                lambda r: _pair(r.get("first_token_p50_ms"), r.get("first_token_p99_ms")),
            ),
            ("  of which TCP connect, p99 ms", lambda r: _fmt(r.get("connect_p99_ms"))),
            ("all done in s", lambda r: _fmt(r.get("wall_s"))),
        ],
    ),
    (
        "1 MB prompt, non-stream, c=1",
        [
            ("p50 / p99 ms", lambda r: _pair(r.get("p50_ms"), r.get("p99_ms"))),
        ],
    ),
    (
        "agent turn (Claude Code, ~49 KB, 12 tools), stream",
        [
            ("first token p50 ms", lambda r: _fmt(r.get("first_token_p50_ms"))),
            ("total p50 / p99 ms", lambda r: _pair(r.get("p50_ms"), r.get("p99_ms"))),
        ],
    ),
]

_WORKLOAD_KEYS = ["small_c1", "small_c32", "stream500", "burst200", "big1mb", "agent"]

_PROCESS_ROWS: list[tuple[str, str]] = [
    ("RSS idle MB", "rss_idle_mb"),
    ("RSS peak at 200 streams MB", "rss_peak_200_streams_mb"),
    ("RSS after the run MB", "rss_after_mb"),
    ("open fds before / after", ""),
]


def load_note(when: str) -> str:
    """Other processes on the machine skew every column; say how busy it was."""
    one, five, _ = os.getloadavg()
    busy = " — the machine was busy: treat the numbers as noisy" if one > 1.0 else ""
    return f"load average {when}: {one:.2f} (1 min), {five:.2f} (5 min){busy}"


def machine_line() -> str:
    model = ""
    try:
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    except OSError:
        pass
    cpu = f"{os.cpu_count()} cores ({model or platform.machine()})"
    return f"{cpu}, Python {platform.python_version()}, {platform.system()}"


_ROUND_ROWS = [
    ("proxy CPU per request ÷ floor's, c=32", "proxy_cpu"),
    ("simulator CPU per request ÷ floor's", "simulator_cpu"),
    ("proxy rps ÷ floor rps, c=32", "rps"),
    ("proxy CPU µs per chunk, 500-chunk stream", "chunk_cpu_us"),
    ("  pinned, one core (chunks in batches)", "chunk_cpu_us_batched"),
    ("    bare asyncio relay, same placement", "chunk_floor_us_batched"),
    ("    proxy ÷ bare relay", "chunk_over_floor_batched"),
    ("  pinned, two cores (chunk per wake-up)", "chunk_cpu_us_alone"),
    ("    bare asyncio relay, same placement", "chunk_floor_us_alone"),
    ("    proxy ÷ bare relay", "chunk_over_floor_alone"),
    ("proxy rps ÷ LiteLLM rps, c=32", "over_litellm"),
]


def _rounds_lines(rounds: dict | None) -> list[str]:
    """The alternating rounds (rounds.py): each ratio's median, and the lowest and highest round beside it."""
    if not rounds:
        return []
    title = f"floor, lingma-proxy (and LiteLLM) in {rounds['rounds']} alternating rounds: median (lowest – highest)"
    lines = ["", title]
    for label, key in _ROUND_ROWS:
        if key in rounds:
            spread = rounds[key]
            value = f"{_fmt(spread['median'])} ({_fmt(spread['min'])} – {_fmt(spread['max'])})"
            lines.append(f"  {label:<{LABEL_WIDTH - 2}}{value:>{COLUMN_WIDTH * 2}}")
    return lines


def table(results: dict, notes: list[str]) -> str:
    columns = [c for c in COLUMNS if c in results]
    header = f"{'workload / metric':<{LABEL_WIDTH}}" + "".join(f"{c:>{COLUMN_WIDTH}}" for c in columns)
    lines = [header, "-" * len(header)]
    for (title, metrics), key in zip(_ROWS, _WORKLOAD_KEYS, strict=False):
        lines.append(title)
        for label, cell in metrics:
            cells = [cell(results[c].get(key) or {}) if results[c].get(key) else "—" for c in columns]
            lines.append(f"  {label:<{LABEL_WIDTH - 2}}" + "".join(f"{v:>{COLUMN_WIDTH}}" for v in cells))
    lines.append("server process (VmRSS from /proc, the server's own process only)")
    for label, key in _PROCESS_ROWS:
        cells = []
        for c in columns:
            process = results[c].get("process") or {}
            cells.append(
                _pair(process.get("fds_before"), process.get("fds_after")) if not key else _fmt(process.get(key))
            )
        lines.append(f"  {label:<{LABEL_WIDTH - 2}}" + "".join(f"{v:>{COLUMN_WIDTH}}" for v in cells))
    errors = [
        f"  {c} {key}: {results[c][key]['first_error']}"
        for c in columns
        for key in _WORKLOAD_KEYS
        if isinstance(results[c].get(key), dict) and results[c][key].get("first_error")
    ]
    if errors:
        lines += ["", "first error per workload:"] + errors
    lines += _rounds_lines(results.get("rounds"))
    lines += ["", "ratios and their targets:"] + [c.line() for c in checks(results)]
    lines += [""] + [f"note: {note}" for note in notes]
    return "\n".join(lines)
