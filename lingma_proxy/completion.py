"""One completion, whatever API asked for it: Conversation in, OutputEvents then one Finish out.

Upstream events pass through the reasoning splitter, the tool-call parser, the stop-sequence matcher
and the max_tokens budget, so every encoder sees the same cleaned stream (docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from .config import Config
from .errors import ApiError, bad_request
from .events import Finish, Latency, NativeToolCall, OutputEvent, TextDelta, ThinkDelta, ToolCall, UpstreamFinish, Usage
from .images import check_images_forwardable
from .metrics import Metrics
from .models import ModelRegistry
from .native_tools import ParkedChat, ParkedChats, Resumption, as_client_call, decline, may_forward
from .prompt import newest_turn_images, render_prompt, render_turn
from .sessions import ReusePlan, SessionCache, SessionEntry
from .stop_sequences import StopSequenceMatcher
from .tokens import count_tokens
from .tools.parser import ActionBlockParser
from .tools.repair import fallback_text, needs_repair, repair_prompt
from .upstream.client import ChatRequest, ChatStream
from .upstream.pool import Lease, Pool
from .upstream.think import ThinkSplitter
from .wire.conversation import Conversation, Image, conversation_size

log = logging.getLogger("lingma_proxy.completion")

# Failures after which the instance is probably unhealthy and is restarted.
_RECYCLE_CODES = {"upstream_crashed"}


_OFF_LOOP_BYTES = 256 * 1024  # rendering and counting more than this inline would stall every other request


async def rendered_prompt(conv: Conversation, attach_images: bool = False) -> tuple[str, int]:
    """The question text for a whole conversation and its token count; a large one is made off the loop."""
    if conversation_size(conv) < _OFF_LOOP_BYTES:
        return _render_and_count(conv, attach_images)
    return await asyncio.to_thread(_render_and_count, conv, attach_images)


def _render_and_count(conv: Conversation, attach_images: bool) -> tuple[str, int]:
    prompt = render_prompt(conv, attach_images=attach_images)
    return prompt, count_tokens(prompt)


@dataclass
class Prepared:
    """A request checked and rendered, before any upstream slot is taken."""

    conv: Conversation
    model: str
    prompt: str
    input_tokens: int
    started: float
    api_key_id: str
    images: list[Image]  # the newest turn's, to forward as prompt parts (agent dialect only)


class CompletionService:
    def __init__(
        self, cfg: Config, pool: Pool, models: ModelRegistry, sessions: SessionCache, metrics: Metrics
    ) -> None:
        self.cfg = cfg
        self.pool = pool
        self.models = models
        self.sessions = sessions
        self.metrics = metrics
        self.native = ParkedChats(timeout=cfg.lingma.rpc_timeout)

    async def prepare(self, conv: Conversation, started: float, api_key_id: str = "") -> Prepared:
        """Checks that need no upstream slot: model, images, tools; then the prompt and its token count."""
        model = await self.models.resolve(conv.model)
        images = newest_turn_images(conv)
        if images:
            check_images_forwardable(images, model, self.cfg.lingma.dialect, self.pool.dialects)
        if conv.tools and self.cfg.tools.emulation == "off":
            raise bad_request("Tool calling is disabled on this proxy (tools.emulation: off).", param="tools")
        prompt, input_tokens = await rendered_prompt(conv, attach_images=bool(images))
        if input_tokens > model.context_window:
            # Worded as both vendors word it: Claude Code and Codex compact the conversation on it.
            raise ApiError(
                "invalid_request",
                f"prompt is too long: {input_tokens} tokens > {model.context_window} maximum (this model's "
                f"maximum context length is {model.context_window} tokens; compact the conversation).",
                code="context_length_exceeded",
            )
        return Prepared(conv, model.id, prompt, input_tokens, started, api_key_id, images)

    async def run(self, prepared: Prepared) -> AsyncIterator[OutputEvent | Finish]:
        """Take a slot, stream the answer, always release the slot and stop the upstream if abandoned."""
        resumption = self.native.claim(prepared.conv, prepared.api_key_id)
        if resumption is not None:
            parked = resumption.parked
            lease = parked.lease
            turn = _Turn(self, prepared, lease, ReusePlan(None, 0), session_id=parked.session_id)
            events = turn.resume(resumption)
        else:
            lease, plan = await self._acquire(prepared)
            turn = _Turn(self, prepared, lease, plan)
            events = turn.events()
        try:
            async for event in events:
                yield event
        finally:
            self._settle(turn, lease)

    async def _acquire(self, prepared: Prepared) -> tuple[Lease, ReusePlan]:
        conv = prepared.conv
        plan = self.sessions.plan(prepared.api_key_id, prepared.model, conv)
        try:
            lease = await self.pool.acquire(affinity_key(conv), prefer=plan.entry.instance if plan.entry else None)
        except ApiError:
            if plan.entry:
                self.sessions.abandon(plan.entry)
            raise
        if plan.entry and (lease.instance.name, lease.generation) != (plan.entry.instance, plan.entry.generation):
            self.sessions.abandon(plan.entry)  # its instance is busy or was restarted: resend everything
            plan = ReusePlan(None, 0)
        return lease, plan

    def _settle(self, turn: _Turn, lease: Lease) -> None:
        if turn.parked_call is not None and turn.stream is not None:
            # A native tool call went to the client: the upstream chat waits, slot and all, for its result.
            owner = turn.prepared.api_key_id
            self.native.park(ParkedChat(turn.parked_call, turn.stream, lease, turn.session_id, owner))
            return
        if not turn.stored:
            self.sessions.discard(SessionEntry(lease.instance.name, lease.generation, turn.session_id))
        lease.release()


def affinity_key(conv: Conversation) -> str:
    """The client's own key, else the system prompt, else the first message (docs/features.md §2)."""
    if conv.affinity_key:
        return "client:" + conv.affinity_key
    system = conv.system or next((m.text for m in conv.messages if m.role == "system"), "")
    basis = system or (conv.messages[0].text if conv.messages else "")
    return "hash:" + hashlib.sha256(basis.encode("utf-8")).hexdigest()


