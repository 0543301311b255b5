"""One completion's run against one upstream slot: ask, stream through the pipeline, repair, conclude.

The parts each do one job (pipeline.py filters the text, output.py keeps what was said, parking.py hands
native calls over, usage.py builds the Finish); this class only puts them in order, with everything it
needs handed to it in a TurnContext rather than reached for through a parent.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from ..config import ToolsConfig
from ..errors import ApiError
from ..events import Finish, NativeToolCall, OutputEvent, TextDelta, ThinkDelta, ToolCall, UpstreamFinish
from ..ids import new_uuid
from ..metrics import Metrics
from ..model import Image
from ..prompt import render_turn
from ..sessions import ReusePlan, SessionCache, SessionEntry
from ..tokens import count_tokens
from ..tools.repair import fallback_text, needs_repair, repair_prompt
from ..upstream.client import ChatRequest, ChatStream
from ..upstream.pool import Instance
from ..upstream.slots import Lease
from ..upstream.tool_replies import tool_result
from .output import Output
from .parking import Resumption, as_client_call, decline, may_forward
from .pipeline import TextPipeline
from .prepared import Prepared
from .retries import ask_with_retries
from .usage import finish, usage_of

log = logging.getLogger("lingma_proxy.completion")

# Failures after which the instance is probably unhealthy and is restarted.
_RECYCLE_CODES = {"upstream_crashed"}


@dataclass(frozen=True)
class TurnContext:
    """What a turn uses beyond its request: settings, the session cache, metrics, and the pool's recycle."""

    ask_mode: str
    context_usage: bool  # lingma.context_usage: trust the upstream's context figure for input tokens
    queue_wait_sec: float  # lingma.queue_wait_sec: how long a queued request may wait, in all
    tools: ToolsConfig
    sessions: SessionCache
    metrics: Metrics
    recycle: Callable[[Instance, str], None]


