#!/usr/bin/env python3
"""The usage ledger's cost: small-request throughput with usage.enabled on vs off, from one run.

    .venv/bin/python bench/usage_cost.py [--rounds 5] [--requests 1500] [--concurrency 8] [--quick]

Two proxies (the bench config, one simulator instance each) run side by side, one with the ledger and
one without. Rounds alternate between them, so a machine that gets busier or quieter during the run
weighs on both alike; each round sends the same small non-stream chats on keep-alive connections. The
target of issue #24: the ledger costs at most 5% of this throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
from pathlib import Path

import workloads  # noqa: F401  (puts the repo on sys.path)
from httpclient import closed_loop
from report import load_note
from suite import http_callers
from targets import Target, start_lingma_proxy

TARGET_COST = 0.05


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def measure(targets: dict[str, Target], rounds: int, requests: int, concurrency: int) -> dict[str, list[float]]:
    callers = {name: http_callers(target.url, target.model)["small"] for name, target in targets.items()}
    for caller in callers.values():  # connections, the tokenizer, the simulator's caches
        await closed_loop(caller, 100, concurrency)
    rates: dict[str, list[float]] = {name: [] for name in targets}
    for index in range(rounds):
        order = list(targets) if index % 2 == 0 else list(reversed(targets))
        for name in order:
            run = await closed_loop(callers[name], requests, concurrency)
            if run.errors:
                raise RuntimeError(f"{name}: {len(run.errors)} failed requests, first: {run.errors[0]}")
            rates[name].append(run.rps)
            log(f"  round {index + 1}/{rounds} {name}: {run.rps:,.0f} req/s")
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=1500, help="small requests per round and proxy")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="3 rounds of 400 requests")
    args = parser.parse_args()
    rounds, requests = (3, 400) if args.quick else (args.rounds, args.requests)
    before = load_note("before the run")
    with tempfile.TemporaryDirectory(prefix="lingma-usage-bench-") as tmp:
        ledger_on, _ = start_lingma_proxy(Path(tmp) / "on", {"usage": {"enabled": True}})
        ledger_off, _ = start_lingma_proxy(Path(tmp) / "off", {"usage": {"enabled": False}})
        try:
            targets = {"ledger on": ledger_on, "ledger off": ledger_off}
            rates = asyncio.run(measure(targets, rounds, requests, args.concurrency))
        finally:
            ledger_on.stop()
            ledger_off.stop()
        conn = sqlite3.connect(Path(tmp) / "on" / "usage.db")
        recorded = conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
        conn.close()
    on, off = statistics.median(rates["ledger on"]), statistics.median(rates["ledger off"])
    cost = 1 - on / off
    verdict = "meets" if cost <= TARGET_COST else "MISSES"
    print(f"usage ledger cost: small non-stream chats, concurrency {args.concurrency}, {rounds} alternating rounds "
          f"of {requests} requests per proxy (medians)")
    print(f"  ledger off  {off:>8,.0f} req/s")
    print(f"  ledger on   {on:>8,.0f} req/s   on ÷ off = {on / off:.3f}  (cost {cost:+.1%}; target ≤ 5%: {verdict})")
    print(f"  rows the ledger wrote: {recorded:,} (every request, the warm-up included)")
    print(f"  {before}; {load_note('after the run')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