class _Turn:
    """The state of one completion: parsers, budget, timing."""

    def __init__(
        self, service: CompletionService, prepared: Prepared, lease: Lease, plan: ReusePlan, session_id: str = ""
    ) -> None:
        conv = prepared.conv
        self.service = service
        self.prepared = prepared
        self.lease = lease
        self.plan = plan
        self.session_id = session_id or (plan.entry.session_id if plan.entry else str(uuid.uuid4()))
        self.stream: ChatStream | None = None
        self.parked_call: NativeToolCall | None = None  # a native call handed to the client
        self.repaired = False
        self.stored = False  # the upstream session was kept for reuse; otherwise it is deleted
        self.think = ThinkSplitter()
        emulate = bool(conv.tools) and conv.tool_choice.mode != "none"
        self.tools = ActionBlockParser(conv.tools) if emulate else None
        self.forced = emulate and conv.tool_choice.mode in ("required", "named")
        self.stops = StopSequenceMatcher(conv.stop)
        self.output_parts: list[str] = []  # everything counted as output tokens
        self.reply_text: list[str] = []  # the visible answer text, as the client will send it back
        self.output_tokens_so_far = 0
        self.first_token_at: float | None = None
        self.finish_reason = "stop"
        self.upstream_context_tokens: int | None = None
        self.held_calls: list[ToolCall] = []  # forced-choice calls, sent once no repair is needed
        self.emitted_calls: list[ToolCall] = []  # every accepted call of this turn, held or sent
        self.new_paragraph = False
        self.upstream_tokens = 0  # what this turn's questions to Lingma held, repairs included

    async def events(self) -> AsyncIterator[OutputEvent | Finish]:
        conv = self.prepared.conv
        if self.plan.entry is not None:
            question, is_reply = render_turn(conv, self.plan.start, attach_images=bool(self.prepared.images)), True
        else:
            question, is_reply = self.prepared.prompt, False
        async for event in self._stream(question, is_reply, self.prepared.images):
            yield event
        if self.parked_call is None and self._forced_call_missing():
            log.info("forced tool call missing or invalid; sending one repair prompt")
            self.service.metrics.tool_repairs.inc()
            assert self.tools is not None
            question = repair_prompt(conv.tool_choice, conv.tools, self.tools.rejected, self.held_calls)
            self._start_repair()
            async for event in self._stream(question, True):
                yield event
            if self._forced_call_missing():
                yield self._explain_rejections()
        elif self.tools is not None and self.tools.rejected and not self.emitted_calls and not self._said_anything():
            yield self._explain_rejections()  # a lone rejected block would otherwise be an empty answer
        for event in self._conclude():
            yield event

    async def resume(self, resumption: Resumption) -> AsyncIterator[OutputEvent | Finish]:
        """Continue a parked upstream chat: hand Lingma the client's tool result, stream the rest."""
        call = resumption.parked.call
        await self.lease.client.tool_invoke_result(
            call.tool_call_id,
            call.name,
            success=not resumption.is_error,
            result=resumption.result,
            error_message=resumption.result if resumption.is_error else "",
        )
        async for event in self._consume(resumption.parked.stream):
            yield event
        for event in self._conclude():
            yield event

    def _conclude(self) -> list[OutputEvent | Finish]:
        out: list[OutputEvent | Finish] = list(self.held_calls)
        if self.emitted_calls:
            self.finish_reason = "tool_calls"
        self._remember_session()
        out.append(self._finish())
        return out

    def _forced_call_missing(self) -> bool:
        if not self.forced or self.finish_reason == "length" or self.stops.matched is not None:
            return False
        assert self.tools is not None
        return needs_repair(self.prepared.conv.tool_choice, self.held_calls, self.tools.rejected)

    def _start_repair(self) -> None:
        self.repaired = True
        self.tools = ActionBlockParser(self.prepared.conv.tools)
        self.held_calls = []
        self.emitted_calls = []
        self.new_paragraph = self._said_anything()

    def _said_anything(self) -> bool:
        return any(part.strip() for part in self.reply_text)

    def _explain_rejections(self) -> TextDelta:
        assert self.tools is not None
        separator = "\n\n" if self._said_anything() else ""
        self.new_paragraph = False
        return self._emit_text(separator + fallback_text(self.tools.rejected))

    def _remember_session(self) -> None:
        """Only a clean turn is reusable: a cut-short or repaired one differs from what the client holds."""
        if self.finish_reason not in ("stop", "tool_calls") or self.repaired or self.parked_call is not None:
            return
        calls = self.emitted_calls
        entry = SessionEntry(self.lease.instance.name, self.lease.generation, self.session_id)
        prepared = self.prepared
        self.service.sessions.store(
            prepared.api_key_id, prepared.model, prepared.conv, "".join(self.reply_text), calls, entry
        )
        self.stored = self.service.sessions.enabled

    async def _stream(
        self, question: str, is_reply: bool, images: list[Image] | None = None
    ) -> AsyncIterator[OutputEvent]:
        request = ChatRequest(
            question=question,
            images=tuple(images or ()),
            model_key=self.prepared.model,
            session_id=self.session_id,
            request_id=str(uuid.uuid4()),
            is_reply=is_reply,
            mode=self.service.cfg.lingma.default_ask_mode,
        )
        sent = self.prepared.input_tokens if question is self.prepared.prompt else count_tokens(question)
        self.upstream_tokens += sent
        self.service.metrics.upstream_prompt_tokens.inc(sent)
        async for event in self._consume(self.lease.client.chat(request)):
            yield event

    async def _consume(self, stream: ChatStream) -> AsyncIterator[OutputEvent]:
        self.stream = stream
        finished = False
        try:
            async for upstream_event in stream:
                if isinstance(upstream_event, UpstreamFinish):
                    finished = True
                    self.upstream_context_tokens = upstream_event.context_tokens
                    break
                if isinstance(upstream_event, NativeToolCall):
                    if await self._hand_over(upstream_event):
                        break
                    continue
                for event in self._transform(upstream_event):
                    yield event
                if self._budget_exhausted():
                    break
            for event in self._drain():
                yield event
            if self.parked_call is not None:
                yield self._mark_first(self.emitted_calls[-1])
        except ApiError as err:
            if err.code in _RECYCLE_CODES or err.kind == "timeout":
                self.service.pool.recycle(self.lease.instance, err.message)
            raise
        finally:
            if self.parked_call is None:
                # Abandoned or cut short: Lingma must stop spending the account's quota (docs/features.md §2).
                await (stream.aclose() if finished else stream.abandon())

    async def _hand_over(self, native: NativeToolCall) -> bool:
        """True when the native call goes to the client (the chat is parked); otherwise it is declined."""
        if not may_forward(self.service.cfg.tools, native, self.prepared.conv.tool_choice):
            await decline(self.lease, native, f"native tool {native.name} is not enabled on this proxy")
            return False
        call = as_client_call(native)
        self.parked_call = native
        self.emitted_calls.append(call)
        self.output_parts.append(call.name + call.arguments)
        return True

    def _transform(self, event) -> list[OutputEvent]:
        if isinstance(event, ThinkDelta):
            return [self._mark_first(event)]
        out: list[OutputEvent] = []
        for piece in self.think.feed(event.text):
            out.extend(self._after_think(piece))
        return out

    def _after_think(self, piece: TextDelta | ThinkDelta) -> list[OutputEvent]:
        if isinstance(piece, ThinkDelta):
            return [self._mark_first(piece)]
        text = self.stops.feed(piece.text)
        return self._after_stops(text)

    def _after_stops(self, text: str) -> list[OutputEvent]:
        if not text:
            return []
        if self.tools is None:
            return [self._emit_text(text)]
        return self._route_parsed(self.tools.feed(text))

    def _route_parsed(self, parsed: list[TextDelta | ToolCall]) -> list[OutputEvent]:
        out: list[OutputEvent] = []
        for item in parsed:
            if isinstance(item, ToolCall):
                if self.emitted_calls and not self.prepared.conv.parallel_tool_calls:
                    log.info("dropping extra tool call %s: parallel_tool_calls is false", item.name)
                    continue
                self.emitted_calls.append(item)
                self.output_parts.append(item.name + item.arguments)
                if self.forced:
                    self.held_calls.append(item)  # sent only once no repair is needed
                else:
                    out.append(self._mark_first(item))
            elif item.text:
                out.append(self._emit_text(item.text))
        return out

    def _drain(self) -> list[OutputEvent]:
        """End of an upstream stream: release whatever the parsers still hold."""
        out: list[OutputEvent] = []
        for piece in self.think.close():
            out.extend(self._after_think(piece))
        out.extend(self._after_stops(self.stops.close()))
        if self.tools is not None:
            out.extend(self._route_parsed(self.tools.close()))
            self.service.metrics.tool_parse_failures.inc(len(self.tools.rejected))
        self.think = ThinkSplitter()
        return out

    def _emit_text(self, text: str) -> TextDelta:
        if self.new_paragraph:  # the repair's answer continues after the first attempt's prose
            text, self.new_paragraph = "\n\n" + text, False
        self.output_parts.append(text)
        self.reply_text.append(text)
        limit = self.prepared.conv.max_tokens
        if limit is not None:
            # Chunk edges split tokens, so per-chunk counts overstate the reply: at the limit, recount
            # everything exactly (the gap shrinks each time, so recounts stay few).
            self.output_tokens_so_far += count_tokens(text)
            if self.output_tokens_so_far >= limit:
                self.output_tokens_so_far = count_tokens("".join(self.output_parts))
        return self._mark_first(TextDelta(text))

    def _mark_first(self, event: OutputEvent) -> OutputEvent:
        if self.first_token_at is None:
            self.first_token_at = time.monotonic()
        return event

    def _budget_exhausted(self) -> bool:
        if self.stops.matched is not None:
            self.finish_reason = "stop_sequence"
            return True
        limit = self.prepared.conv.max_tokens
        if limit is not None and self.output_tokens_so_far >= limit:
            self.finish_reason = "length"
            return True
        return False

    def _usage(self) -> Usage:
        """Our own counts, except that the upstream's context figure, when it reports one (agent dialect),
        also covers what Lingma adds to the prompt: the input is then that context less this answer."""
        output_tokens = count_tokens("".join(self.output_parts))
        context = self.upstream_context_tokens if self.service.cfg.lingma.context_usage else None
        if context is not None and context > output_tokens:
            return Usage(context - output_tokens, output_tokens)
        return Usage(self.prepared.input_tokens, output_tokens)

    def _finish(self) -> Finish:
        now = time.monotonic()
        started = self.prepared.started
        first_ms = None if self.first_token_at is None else int((self.first_token_at - started) * 1000)
        return Finish(
            reason=self.finish_reason,  # type: ignore[arg-type]
            usage=self._usage(),
            stop_sequence=self.stops.matched,
            served_by=self.lease.instance.name,
            latency=Latency(first_token_ms=first_ms, total_ms=int((now - started) * 1000)),
            upstream_tokens=self.upstream_tokens,
            session_reused=self.plan.entry is not None,
        )

