"""Slots on the pool's instances: the global in-flight limit, the bounded queue, and conversation affinity.

A request takes one slot on the best usable instance: the one its session lives on, else the one its
affinity key last used, else the least loaded. Past limits.max_in_flight it waits up to
limits.queue_timeout_sec in a queue of at most limits.max_queued, then gets a 429 (docs/features.md §2).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..config import LimitsConfig
from ..errors import ApiError

if TYPE_CHECKING:
    from .client import LingmaClient
    from .pool import Instance

_AFFINITY_ENTRIES = 10_000


class Lease:
    """A slot on one instance; release() exactly once, on every path."""

    def __init__(self, slots: Slots, instance: Instance) -> None:
        self._slots = slots
        self.instance = instance
        self.generation = instance.generation
        self._released = False

    @property
    def client(self) -> LingmaClient:
        assert self.instance.client is not None
        return self.instance.client

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._slots.release(self.instance)


class Slots:
    def __init__(self, limits: LimitsConfig, instances: list[Instance]) -> None:
        self.limits = limits
        self._instances = instances
        self.in_flight = 0
        self.queued = 0  # requests waiting in acquire() for a slot
        self.rejections = 0
        self._freed = asyncio.Condition()
        self._affinity: OrderedDict[str, str] = OrderedDict()

    async def acquire(
        self,
        affinity_key: str | None,
        prefer: str | None,
        worth_waiting: Callable[[], bool],
        unavailable: Callable[[], ApiError],
    ) -> Lease:
        """A slot on the best instance, waiting up to limits.queue_timeout_sec; 503 or 429 otherwise.

        `worth_waiting` says whether any instance may still free up; `unavailable` is the 503 when none can."""
        deadline = time.monotonic() + self.limits.queue_timeout_sec
        async with self._freed:
            inst = self._pick(affinity_key, prefer)
            if inst is not None:
                return self._take(inst, affinity_key)
            if not worth_waiting():
                raise unavailable()
            if self.queued >= self._max_queued():
                # Each waiter holds its whole request in memory: the queue is bounded like everything else.
                raise self._too_many("The request queue is full (limits.max_queued); retry shortly.")
            self.queued += 1
            try:
                while True:
                    if not worth_waiting():
                        raise unavailable()
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        if not any(inst.usable for inst in self._instances):
                            raise unavailable()
                        raise self._too_many("Too many requests in flight; retry shortly.")
                    try:
                        await asyncio.wait_for(self._freed.wait(), timeout=remaining)
                    except TimeoutError:
                        pass
                    inst = self._pick(affinity_key, prefer)
                    if inst is not None:
                        return self._take(inst, affinity_key)
            finally:
                self.queued -= 1

    def _max_queued(self) -> int:
        return self.limits.max_queued or 2 * self.limits.max_in_flight

    def _too_many(self, message: str) -> ApiError:
        self.rejections += 1
        return ApiError("rate_limit", message, retry_after=max(1, round(self.limits.queue_timeout_sec / 4)))

    def _pick(self, affinity_key: str | None, prefer: str | None) -> Instance | None:
        if self.in_flight >= self.limits.max_in_flight:
            return None
        limit = self.limits.max_concurrent_per_instance
        free = [inst for inst in self._instances if inst.usable and inst.in_flight < limit]
        if not free:
            return None
        for wanted in (prefer, self._affinity.get(affinity_key) if affinity_key else None):
            for inst in free:
                if inst.name == wanted:
                    return inst
        return min(free, key=lambda inst: inst.in_flight)

    def _take(self, inst: Instance, affinity_key: str | None) -> Lease:
        inst.in_flight += 1
        self.in_flight += 1
        if affinity_key:
            self._affinity[affinity_key] = inst.name
            self._affinity.move_to_end(affinity_key)
            if len(self._affinity) > _AFFINITY_ENTRIES:
                self._affinity.popitem(last=False)
        return Lease(self, inst)

    def release(self, inst: Instance) -> None:
        inst.in_flight -= 1
        self.in_flight -= 1
        if self.queued:  # with nobody waiting in acquire(), a notify would be a task for nothing
            asyncio.get_running_loop().create_task(self._notify_slot_freed())

    async def _notify_slot_freed(self) -> None:
        async with self._freed:
            self._freed.notify()

    async def notify_all(self) -> None:
        """An instance came back: every waiter looks again."""
        async with self._freed:
            self._freed.notify_all()
