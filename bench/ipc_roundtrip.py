"""IPC round-trip through the real client and a simulator child: a small and a 1 MB echo chat.

    .venv/bin/python bench/ipc_roundtrip.py [-n 20]

Prints median / min / max milliseconds from sending the prompt to the final UpstreamFinish. No assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.simulator import running_simulator  # noqa: E402
from lingma_proxy.events import TextDelta  # noqa: E402
from lingma_proxy.upstream.client import ChatRequest, LingmaClient  # noqa: E402

SMALL = "ECHO hello, Lingma"
LARGE = "ECHO " + "通义灵码 round-trip 测试😀\n" * 40_000  # ~1.1 MB of UTF-8


async def echo_ms(client: LingmaClient, prompt: str) -> float:
    request = ChatRequest(prompt, "auto", str(uuid.uuid4()), str(uuid.uuid4()), is_reply=False)
    started = time.perf_counter()
    text = "".join([event.text async for event in client.chat(request) if isinstance(event, TextDelta)])
    elapsed = (time.perf_counter() - started) * 1000
    if text != prompt:
        raise SystemExit("echo came back altered")
    return elapsed


async def main(rounds: int) -> None:
    rules = [{"match": "^ECHO", "echo": True, "chunk_chars": 65_536}]
    with tempfile.TemporaryDirectory() as work:
        async with running_simulator(Path(work), rules=rules, name="bench") as sim:
            client = await sim.client(rpc_timeout=60)
            for label, prompt in (("small", SMALL), ("1 MB", LARGE)):
                await echo_ms(client, prompt)  # warm-up
                samples = [await echo_ms(client, prompt) for _ in range(rounds)]
                size = len(prompt.encode("utf-8"))
                print(
                    f"{label:>6} ({size:>9,} B): median {statistics.median(samples):8.2f} ms"
                    f"   min {min(samples):8.2f}   max {max(samples):8.2f}   (n={rounds})"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="rounds per prompt size")
    asyncio.run(main(parser.parse_args().n))
