#!/usr/bin/env python3
"""Time to first token: what the proxy adds to the simulator's own first chunk.

    .venv/bin/python bench/ttfb.py [-n 50] [--quick] [--dialect classic|acp]

Direct: our IPC client asks the simulator and stops the clock at the first non-empty TextDelta.
Proxy: a streaming request over HTTP (kept-alive connection) to lingma-proxy in front of an identical
simulator, clock stopped at the first SSE event carrying content. The two are interleaved, so a busy
moment on the machine hits both; the overhead is the median of the paired differences.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

import workloads  # noqa: F401  (puts the repo on sys.path)
from direct import DirectCaller, direct_upstream
from httpclient import Caller, HttpCaller
from measure import percentile
from suite import PROMPTS
from targets import API_KEY, start_lingma_proxy
from workloads import chat_body, messages_body

WARMUP = 10


async def first_token_ms(caller: Caller) -> float:
    sample = await caller.call()
    if not sample.ok or sample.first_token is None:
        raise RuntimeError(f"request failed: {sample.error or 'no content token'}")
    return sample.first_token * 1000


async def paired(direct: Caller, proxied: Caller, rounds: int) -> tuple[list[float], list[float]]:
    for _ in range(WARMUP):
        await first_token_ms(direct)
        await first_token_ms(proxied)
    direct_ms, proxy_ms = [], []
    for _ in range(rounds):
        direct_ms.append(await first_token_ms(direct))
        proxy_ms.append(await first_token_ms(proxied))
    return direct_ms, proxy_ms


def row(label: str, direct_ms: list[float], proxy_ms: list[float]) -> str:
    differences = [p - d for d, p in zip(direct_ms, proxy_ms, strict=False)]

    def stats(values: list[float]) -> str:
        return f"{percentile(values, 50):8.2f} {percentile(values, 90):8.2f}"

    return f"  {label:<28} {stats(direct_ms)}   {stats(proxy_ms)}   {stats(differences)}"


async def measure(tmp: Path, rounds: int, dialect: str) -> str:
    prompt = PROMPTS["small"]
    target, _ = start_lingma_proxy(tmp / "proxy", {"lingma": {"simulator": {"dialect": dialect}}})
    try:
        async with direct_upstream(tmp / "direct", dialect) as (_sim, client):
            direct = DirectCaller(client, prompt)
            openai = HttpCaller(target.url, "/v1/chat/completions", chat_body("auto", prompt, True), True,
                                {"Authorization": f"Bearer {API_KEY}"})
            anthropic = HttpCaller(target.url, "/v1/messages", messages_body("auto", prompt, True), True,
                                   {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"})
            rows = [
                row("OpenAI chat, stream", *await paired(direct, openai, rounds)),
                row("Anthropic messages, stream", *await paired(direct, anthropic, rounds)),
            ]
            openai.close()
            anthropic.close()
    finally:
        target.stop()
    header = f"  {'ms':<28} {'direct':>8} {'':>8}   {'proxy':>8} {'':>8}   {'added':>8} {'':>8}"
    sub = f"  {'':<28} {'p50':>8} {'p90':>8}   {'p50':>8} {'p90':>8}   {'p50':>8} {'p90':>8}"
    return "\n".join([
        f"time to first token, {dialect} dialect, small prompt, {rounds} interleaved pairs "
        "(client and server share this machine's cores)",
        header, sub, *rows,
        "  added = proxy − direct for each pair: HTTP in and out, decoding, prompt rendering, token counting, SSE",
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50, help="pairs per API (default 50)")
    parser.add_argument("--quick", action="store_true", help="15 pairs per API")
    parser.add_argument("--dialect", choices=("classic", "acp"), default="classic", help="the simulator's chat dialect")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lingma-ttfb-") as tmp:
        print(asyncio.run(measure(Path(tmp), 15 if args.quick else args.n, args.dialect)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
