"""The pool's health watch: a hung or dead instance is noticed and restarted (docs/features.md §2).

Every interval, each running instance must still have its process and answer one bounded auth/status,
which also keeps its login state current.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..errors import ApiError

if TYPE_CHECKING:
    from .pool import Pool


async def watch_health(pool: Pool, interval: float) -> None:
    """Runs until cancelled (the pool's stop)."""
    while True:
        await asyncio.sleep(interval)
        for inst in pool.instances:
            if inst.state not in ("ready", "logged_out") or inst.client is None:
                continue
            if inst.process is not None and not inst.process.alive:
                pool.recycle(inst, "process exited", "process_exited")
                continue
            try:
                await asyncio.wait_for(pool.refresh_login(inst), timeout=min(10.0, interval))
            except (TimeoutError, ApiError, ConnectionError) as exc:
                pool.recycle(inst, f"health check failed: {exc!r}", "health_check_failed")
