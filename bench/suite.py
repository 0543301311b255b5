"""The workloads of bench/run.py, run the same way against every target (HTTP servers and the direct upstream)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from direct import DirectCaller
from httpclient import Caller, HttpCaller, closed_loop
from measure import CpuMeter, PeakRss, open_fds, per_chunk_us, rss_mb, summarize
from targets import API_KEY
from workloads import (
    BURST_MARKER,
    SMALL_MARKER,
    STREAM_CHUNKS,
    STREAM_MARKER,
    agent_body,
    agent_prompt,
    big_prompt,
    chat_body,
)

from lingma_proxy.upstream.client import LingmaClient

BURST_STREAMS = 200
SETTLE_SEC = 1.0  # after the last workload, before the "after" RSS and fd readings

CallerFactories = dict[str, Callable[[], Caller]]


@dataclass(frozen=True)
class Plan:
    """How many requests each workload sends."""

    small_c1: int
    small_c32: int
    stream: int
    big: int
    agent: int
    warmup: int
    rounds: int  # alternating floor/proxy rounds for the CPU and throughput ratios (rounds.py)
    round_requests: int
    round_streams: int


DEFAULT_PLAN = Plan(
    small_c1=1000, small_c32=2000, stream=30, big=10, agent=50, warmup=50,
    rounds=9, round_requests=1000, round_streams=4,
)  # fmt: skip
QUICK_PLAN = Plan(
    small_c1=200, small_c32=1500, stream=5, big=3, agent=10, warmup=20, rounds=5, round_requests=600, round_streams=2
)

# (result key, caller kind, number of requests from the plan, concurrency)
WORKLOADS: list[tuple[str, str, Callable[[Plan], int], int]] = [
    ("small_c1", "small", lambda plan: plan.small_c1, 1),
    ("small_c32", "small", lambda plan: plan.small_c32, 32),
    ("stream500", "stream", lambda plan: plan.stream, 1),
    ("burst200", "burst", lambda plan: BURST_STREAMS, BURST_STREAMS),
    ("big1mb", "big", lambda plan: plan.big, 1),
    ("agent", "agent", lambda plan: plan.agent, 1),
]

PROMPTS = {
    "small": SMALL_MARKER + " say hello",
    "stream": STREAM_MARKER + " count to 500",
    "burst": BURST_MARKER + " count to 100",
}


def http_callers(url: str, model: str) -> CallerFactories:
    """Each workload's request on the wire: OpenAI chat for most, Anthropic messages for the agent turn."""
    chat = "/v1/chat/completions"
    openai = {"Authorization": f"Bearer {API_KEY}"}
    anthropic = {"anthropic-version": "2023-06-01", "x-api-key": API_KEY}
    bodies = {
        "small": (chat, chat_body(model, PROMPTS["small"], False), False, openai),
        "stream": (chat, chat_body(model, PROMPTS["stream"], True), True, openai),
        "burst": (chat, chat_body(model, PROMPTS["burst"], True), True, openai),
        "big": (chat, chat_body(model, big_prompt(), False), False, openai),
        "agent": ("/v1/messages", agent_body(model), True, anthropic),
    }
    return {
        kind: (
            lambda path=path, body=body, stream=stream, headers=headers: HttpCaller(url, path, body, stream, headers)
        )
        for kind, (path, body, stream, headers) in bodies.items()
    }


def direct_callers(client: LingmaClient) -> CallerFactories:
    prompts = {**PROMPTS, "big": big_prompt(), "agent": agent_prompt()}
    return {kind: (lambda prompt=prompt: DirectCaller(client, prompt)) for kind, prompt in prompts.items()}


async def warm_up(callers: CallerFactories, plan: Plan) -> None:
    """Connections, imports, the tokenizer and the simulator's caches, before anything is timed."""
    await closed_loop(callers["small"], plan.warmup, 1)
    await closed_loop(callers["small"], plan.warmup, 8)
    await closed_loop(callers["stream"], 2, 1)
    await closed_loop(callers["big"], 1, 1)
    await closed_loop(callers["agent"], 2, 1)


async def run_workloads(
    callers: CallerFactories, plan: Plan, pids: dict[str, int], log: Callable[[str], None]
) -> dict:
    """Every workload against one target. `pids` names the processes that serve it ("server" first, then
    e.g. "simulator"): the server's RSS and fds around the run, and every process's CPU µs per request
    (and per chunk of the 500-chunk stream) beside each workload."""
    process: dict = {}
    server = pids.get("server")
    if server is not None:
        process = {"rss_idle_mb": rss_mb(server), "fds_before": open_fds(server)}
    await warm_up(callers, plan)
    results: dict = {"process": process}
    for key, kind, count, concurrency in WORKLOADS:
        with CpuMeter(pids) as cpu:
            if key == "burst200" and server is not None:
                async with PeakRss(server) as peak:
                    run = await closed_loop(callers[kind], count(plan), concurrency)
                process["rss_peak_200_streams_mb"] = peak.peak_mb
            else:
                run = await closed_loop(callers[kind], count(plan), concurrency)
        results[key] = summarize(run)
        if run.samples:
            per_request = {name: spent * 1e6 / len(run.samples) for name, spent in cpu.spent.items()}
            results[key]["cpu_us"] = {name: round(value, 1) for name, value in per_request.items()}
        if key == "stream500":
            results[key]["per_chunk_us"] = per_chunk_us(run, STREAM_CHUNKS)
            results[key]["cpu_us_per_chunk"] = {
                name: round(value / STREAM_CHUNKS, 2) for name, value in results[key].get("cpu_us", {}).items()
            }
        log(f"    {key:<10} {results[key]}")
    if server is not None:
        await asyncio.sleep(SETTLE_SEC)
        process.update(rss_after_mb=rss_mb(server), fds_after=open_fds(server))
    return results
