"""Where the stream's processes run, pinned, so that CPU per chunk measures one situation and not a mix.

How many chunks the proxy takes per read depends on where the scheduler puts it. When the proxy and its
upstream share a core, the upstream writes a batch of chunks in its time slice and the proxy reads them
together; on separate cores, the proxy wakes up for every chunk. Both happen unpinned, so the same stream
costs 18 or 48 µs per chunk from one run to the next. Pinned, each figure repeats within a few percent.
The load generator (this process) always gets the second core.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Placement:
    key: str
    name: str
    upstream_core: int  # the relay (the proxy, or the bare floor relay) is always on core 0


BATCHED = Placement("batched", "relay and upstream on one core (chunks arrive in batches)", upstream_core=0)
ALONE = Placement("alone", "relay and upstream on two cores (one chunk per wake-up)", upstream_core=1)
PLACEMENTS = (BATCHED, ALONE)


def can_pin() -> bool:
    return hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2


@contextlib.contextmanager
def pinned(relay: int, upstream: int | None, placement: Placement) -> Iterator[None]:
    """Pin the relay to the first allowed core, the upstream per `placement` and this process to the second;
    every affinity is given back afterwards."""
    first, second = sorted(os.sched_getaffinity(0))[:2]
    cores = {0: first, 1: second}
    pids = [0, relay] + ([upstream] if upstream is not None else [])
    before = {pid: os.sched_getaffinity(pid) for pid in pids}
    try:
        os.sched_setaffinity(0, {second})
        os.sched_setaffinity(relay, {first})
        if upstream is not None:
            os.sched_setaffinity(upstream, {cores[placement.upstream_core]})
        yield
    finally:
        for pid, cpus in before.items():
            with contextlib.suppress(OSError):  # a process that has exited has no affinity to restore
                os.sched_setaffinity(pid, cpus)
