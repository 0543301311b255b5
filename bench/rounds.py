"""The CPU and throughput ratios to the floor, from alternating short rounds rather than one pass each.

On a shared machine the CPU a process spends per request drifts by 1.5–2× within a minute, so the
floor measured at the start and the proxy half a minute later can be minutes of noise apart. Here each
round measures the floor and then the proxy back to back, and the ratios are the medians over rounds.
"""

from __future__ import annotations

import statistics

from chunk_floor import ChunkFloor
from httpclient import closed_loop
from measure import CpuMeter
from placement import PLACEMENTS, can_pin, pinned
from suite import CallerFactories, Plan, http_callers
from targets import Target
from workloads import STREAM_CHUNKS

LITELLM_SHARE = 5  # LiteLLM serves ~1/10 of the proxy's requests/s: a fifth of the requests keeps rounds short


async def alternating_rounds(floor: Target, proxy: Target, litellm: Target | None, plan: Plan) -> dict:
    """Per round: small requests at c=32 on the floor, then on the proxy, then 500-chunk streams on the proxy
    (unpinned, then in each pinned placement beside the bare relay's floor: placement.py), then (when it
    runs) small requests on LiteLLM.

    Returns the medians of: proxy and simulator CPU per request ÷ the floor's, proxy rps ÷ the floor's and
    ÷ LiteLLM's, and proxy CPU µs per chunk; with the rounds' spread beside each."""
    floor_callers = http_callers(floor.url, floor.model)
    proxy_callers = http_callers(proxy.url, proxy.model)
    litellm_callers = http_callers(litellm.url, litellm.model) if litellm is not None else None
    per_round: dict[str, list[float]] = {
        "proxy_cpu": [], "simulator_cpu": [], "rps": [], "chunk_cpu_us": [], "over_litellm": [],
    }  # fmt: skip
    chunk_floor = await ChunkFloor.start() if can_pin() else None
    for _ in range(plan.rounds):
        with CpuMeter(floor.pids) as floor_cpu:
            floor_run = await closed_loop(floor_callers["small"], plan.round_requests, 32)
        with CpuMeter(proxy.pids) as proxy_cpu:
            proxy_run = await closed_loop(proxy_callers["small"], plan.round_requests, 32)
        with CpuMeter(proxy.pids) as stream_cpu:
            stream_run = await closed_loop(proxy_callers["stream"], plan.round_streams, 1)
        if litellm_callers is not None:
            litellm_run = await closed_loop(litellm_callers["small"], plan.round_requests // LITELLM_SHARE, 32)
            if litellm_run.ok and proxy_run.ok:
                per_round["over_litellm"].append(proxy_run.rps / litellm_run.rps)
        floor_us = floor_cpu.spent.get("server", 0.0) / max(1, len(floor_run.ok))
        if floor_us <= 0 or not proxy_run.ok or not stream_run.ok:
            continue
        per_round["proxy_cpu"].append(proxy_cpu.spent.get("server", 0.0) / len(proxy_run.ok) / floor_us)
        if "simulator" in proxy_cpu.spent:
            per_round["simulator_cpu"].append(proxy_cpu.spent["simulator"] / len(proxy_run.ok) / floor_us)
        per_round["rps"].append(proxy_run.rps / floor_run.rps)
        chunks = len(stream_run.ok) * STREAM_CHUNKS
        per_round["chunk_cpu_us"].append(stream_cpu.spent.get("server", 0.0) * 1e6 / chunks)
        if chunk_floor is not None:
            await _pinned_streams(proxy, proxy_callers, chunk_floor, plan, per_round)
    if chunk_floor is not None:
        await chunk_floor.stop()
    return {
        "rounds": plan.rounds,
        **{name: _median_and_spread(values) for name, values in per_round.items() if values},
    }


async def _pinned_streams(
    proxy: Target, callers: CallerFactories, chunk_floor: ChunkFloor, plan: Plan, per_round: dict[str, list[float]]
) -> None:
    """Proxy CPU per chunk in each placement, and the bare relay's in the same placement (chunk_floor.py)."""
    for placement in PLACEMENTS:
        with pinned(proxy.pid, proxy.helpers.get("simulator"), placement), CpuMeter(proxy.pids) as cpu:
            run = await closed_loop(callers["stream"], plan.round_streams, 1)
        if not run.ok:
            continue
        proxy_us = cpu.spent.get("server", 0.0) * 1e6 / (len(run.ok) * STREAM_CHUNKS)
        floor_us = await chunk_floor.per_message_us(placement)
        per_round.setdefault(f"chunk_cpu_us_{placement.key}", []).append(proxy_us)
        per_round.setdefault(f"chunk_floor_us_{placement.key}", []).append(floor_us)
        per_round.setdefault(f"chunk_over_floor_{placement.key}", []).append(proxy_us / floor_us)


def _median_and_spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3), "max": round(max(values), 3)}
