"""What a turn does when its ask fails before Lingma sent anything (docs/protocol.md §11.8).

Only then may it ask again: the client has seen nothing. A queued request waits the time Lingma names
and asks again with a fresh request id (a reused one is a "Duplicate request"), for at most
lingma.queue_wait_sec in all; a duplicate is asked again once; a reused session the runtime has lost is
resent in full once. Everything else is the client's to see.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Protocol

from ..errors import ApiError
from ..events import OutputEvent
from ..model import Image
from ..upstream.failures import DUPLICATE_REQUEST, QUEUED, SESSION_LOST

log = logging.getLogger("lingma_proxy.completion")

MIN_QUEUE_PAUSE_SEC = 0.25  # a queue that says "retry after 0" must not be hammered
QUEUE_TIMEOUT = "upstream_queue_timeout"


class AskRetries:
    """One turn's retry budget."""

    def __init__(self, queue_wait_sec: float) -> None:
        self._queue_wait_sec = queue_wait_sec
        self._queued_for = 0.0
        self._used: set[str] = set()  # the once-only retries already taken

    def pause_before_retry(self, err: ApiError, reused_session: bool) -> float | ApiError:
        """Seconds to wait before asking again, or the error to give the client."""
        if err.code == QUEUED:
            pause = max(float(err.retry_after or 0), MIN_QUEUE_PAUSE_SEC)
            if self._queued_for + pause > self._queue_wait_sec:
                return ApiError(
                    "rate_limit",
                    f"Lingma kept the request queued past lingma.queue_wait_sec ({self._queue_wait_sec:g}s): "
                    f"{err.message}",
                    code=QUEUE_TIMEOUT,
                    retry_after=max(err.retry_after or 0, 1),
                )
            self._queued_for += pause
            return pause
        once = err.code == DUPLICATE_REQUEST or (err.code == SESSION_LOST and reused_session)
        if once and err.code not in self._used:
            self._used.add(str(err.code))
            return 0.0
        return err


class Asker(Protocol):
    """What ask_with_retries needs of a turn."""

    upstream_spoke: bool  # Lingma sent something: from then on a failure is never retried

    def ask(self, question: str, is_reply: bool, images: list[Image] | None = None) -> AsyncIterator[OutputEvent]: ...
    def resend_in_full(self) -> str: ...


async def ask_with_retries(
    turn: Asker, question: str, is_reply: bool, queue_wait_sec: float, images: list[Image] | None = None
) -> AsyncIterator[OutputEvent]:
    """The turn's ask, asked again while Lingma has said nothing and AskRetries allows it."""
    retries = AskRetries(queue_wait_sec)
    while True:
        try:
            async for event in turn.ask(question, is_reply, images):
                yield event
            return
        except ApiError as err:
            if turn.upstream_spoke:
                raise
            step = retries.pause_before_retry(err, reused_session=is_reply)
            if isinstance(step, ApiError):
                raise step from None
            failure = err
        log.warning("asking Lingma again in %.2gs: %s", step, failure.message)
        if failure.code == SESSION_LOST:
            question, is_reply = turn.resend_in_full(), False
        await asyncio.sleep(step)
