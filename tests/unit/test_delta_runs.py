"""A non-stream answer's events with each run of text (or think) deltas joined into one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from lingma_proxy.events import Finish, TextDelta, ThinkDelta, ToolCall
from lingma_proxy.handlers.streaming import _delta_runs_joined


class Source:
    """The events as an async generator, remembering whether it was closed."""

    def __init__(self, events: list) -> None:
        self.events = events
        self.closed = False

    async def generate(self) -> AsyncIterator:
        try:
            for event in self.events:
                yield event
        finally:
            self.closed = True


def joined(events: list) -> tuple[list, bool]:
    async def collect() -> tuple[list, bool]:
        source = Source(events)
        out = [event async for event in _delta_runs_joined(source.generate())]
        return out, source.closed

    return asyncio.run(collect())


def test_runs_of_one_kind_are_joined_and_the_order_of_kinds_is_kept():
    call = ToolCall(id="call_1", name="read_file", arguments='{"path": "a"}')
    finish = Finish()
    events = [
        ThinkDelta("let "), ThinkDelta("me think"), TextDelta("Hel"), TextDelta("lo"), call,
        TextDelta(" again"), ThinkDelta("more"), TextDelta("!"), finish,
    ]  # fmt: skip
    out, closed = joined(events)
    assert out == [
        ThinkDelta("let me think"), TextDelta("Hello"), call, TextDelta(" again"), ThinkDelta("more"),
        TextDelta("!"), finish,
    ]  # fmt: skip
    assert closed


def test_a_run_at_the_very_end_is_not_lost():
    out, _ = joined([TextDelta("a"), TextDelta("b")])
    assert out == [TextDelta("ab")]
