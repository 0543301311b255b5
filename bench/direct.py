"""Direct upstream: our IPC client (connect_client over a LingmaProcess simulator child), no HTTP at all.

The same workloads as over HTTP, with a Caller whose "request" is one chat on the shared connection,
so the proxy's cost is what the HTTP rows add on top of these.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from httpclient import Sample
from workloads import scenario_rules

from harness.simulator import SimInstance, running_simulator
from lingma_proxy.errors import ApiError
from lingma_proxy.events import TextDelta
from lingma_proxy.upstream.client import ChatRequest, LingmaClient


class DirectCaller:
    """One chat per call on a shared LingmaClient, timed like an HTTP request: to the first text, to the end."""

    def __init__(self, client: LingmaClient, prompt: str) -> None:
        self.client = client
        self.prompt = prompt

    async def call(self) -> Sample:
        request = ChatRequest(self.prompt, "auto", str(uuid.uuid4()), str(uuid.uuid4()), is_reply=False)
        started = time.perf_counter()
        first_token: float | None = None
        deltas = 0
        try:
            async for event in self.client.chat(request):
                if isinstance(event, TextDelta) and event.text:
                    deltas += 1
                    if first_token is None:
                        first_token = time.perf_counter() - started
        except ApiError as err:
            return Sample(False, time.perf_counter() - started, error=f"{err.kind}: {err.message}"[:200])
        return Sample(True, time.perf_counter() - started, first_token, deltas)

    def close(self) -> None:
        pass


@contextlib.asynccontextmanager
async def direct_upstream(tmp: Path, dialect: str = "classic") -> AsyncIterator[tuple[SimInstance, LingmaClient]]:
    """A simulator child with the bench scenario, and one connected client (like one proxy instance)."""
    tmp.mkdir(parents=True, exist_ok=True)
    async with running_simulator(tmp, rules=scenario_rules(), dialect=dialect, name="bench-direct") as sim:
        yield sim, await sim.client(rpc_timeout=60.0)
