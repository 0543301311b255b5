"""The streaming engine of the completion endpoints: one path for stream and non-stream.

The same encoder serves both modes (docs/architecture.md): a stream writes each event's frames as they
are encoded and flushes once per event-loop turn (the events that arrived together leave in one socket
write, none waits for a later one), a non-stream request sends the encoder's body() at the end. Headers
wait for the first event, so that a failure before it gets a real HTTP status; keep-alives cover a slow
first token; a client that goes away cancels the upstream, and a shutdown that runs out of grace ends the
stream with an error event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from tornado.iostream import StreamClosedError

from ..errors import ApiError
from ..events import Finish, TextDelta, ThinkDelta
from ..ids import new_id
from ..model import Conversation
from ..services import Services
from .base import BaseHandler

log = logging.getLogger("lingma_proxy.http")


class CompletionHandler(BaseHandler):
    """An endpoint that answers with a completion, streamed (SSE or NDJSON) or as one body."""

    keepalive_sec = 15.0
    stream_content_type = "text/event-stream; charset=utf-8"  # NDJSON for the Ollama API

    def initialize(self, services: Services) -> None:
        super().initialize(services)
        self._task: asyncio.Task | None = None
        self._loop = asyncio.get_running_loop()  # handlers are made on the loop; a chunk need not ask again
        self._keepalive_timer: asyncio.TimerHandle | None = None
        self._last_write = 0.0
        self._encoder: Any = None
        self._prepared: Any = None  # completion.Prepared: its model may change (lingma.fallback_models)
        self._stream_started = False
        self._client_gone = False
        self._shutting_down = False
        self._flush_queued = False
        self._written: asyncio.Future | None = None  # the last flush, until the socket has taken it

    def on_finish(self) -> None:
        self._cancel_keepalive()
        super().on_finish()

    def streamed(self) -> bool:
        return self._stream_started

    def on_connection_close(self) -> None:
        self._client_gone = True
        if self._task is not None and not self._task.done():
            log.info("client disconnected mid-request; cancelling upstream")
            self.services.metrics.client_disconnects.inc()
            self._task.cancel()

    def end_for_shutdown(self) -> None:
        """Graceful shutdown ran out of grace: end this response with an error in its wire format."""
        self._shutting_down = True
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def complete(self, conv: Conversation, encoder_class: type, id_prefix: str, **encoder_options: Any) -> None:
        """Check and render the request, then answer it in `encoder_class`'s wire format."""
        service = self.services.completions
        prepared = await service.prepare(conv, self.started, self.api_key_id)
        self.served_model, self._prepared = prepared.model, prepared
        encoder = encoder_class(
            conv,
            response_id=new_id(id_prefix),
            model=prepared.model,
            created=int(time.time()),
            input_tokens=prepared.input_tokens,
            **encoder_options,
        )
        await self.respond(encoder, self._naming_the_model(service.run(prepared)), conv.stream)

    async def respond(self, encoder: Any, events: AsyncIterator, stream: bool) -> None:
        """Feed the same encoder in both modes; stream flushes per event, non-stream sends body()."""
        self._task = asyncio.current_task()
        self._encoder = encoder
        self.services.active.add(self)
        try:
            if stream:
                await self._stream(encoder, events)
            else:
                await self._collect(encoder, events)
        except asyncio.CancelledError:
            # The generator's cleanup already stopped the upstream; say why, if anyone is listening.
            if self._shutting_down and not self._client_gone:
                self._end_with(ApiError("unavailable", "lingma-proxy is shutting down; retry the request."))
            elif not self._client_gone:
                raise
        finally:
            self.services.active.discard(self)

    def _end_with(self, err: ApiError) -> None:
        if self._stream_started:
            for frame in self._encoder.fail(err):
                self.write(frame)
            self.finish()
        else:
            self.send_error(err.status, exc_info=(type(err), err, None))

    def _observe(self, fin: Finish) -> None:
        self.served_by = fin.served_by or ""
        self.finish_event = fin
        latency, usage = fin.latency, fin.usage
        self.services.metrics.observe_completion(
            self.api, latency.first_token_ms, latency.total_ms, usage.input_tokens, usage.output_tokens
        )

    async def _collect(self, encoder: Any, events: AsyncIterator) -> None:
        encoder.start()
        async for event in _delta_runs_joined(events):
            if isinstance(event, Finish):
                self._observe(event)
                encoder.finish(event)
            else:
                encoder.feed(event)
        self.write_json(encoder.body())

    async def _stream(self, encoder: Any, events: AsyncIterator) -> None:
        self._arm_keepalive()
        try:
            async for event in events:
                if isinstance(event, Finish):
                    self._observe(event)
                    await self._send(encoder.finish(event))
                else:
                    await self._send(encoder.feed(event))
        except ApiError as err:
            if not self._stream_started:
                raise
            log.warning("stream failed after headers: %s", err.message)
            await self._send(encoder.fail(err))
        self.finish()

    async def _send(self, frames: list[str]) -> None:
        if not self._stream_started:
            self._commit_stream_headers()
        for frame in frames:
            self.write(frame)
        loop = self._loop
        self._last_write = loop.time()
        if self._flush_queued:
            return
        if self._written is not None and not self._written.done():
            # The client reads slower than the upstream answers: wait for it rather than buffer without bound.
            try:
                await self._written
            except StreamClosedError:
                self._client_gone = True
                raise asyncio.CancelledError() from None
        self._flush_queued = True
        loop.call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self._flush_queued = False
        if not self._finished:
            self._written = written = asyncio.ensure_future(self.flush())
            # A hang-up is seen by on_connection_close; a write the socket took at once needs no callback.
            if written.done():
                _retrieve(written)
            else:
                written.add_done_callback(_retrieve)

    def _commit_stream_headers(self) -> None:
        """Headers wait for the first event so that early failures get a real status (docs/features.md §8)."""
        self.set_header("Content-Type", self.stream_content_type)
        self.set_header("Cache-Control", "no-cache, no-transform")
        self.set_header("X-Accel-Buffering", "no")
        self._name_the_model()  # a keep-alive may commit before any event
        self._stream_started = True
        for frame in self._encoder.start():
            self.write(frame)

    async def _naming_the_model(self, events: AsyncIterator) -> AsyncIterator:
        """`events`, with the model named before the first of them is encoded (the model is settled by then)."""
        named = False
        try:
            async for event in events:
                if not named:
                    self._name_the_model()
                    named = True
                yield event
        finally:
            await events.aclose()  # at once, not when collected: closing it releases the slot

    def _name_the_model(self) -> None:
        """The model that answered, in the body and `x-lingma-model`: a fallback may have replaced the chosen one."""
        if self._prepared is not None:
            self.served_model = self._encoder.model = self._prepared.model
            self.set_header("x-lingma-model", self._prepared.model)

    def _arm_keepalive(self) -> None:
        """One timer per response, not one per event: it re-arms itself from the time of the last write."""
        loop = self._loop
        self._last_write = loop.time()
        self._keepalive_timer = loop.call_later(self.keepalive_sec, self._keepalive_due)

    def _cancel_keepalive(self) -> None:
        if self._keepalive_timer is not None:
            self._keepalive_timer.cancel()
            self._keepalive_timer = None

    def _keepalive_due(self) -> None:
        if self._finished or self._encoder is None:
            return
        loop = self._loop
        quiet_for = loop.time() - self._last_write
        if quiet_for < self.keepalive_sec:
            self._keepalive_timer = loop.call_later(self.keepalive_sec - quiet_for, self._keepalive_due)
            return
        if not self._stream_started:
            self._commit_stream_headers()
        self.write(self._encoder.keepalive())
        # A client gone away makes this flush fail; the stream's own next write notices and ends it.
        asyncio.ensure_future(self.flush()).add_done_callback(_retrieve)
        self._arm_keepalive()


async def _delta_runs_joined(events: AsyncIterator) -> AsyncIterator:
    """`events` with each run of text (or think) deltas joined into one delta, for a non-stream answer: its
    body is the same, and the encoder renders no stream frame, which nobody would read, per upstream chunk."""
    run: list[str] = []
    run_type: type = TextDelta
    async for event in events:
        kind = type(event)
        if run and kind is not run_type:
            yield run_type("".join(run))
            run.clear()
        if kind is TextDelta or kind is ThinkDelta:
            run.append(event.text)
            run_type = kind
        else:
            yield event
    if run:
        yield run_type("".join(run))


def _retrieve(done: asyncio.Future) -> None:
    """Read a background flush's outcome, so a closed stream leaves no never-retrieved exception."""
    if not done.cancelled():
        done.exception()
