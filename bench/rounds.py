"""The CPU and throughput ratios to the floor, from alternating short rounds rather than one pass each.

On a shared machine the CPU a process spends per request drifts by 1.5–2× within a minute, so the
floor measured at the start and the proxy half a minute later can be minutes of noise apart. Here each
round measures the floor and then the proxy back to back, and the ratios are the medians over rounds.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

from httpclient import Caller, closed_loop
from measure import CpuMeter
from workloads import STREAM_CHUNKS

CallerFactories = dict[str, Callable[[], Caller]]


async def alternating_rounds(
    floor: tuple[CallerFactories, dict[str, int]],
    proxy: tuple[CallerFactories, dict[str, int]],
    rounds: int,
    requests_per_round: int,
    streams_per_round: int,
) -> dict:
    """Per round: small requests at c=32 on the floor, then on the proxy, then 500-chunk streams on the proxy.

    Returns the medians of: proxy and simulator CPU per request ÷ the floor's, proxy rps ÷ the floor's,
    and proxy CPU µs per chunk; with the rounds' spread beside each."""
    (floor_callers, floor_pids), (proxy_callers, proxy_pids) = floor, proxy
    per_round: dict[str, list[float]] = {"proxy_cpu": [], "simulator_cpu": [], "rps": [], "chunk_cpu_us": []}
    for _ in range(rounds):
        with CpuMeter(floor_pids) as floor_cpu:
            floor_run = await closed_loop(floor_callers["small"], requests_per_round, 32)
        with CpuMeter(proxy_pids) as proxy_cpu:
            proxy_run = await closed_loop(proxy_callers["small"], requests_per_round, 32)
        with CpuMeter(proxy_pids) as stream_cpu:
            stream_run = await closed_loop(proxy_callers["stream"], streams_per_round, 1)
        floor_us = floor_cpu.spent.get("server", 0.0) / max(1, len(floor_run.ok))
        if floor_us <= 0 or not proxy_run.ok or not stream_run.ok:
            continue
        per_round["proxy_cpu"].append(proxy_cpu.spent.get("server", 0.0) / len(proxy_run.ok) / floor_us)
        if "simulator" in proxy_cpu.spent:
            per_round["simulator_cpu"].append(proxy_cpu.spent["simulator"] / len(proxy_run.ok) / floor_us)
        per_round["rps"].append(proxy_run.rps / floor_run.rps)
        chunks = len(stream_run.ok) * STREAM_CHUNKS
        per_round["chunk_cpu_us"].append(stream_cpu.spent.get("server", 0.0) * 1e6 / chunks)
    return {
        "rounds": rounds,
        **{name: _median_and_spread(values) for name, values in per_round.items() if values},
    }


def _median_and_spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3), "max": round(max(values), 3)}
