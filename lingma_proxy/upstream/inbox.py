"""A chat stream's incoming events: put from the RPC callbacks, taken by the one reader, with an idle limit.

An answer streams hundreds of events a second, and its reader usually waits for each one. So a wait
costs one future, and the idle limit is one timer per stream that re-arms itself from the start of
the current wait, rather than a timer (asyncio.timeout) and a queue future per event.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Inbox(Generic[T]):
    def __init__(self, idle_timeout: float) -> None:
        self._idle_timeout = idle_timeout
        self._items: deque[T] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._waiting_since = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def put(self, item: T) -> None:
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self) -> T:
        """The next item; TimeoutError when none came within idle_timeout of the call."""
        if self._items:
            return self._items.popleft()
        loop = asyncio.get_running_loop()
        self._waiting_since = loop.time()
        if self._timer is None:
            self._timer = loop.call_at(self._waiting_since + self._idle_timeout, self._check_idle)
        self._waiter = loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None
        if not self._items:
            raise TimeoutError
        return self._items.popleft()

    def close(self) -> None:
        """No more reads: drop the timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check_idle(self) -> None:
        loop = asyncio.get_running_loop()
        waiting = self._waiter is not None and not self._waiter.done()
        deadline = (self._waiting_since if waiting else loop.time()) + self._idle_timeout
        if waiting and loop.time() >= deadline:
            self._timer = None
            self._waiter.set_result(None)  # with nothing in the inbox: get() raises TimeoutError
            return
        self._timer = loop.call_at(deadline, self._check_idle)
