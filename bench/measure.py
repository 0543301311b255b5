"""Numbers from samples and from /proc: percentiles, a run's summary, a process's RSS, CPU time and open fds."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from pathlib import Path

from httpclient import Run


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def summarize(run: Run) -> dict:
    """requests/s, latency and first-token percentiles (ms), errors and the first error seen."""
    ok = run.ok
    latencies = [s.latency for s in ok]
    first = [s.first_token for s in ok if s.first_token is not None]
    summary = {
        "requests": len(run.samples),
        "errors": len(run.errors),
        "rps": round(run.rps, 1),
        "p50_ms": ms(percentile(latencies, 50)),
        "p99_ms": ms(percentile(latencies, 99)),
        "first_token_p50_ms": ms(percentile(first, 50)),
        "first_token_p99_ms": ms(percentile(first, 99)),
        "wall_s": round(run.wall, 3),
    }
    connects = [s.connect for s in ok if s.connect]
    if connects:
        summary["connect_p99_ms"] = ms(percentile(connects, 99))
    events = [s.events for s in ok if s.events]
    if events:
        summary["events_per_stream"] = round(sum(events) / len(events), 1)
    if run.errors:
        summary["first_error"] = run.errors[0]
    return summary


def per_chunk_us(run: Run, chunks: int) -> float | None:
    """Median over streams of (total − first token) / chunks, in microseconds."""
    values = [(s.latency - s.first_token) / chunks for s in run.ok if s.first_token is not None]
    value = percentile(values, 50)
    return None if value is None else round(value * 1e6, 2)


def rss_mb(pid: int) -> float | None:
    """VmRSS of one process (not its children), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """CPU time of one process (every thread, not its children), in seconds.

    From the process's CPU-time clock, which counts in nanoseconds; /proc/<pid>/stat counts in 10 ms ticks,
    too coarse for a few thousand chunks of a few µs each. Its id is what clock_getcpuclockid(3) returns on
    Linux: (~pid << 3) | 2. Where that clock cannot be read, the /proc ticks."""
    try:
        return time.clock_gettime(((~pid) << 3) | 2)
    except OSError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the command name may hold spaces; fields 14 and 15 follow it
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds that named processes spend while in use: `with CpuMeter(pids) as cpu:`, then `cpu.spent`.

    Read from /proc before and after the load, so it counts every thread of the process and nothing of
    the load generator."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.spent: dict[str, float] = {}
        self._start: dict[str, float | None] = {}

    def __enter__(self) -> CpuMeter:
        self._start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        return self

    def __exit__(self, *exc: object) -> None:
        for name, pid in self.pids.items():
            before, after = self._start[name], cpu_seconds(pid)
            if before is not None and after is not None:
                self.spent[name] = after - before


def open_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


class PeakRss:
    """Samples a process's RSS every `interval` seconds while in use: `async with PeakRss(pid) as peak:`."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_mb: float | None = None
        self._task: asyncio.Task[None] | None = None

    def _sample(self) -> None:
        value = rss_mb(self.pid)
        if value is not None and (self.peak_mb is None or value > self.peak_mb):
            self.peak_mb = value

    async def _poll(self) -> None:
        while True:
            self._sample()
            await asyncio.sleep(self.interval)

    async def __aenter__(self) -> PeakRss:
        self._task = asyncio.create_task(self._poll())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        self._sample()