class Turn:
    def __init__(
        self, ctx: TurnContext, prepared: Prepared, lease: Lease, plan: ReusePlan, session_id: str = ""
    ) -> None:
        conv = prepared.conv
        self.ctx = ctx
        self.prepared = prepared
        self.lease = lease
        self.plan = plan
        self.session_id = session_id or (plan.entry.session_id if plan.entry else new_uuid())
        self.stream: ChatStream | None = None
        self.parked_call: NativeToolCall | None = None  # a native call handed to the client
        self.repaired = False
        self.stored = False  # the upstream session was kept for reuse; otherwise it is deleted
        emulate = bool(conv.tools) and conv.tool_choice.mode != "none"
        self.forced = emulate and conv.tool_choice.mode in ("required", "named")
        self.pipeline = TextPipeline(conv.stop, conv.tools if emulate else None)
        self.output = Output(conv.max_tokens)
        self.held_calls: list[ToolCall] = []  # forced-choice calls, sent once no repair is needed
        self.finish_reason = "stop"
        self.upstream_context_tokens: int | None = None
        self.upstream_tokens = 0  # what this turn's questions to Lingma held, repairs included
        self.upstream_spoke = False  # Lingma sent something: from then on a failure is never retried

    async def events(self) -> AsyncIterator[OutputEvent | Finish]:
        conv, prepared = self.prepared.conv, self.prepared
        if self.plan.entry is not None:
            question, is_reply = render_turn(conv, self.plan.start, attach_images=bool(prepared.images)), True
        else:
            question, is_reply = prepared.prompt, False
        async for event in ask_with_retries(self, question, is_reply, self.ctx.queue_wait_sec, prepared.images):
            yield event
        if self.parked_call is None and self._forced_call_missing():
            log.info("forced tool call missing or invalid; sending one repair prompt")
            self.ctx.metrics.tool_repairs.inc()
            question = repair_prompt(conv.tool_choice, conv.tools, self.pipeline.rejected, self.held_calls)
            self._start_repair()
            async for event in self.ask(question, True):
                yield event
            if self._forced_call_missing():
                yield self._explain_rejections()
        elif self.pipeline.rejected and not self.output.calls and not self.output.said_anything():
            yield self._explain_rejections()  # a lone rejected block would otherwise be an empty answer
        for event in self._conclude():
            yield event

    async def resume(self, resumption: Resumption) -> AsyncIterator[OutputEvent | Finish]:
        """Continue a parked upstream chat: hand Lingma the client's tool result, stream the rest."""
        call = resumption.parked.call
        outcome = tool_result(
            call.tool_call_id,
            call.name,
            success=not resumption.is_error,
            result=resumption.result,
            error_message=resumption.result if resumption.is_error else "",
        )
        await self.lease.client.tool_invoke_result(outcome)
        async for event in self._consume(resumption.parked.stream):
            yield event
        for event in self._conclude():
            yield event

    # ---- the upstream stream ----------------------------------------------------------------

    def resend_in_full(self) -> str:
        """The runtime lost the reused session (docs/features.md §3): a new one, and the whole conversation."""
        self.plan = ReusePlan(None, 0)
        self.session_id = new_uuid()
        return self.prepared.prompt

    async def ask(self, question: str, is_reply: bool, images: list[Image] | None = None) -> AsyncIterator[OutputEvent]:
        request = ChatRequest(
            question=question,
            images=tuple(images or ()),
            model_key=self.prepared.model,
            session_id=self.session_id,
            request_id=new_uuid(),
            is_reply=is_reply,
            mode=self.ctx.ask_mode,
        )
        sent = self.prepared.input_tokens if question is self.prepared.prompt else count_tokens(question)
        self.upstream_tokens += sent
        self.ctx.metrics.upstream_prompt_tokens.inc(sent)
        async for event in self._consume(self.lease.client.chat(request)):
            yield event

    async def _consume(self, stream: ChatStream) -> AsyncIterator[OutputEvent]:
        self.stream = stream
        finished = False
        try:
            async for upstream_event in stream:
                self.upstream_spoke = True
                if isinstance(upstream_event, UpstreamFinish):
                    finished = True
                    self.upstream_context_tokens = upstream_event.context_tokens
                    break
                if isinstance(upstream_event, NativeToolCall):
                    if await self._hand_over(upstream_event):
                        break
                    continue
                for event in self._route(self.pipeline.feed(upstream_event)):
                    yield event
                if self._budget_exhausted():
                    break
            for event in self._route(self.pipeline.drain()):
                yield event
            self.ctx.metrics.tool_parse_failures.inc(len(self.pipeline.rejected))
            if self.parked_call is not None:
                yield self.output.first(self.output.calls[-1])
        except ApiError as err:
            if err.code in _RECYCLE_CODES or err.kind == "timeout":
                self.ctx.recycle(self.lease.instance, err.message)
            raise
        finally:
            if self.parked_call is None:
                # Abandoned or cut short: Lingma must stop spending the account's quota (docs/features.md §2).
                await (stream.aclose() if finished else stream.abandon())

    async def _hand_over(self, native: NativeToolCall) -> bool:
        """True when the native call goes to the client (the chat is parked); otherwise it is declined."""
        if not may_forward(self.ctx.tools, native, self.prepared.conv.tool_choice):
            await decline(self.lease, native, f"native tool {native.name} is not enabled on this proxy")
            return False
        self.parked_call = native
        self.output.call(as_client_call(native))
        return True

    def _route(self, pieces: list[TextDelta | ThinkDelta | ToolCall]) -> list[OutputEvent]:
        out: list[OutputEvent] = []
        for piece in pieces:
            if isinstance(piece, ThinkDelta):
                out.append(self.output.first(piece))
            elif isinstance(piece, TextDelta):
                if piece.text:
                    out.append(self.output.text(piece.text))
            elif self.output.calls and not self.prepared.conv.parallel_tool_calls:
                log.info("dropping extra tool call %s: parallel_tool_calls is false", piece.name)
            else:
                self.output.call(piece)
                if self.forced:
                    self.held_calls.append(piece)  # sent only once no repair is needed
                else:
                    out.append(self.output.first(piece))
        return out

    def _budget_exhausted(self) -> bool:
        if self.pipeline.stop_matched is not None:
            self.finish_reason = "stop_sequence"
            return True
        if self.output.over_budget():
            self.finish_reason = "length"
            return True
        return False

    # ---- forced choices ---------------------------------------------------------------------

    def _forced_call_missing(self) -> bool:
        if not self.forced or self.finish_reason == "length" or self.pipeline.stop_matched is not None:
            return False
        return needs_repair(self.prepared.conv.tool_choice, self.held_calls, self.pipeline.rejected)

    def _start_repair(self) -> None:
        self.repaired = True
        self.pipeline.restart_tools()
        self.held_calls = []
        self.output.forget_calls()

    def _explain_rejections(self) -> TextDelta:
        separator = "\n\n" if self.output.said_anything() else ""
        self.output.new_paragraph = False
        return self.output.text(separator + fallback_text(self.pipeline.rejected))

    # ---- the end ----------------------------------------------------------------------------

    def _conclude(self) -> list[OutputEvent | Finish]:
        out: list[OutputEvent | Finish] = list(self.held_calls)
        if self.output.calls:
            self.finish_reason = "tool_calls"
        self._remember_session()
        context = self.upstream_context_tokens if self.ctx.context_usage else None
        usage = usage_of(self.prepared.input_tokens, self.output.tokens(), context)
        out.append(
            finish(
                self.finish_reason, usage, self.pipeline.stop_matched, self.lease.instance.name,
                self.prepared.started, self.output.first_token_at,
                upstream_tokens=self.upstream_tokens, session_reused=self.plan.entry is not None,
            )
        )  # fmt: skip
        return out

    def _remember_session(self) -> None:
        """Only a clean turn is reusable: a cut-short or repaired one differs from what the client holds."""
        if self.finish_reason not in ("stop", "tool_calls") or self.repaired or self.parked_call is not None:
            return
        entry = SessionEntry(self.lease.instance.name, self.lease.generation, self.session_id)
        prepared = self.prepared
        self.stored = self.ctx.sessions.store(
            prepared.api_key_id, prepared.model, prepared.conv, self.output.reply(), self.output.calls, entry
        )
