#!/usr/bin/env python3
"""This checkout's proxy against another checkout's, both running at once: the ratios of their CPU per request
and per stream chunk.

    git worktree add /tmp/before HEAD~3
    .venv/bin/python bench/compare.py /tmp/before [--rounds 12]

On a shared machine one pass moves by 10–20% within a minute, more than most single changes are worth, and
sequential rounds of two builds inherit that drift. Here each round loads both proxies in the same seconds
(small non-stream chats, c=16 each), so both see the same machine; the 500-chunk streams go to each in turn,
since two streams at once would batch each other's chunks, with each proxy and its simulator pinned to
separate cores (placement.py: one chunk per wake-up, the placement whose cost repeats best). The ratios are
medians over rounds, with the
lowest and highest round. Both checkouts run with this virtualenv, on the bench's scenario and config.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path

from httpclient import closed_loop
from measure import CpuMeter
from placement import ALONE, can_pin, pinned
from suite import http_callers
from targets import API_KEY
from workloads import REPO, STREAM_CHUNKS

SMALL_REQUESTS = 800
STREAMS = 3

# Runs in the checkout under test, with its own bench/ and harness/ on the path; prints where it serves.
_LAUNCH = """
import json, sys, tempfile
from pathlib import Path
sys.path.insert(0, str(Path(sys.argv[1]) / "bench"))
from targets import start_lingma_proxy
target, _ = start_lingma_proxy(Path(tempfile.mkdtemp()) / "proxy", {"auth": {"api_keys": [sys.argv[2]]}})
print(json.dumps({"url": target.url, "model": target.model, "pids": target.pids}), flush=True)
sys.stdin.read()
target.stop()
"""


class Checkout:
    """One checkout's proxy, running until stop()."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._process = subprocess.Popen(
            [sys.executable, "-c", _LAUNCH, str(path), API_KEY],
            cwd=path, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        line = self._process.stdout.readline() if self._process.stdout else ""
        if not line:
            raise SystemExit(f"the proxy of {path} did not start")
        served = json.loads(line)
        self.pids: dict[str, int] = served["pids"]
        self.callers = http_callers(served["url"], served["model"])

    def stop(self) -> None:
        if self._process.stdin:
            self._process.stdin.close()
        self._process.wait(30)


async def compare(this: Checkout, other: Checkout, rounds: int) -> dict[str, list[float]]:
    """Per round, this ÷ other: proxy CPU per small request, simulator CPU per request, proxy CPU per chunk."""
    for checkout in (this, other):
        await closed_loop(checkout.callers["small"], 300, 8)
        await closed_loop(checkout.callers["stream"], 2, 1)
    ratios: dict[str, list[float]] = {"request": [], "simulator": [], "chunk": []}
    for number in range(1, rounds + 1):
        with CpuMeter(this.pids) as this_cpu, CpuMeter(other.pids) as other_cpu:
            this_run, other_run = await asyncio.gather(
                closed_loop(this.callers["small"], SMALL_REQUESTS, 16),
                closed_loop(other.callers["small"], SMALL_REQUESTS, 16),
            )
        per_chunk = []
        for checkout in (this, other):
            server, simulator = checkout.pids["server"], checkout.pids.get("simulator")
            placed = pinned(server, simulator, ALONE) if can_pin() else nullcontext()
            with placed, CpuMeter(checkout.pids) as stream_cpu:
                streams = await closed_loop(checkout.callers["stream"], STREAMS, 1)
            per_chunk.append(stream_cpu.spent["server"] / max(1, len(streams.ok) * STREAM_CHUNKS))
        if not this_run.ok or not other_run.ok or not all(per_chunk):
            print(f"round {number}: failed requests, skipped")
            continue
        for name, key in (("request", "server"), ("simulator", "simulator")):
            mine = this_cpu.spent.get(key, 0.0) / len(this_run.ok)
            theirs = other_cpu.spent.get(key, 0.0) / len(other_run.ok)
            if theirs:
                ratios[name].append(mine / theirs)
        ratios["chunk"].append(per_chunk[0] / per_chunk[1])
        print(f"round {number}: " + ", ".join(f"{name} {values[-1]:.3f}" for name, values in ratios.items() if values))
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("other", type=Path, help="the checkout to compare with (a git worktree, say)")
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args()
    if not (args.other / "lingma_proxy.py").is_file():
        raise SystemExit(f"{args.other} is not a lingma-proxy checkout")
    this, other = Checkout(REPO), Checkout(args.other.resolve())
    try:
        ratios = asyncio.run(compare(this, other, args.rounds))
    finally:
        this.stop()
        other.stop()
    print(f"\nthis checkout ÷ {args.other} (median of the rounds; lowest – highest), below 1 is cheaper:")
    labels = {"request": "proxy CPU per small request", "simulator": "simulator CPU per request",
              "chunk": "proxy CPU per stream chunk"}  # fmt: skip
    for name, values in ratios.items():
        if values:
            print(f"  {labels[name]:<30} {statistics.median(values):.3f} ({min(values):.3f} – {max(values):.3f})")


if __name__ == "__main__":
    main()
