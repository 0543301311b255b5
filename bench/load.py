#!/usr/bin/env python3
"""Load and soak: N concurrent streaming clients through one proxy for a fixed time.

    .venv/bin/python bench/load.py [--duration 60] [--concurrency 200] [--disconnects 0.1] [--quick]

Each client streams a 100-chunk answer from the simulator (a fast scenario), again and again, until the
time is up. With --disconnects P, each request hangs up after its first token with probability P. After
the run: errors (target 0), first-token p50/p99, RSS and open fds before/after (no growth), and whether
the proxy's in-flight count and the simulator's active chats drain back to 0. Loopback only; stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import workloads  # noqa: F401  (puts the repo on sys.path)
from httpclient import HttpConnection, Run, Sample, timed_loop
from measure import PeakRss, open_fds, percentile, rss_mb
from suite import PROMPTS
from targets import API_KEY, start_lingma_proxy
from workloads import BURST_CHUNKS, chat_body

from harness.proxy import Proxy, child_pids

DRAIN_TIMEOUT_SEC = 15.0
SETTLE_SEC = 1.0


class StreamingClient:
    """Streams the 100-chunk answer; hangs up after the first token with probability `hang_up_share`."""

    def __init__(self, url: str, hang_up_share: float, rng: random.Random) -> None:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.connection = HttpConnection(host, int(port))
        self.request = self.connection.build_request(
            "/v1/chat/completions", chat_body("auto", PROMPTS["burst"], True), {"Authorization": f"Bearer {API_KEY}"}
        )
        self.hang_up_share = hang_up_share
        self.rng = rng

    async def call(self) -> Sample:
        return await self.connection.send(self.request, True, hang_up=self.rng.random() < self.hang_up_share)

    def close(self) -> None:
        self.connection.close()


def _poll(read, done, timeout: float) -> tuple[object, float]:
    """Read a value until `done(value)` or the timeout; the last value and the seconds it took."""
    started = time.monotonic()
    value = read()
    while not done(value) and time.monotonic() - started < timeout:
        time.sleep(0.2)
        value = read()
    return value, time.monotonic() - started


def drained(proxy: Proxy) -> dict:
    in_flight, in_flight_s = _poll(lambda: proxy.health()["in_flight"], lambda v: v == 0, DRAIN_TIMEOUT_SEC)
    active, active_s = _poll(lambda: proxy.sim_status()["active_chats"], lambda v: v == 0, DRAIN_TIMEOUT_SEC)
    return {
        "in_flight": in_flight,
        "in_flight_drain_s": in_flight_s,
        "active_chats": active,
        "active_chats_drain_s": active_s,
    }


def report(args: argparse.Namespace, run: Run, before: dict, after: dict, peak: float | None, drain: dict) -> str:
    completed = [s for s in run.ok if not s.hung_up]
    hung_up = [s for s in run.ok if s.hung_up]
    first = [s.first_token for s in run.ok if s.first_token is not None]
    errors = Counter(run.errors)
    lines = [
        f"load: {args.concurrency} concurrent streaming clients for {args.duration:g} s, {BURST_CHUNKS} chunks per "
        f"answer, hang-up share {args.disconnects:g} (client and server share this machine's cores)",
        f"  streams started              {len(run.samples):>10,}   ({len(run.samples) / run.wall:,.1f}/s)",
        f"  completed                    {len(completed):>10,}",
        f"  hung up after first token    {len(hung_up):>10,}",
        f"  errors                       {len(run.errors):>10,}   target 0  {'PASS' if not run.errors else 'FAIL'}",
        f"  first token p50 / p99 ms     {_ms(percentile(first, 50))} / {_ms(percentile(first, 99))}",
        f"  proxy RSS MB before / peak / after   {before['rss']} / {peak} / {after['rss']}",
        f"  proxy open fds before / after        {before['fds']} / {after['fds']}   {_fd_verdict(before, after)}",
        f"  simulator children before / after    {before['children']} / {after['children']}",
        f"  proxy in_flight after        {drain['in_flight']:>10}   "
        f"(reached in {drain['in_flight_drain_s']:.1f} s) target 0  {'PASS' if drain['in_flight'] == 0 else 'FAIL'}",
        f"  simulator active_chats after {drain['active_chats']:>10}   "
        f"(reached in {drain['active_chats_drain_s']:.1f} s) target 0  "
        f"{'PASS' if drain['active_chats'] == 0 else 'FAIL'}",
    ]
    lines += [f"  error x{count}: {error}" for error, count in errors.most_common(5)]
    return "\n".join(lines)


def _fd_verdict(before: dict, after: dict) -> str:
    if after["fds"] is None or before["fds"] is None:
        return "GREW"
    return "no growth" if after["fds"] <= before["fds"] else "GREW"


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:,.1f}"


def process_state(proxy: Proxy) -> dict:
    pid = proxy.process.pid
    return {"rss": rss_mb(pid), "fds": open_fds(pid), "children": len(child_pids(pid))}


async def soak(proxy: Proxy, args: argparse.Namespace) -> tuple[Run, float | None]:
    rng = random.Random(args.seed)
    async with PeakRss(proxy.process.pid, interval=0.5) as peak:
        run = await timed_loop(
            lambda: StreamingClient(proxy.url, args.disconnects, rng), args.duration, args.concurrency
        )
    return run, peak.peak_mb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--concurrency", type=int, default=200, help="concurrent streaming clients (default 200)")
    parser.add_argument("--disconnects", type=float, default=0.0, help="share of requests that hang up mid-stream")
    parser.add_argument("--seed", type=int, default=11, help="random seed for who hangs up")
    parser.add_argument("--quick", action="store_true", help="10 s instead of --duration")
    args = parser.parse_args()
    if args.quick:
        args.duration = 10.0
    with tempfile.TemporaryDirectory(prefix="lingma-load-") as tmp:
        target, proxy = start_lingma_proxy(Path(tmp) / "proxy")
        try:
            asyncio.run(_warm_up(proxy))
            time.sleep(SETTLE_SEC)
            before = process_state(proxy)
            run, peak = asyncio.run(soak(proxy, args))
            time.sleep(SETTLE_SEC)
            drain = drained(proxy)
            after = process_state(proxy)
        finally:
            target.stop()
    print(report(args, run, before, after, peak, drain))
    return 0


async def _warm_up(proxy: Proxy) -> None:
    client = StreamingClient(proxy.url, 0.0, random.Random(0))
    try:
        for _ in range(5):
            await client.call()
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
