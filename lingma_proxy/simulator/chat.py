"""Chat turns, whatever the dialect: admission, sessions, the stream's shape, stops, faults and native tools.

Each dialect supplies a `StreamSink` that puts the same steps on its own wire (classic `chat/*`
requests, or agent-dialect `session/update` notifications), so scenarios and faults behave alike.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Protocol

import ujson

from lingma_proxy.simulator.auth import Auth
from lingma_proxy.simulator.peer import Peer, ReplyCallback, RpcError
from lingma_proxy.simulator.plan import (
    DEFAULT_RPC_ERROR,
    REFUSAL_MESSAGES,
    ReplyPlan,
    plan_reply,
    split_chunks,
    visible_text,
)
from lingma_proxy.simulator.scenario import REFUSALS, Scenario
from lingma_proxy.simulator.sessions import SessionStore
from lingma_proxy.simulator.settings import RPC_TIMEOUT_SEC
from lingma_proxy.simulator.stats import SimStats

log = logging.getLogger("lingma.sim")

FAULT_DELTAS = 2  # non-empty deltas sent before crash_mid_stream / finish_error strike


class NotLoggedIn(Exception):
    pass


@dataclass(frozen=True)
class Ask:
    request_id: str
    session_id: str
    question: str
    is_reply: bool
    model: str
    mode: str
    image_urls: tuple[str, ...] = ()  # classic chatContext.imageUrls (§11.4)


@dataclass(frozen=True)
class Outcome:
    stop_reason: str  # end_turn | cancelled | error
    error: str = ""


class StreamSink(Protocol):
    async def begin(self) -> None: ...
    async def think_start(self) -> None: ...
    async def think_text(self, text: str) -> None: ...
    async def think_done(self) -> None: ...
    async def answer(self, text: str) -> None: ...
    async def finish(self, reason: str, status_code: int, full_answer: str) -> None: ...
    def invoke_tool(
        self, tool_call_id: str, name: str, parameters: Any, on_reply: ReplyCallback
    ) -> Awaitable[None]: ...


@dataclass
class ActiveChat:
    ask: Ask
    owner: Peer
    outcome: asyncio.Future[Outcome]
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    pieces: list[str] = field(default_factory=list)  # the answer text streamed so far
    task: asyncio.Task[None] | None = None  # held here so the running stream is never garbage-collected

    @property
    def streamed(self) -> str:
        return "".join(self.pieces)


def _tool_outcome(value: Any) -> str:
    """What the model is told of a tool result (tool/invokeResult params, or a reply carrying the same object)."""
    if isinstance(value, dict) and value.get("success") is False:
        return f"error: {value.get('errorMessage') or 'tool failed'}"
    if isinstance(value, dict) and "result" in value:
        value = value["result"]
    return value if isinstance(value, str) else ujson.dumps(value, ensure_ascii=False)


class ChatEngine:
    def __init__(
        self, stats: SimStats, sessions: SessionStore, scenario: Scenario, auth: Auth, max_concurrent: int
    ) -> None:
        self._stats = stats
        self._sessions = sessions
        self._scenario = scenario
        self._auth = auth
        self._max_concurrent = max_concurrent
        self._active: dict[str, ActiveChat] = {}
        self._tool_waits: dict[str, asyncio.Future[str]] = {}

    def admit(self, ask: Ask) -> ReplyPlan:
        """Count the ask, refuse it as the real binary would, or record the turn and plan its reply."""
        self._stats.record_ask(
            ask.request_id, ask.session_id, ask.is_reply, ask.question, ask.model, ask.mode, ask.image_urls
        )
        if self._auth.user() is None:
            raise NotLoggedIn()
        if self._max_concurrent and len(self._active) >= self._max_concurrent:
            raise RpcError(-32603, "too many concurrent requests")
        if ask.request_id in self._active:
            raise RpcError(-32603, f"duplicate requestId {ask.request_id}")
        rule = self._scenario.select(ask.question, ask.model)
        if rule is not None and rule.fault == "logged_out":
            self._auth.logout()
            raise NotLoggedIn()
        if rule is not None and rule.fault == "rpc_error":
            raise RpcError(-32603, rule.message or DEFAULT_RPC_ERROR)
        if rule is not None and rule.fault in REFUSALS:
            refusal = REFUSAL_MESSAGES[rule.fault].replace("{session_id}", ask.session_id).replace("{model}", ask.model)
            raise RpcError(-32603, rule.message or refusal)
        self._sessions.add_question(ask.session_id, ask.question, ask.is_reply)
        return plan_reply(rule, ask.question, self._sessions.user_texts(ask.session_id))

    def start(self, ask: Ask, plan: ReplyPlan, sink: StreamSink, owner: Peer) -> ActiveChat:
        chat = ActiveChat(ask=ask, owner=owner, outcome=asyncio.get_running_loop().create_future())
        self._active[ask.request_id] = chat
        self._stats.chat_started()
        chat.task = asyncio.create_task(self._run(chat, plan, sink))
        return chat

    def stop(self, request_id: str) -> None:
        self._stats.stops.append(request_id)
        chat = self._active.get(request_id)
        if chat is not None:
            chat.stopped.set()

    def stop_session(self, session_id: str) -> None:
        for chat in list(self._active.values()):
            if chat.ask.session_id == session_id:
                self.stop(chat.ask.request_id)

    def stop_owned_by(self, peer: Peer) -> None:
        """A client that hangs up abandons its streams; they end without a word."""
        for chat in self._active.values():
            if chat.owner is peer:
                chat.stopped.set()

    def deliver_tool_result(self, params: dict[str, Any]) -> None:
        waiter = self._tool_waits.get(str(params.get("toolCallId", "")))
        if waiter is None or waiter.done():
            log.warning("tool/invokeResult for no waiting tool call: %s", params.get("toolCallId"))
        else:
            self._stats.tool_results["invoke_result"] += 1
            waiter.set_result(_tool_outcome(params))

    async def _run(self, chat: ActiveChat, plan: ReplyPlan, sink: StreamSink) -> None:
        outcome = Outcome("cancelled")
        try:
            outcome = await self._stream(chat, plan, sink)
        finally:
            self._active.pop(chat.ask.request_id, None)
            self._stats.chat_ended()
            self._sessions.add_answer(chat.ask.session_id, chat.streamed)
            if not chat.outcome.done():
                chat.outcome.set_result(outcome)

    async def _stream(self, chat: ActiveChat, plan: ReplyPlan, sink: StreamSink) -> Outcome:
        await sink.begin()
        if plan.fault == "hang":
            await chat.stopped.wait()  # a hung upstream never finishes, not even when stopped
            return Outcome("cancelled")
        tool_result = await self._call_tool(chat, plan.native_tool, sink) if plan.native_tool else None
        if plan.think and plan.think_style == "chat_think" and not chat.stopped.is_set():
            await sink.think_start()
            for piece in split_chunks(plan.think, plan.chunk_chars):
                if await self._pause(chat, plan.chunk_delay_sec):
                    break
                await sink.think_text(piece)
            await sink.think_done()
        if await self._pause(chat, plan.first_token_delay_sec):
            return await self._finish_stopped(chat, sink)
        await sink.answer("")  # real streams carry empty deltas
        for index, piece in enumerate(split_chunks(visible_text(plan, tool_result), plan.chunk_chars)):
            if index and await self._pause(chat, plan.chunk_delay_sec):
                return await self._finish_stopped(chat, sink)
            await sink.answer(piece)
            chat.pieces.append(piece)
            if index + 1 == FAULT_DELTAS and plan.fault in ("crash_mid_stream", "finish_error"):
                break
        if plan.fault == "crash_mid_stream":
            # Let the chunks already written reach the client first, as a real crash after them would.
            await asyncio.sleep(0.05)
            self._crash()
        if plan.fault == "finish_error":
            await sink.finish(plan.fault_message, plan.status_code, chat.streamed)
            return Outcome("error", plan.fault_message)
        await sink.finish("success", 200, chat.streamed)
        return Outcome("end_turn")

    async def _pause(self, chat: ActiveChat, seconds: float) -> bool:
        """Wait between chunks, always yielding so a stop is seen promptly; True when stopped."""
        if seconds <= 0:
            await asyncio.sleep(0)
        else:
            try:
                await asyncio.wait_for(chat.stopped.wait(), seconds)
            except TimeoutError:
                pass
        return chat.stopped.is_set()

    async def _finish_stopped(self, chat: ActiveChat, sink: StreamSink) -> Outcome:
        await sink.finish("stopped", 200, chat.streamed)
        return Outcome("cancelled")

    async def _call_tool(self, chat: ActiveChat, tool: dict[str, Any], sink: StreamSink) -> str | None:
        """Send `tool/invoke` and wait for its result, in the reply itself or via `tool/invokeResult`."""
        tool_call_id = f"call_{uuid.uuid4().hex[:24]}"
        result: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._tool_waits[tool_call_id] = result

        def on_reply(value: Any, error: Any) -> None:
            if error is None and value not in (None, {}) and not result.done():
                self._stats.tool_results["reply"] += 1
                result.set_result(_tool_outcome(value))

        stop_wait = asyncio.ensure_future(chat.stopped.wait())
        try:
            await sink.invoke_tool(tool_call_id, str(tool["name"]), tool.get("parameters") or {}, on_reply)
            await asyncio.wait({result, stop_wait}, timeout=RPC_TIMEOUT_SEC, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop_wait.cancel()
            self._tool_waits.pop(tool_call_id, None)
        if result.done():
            return result.result()
        if chat.stopped.is_set():
            return None
        log.warning("tool call %s got no result within %.0f s", tool_call_id, RPC_TIMEOUT_SEC)
        return "(no result: timeout)"

    def _crash(self) -> None:
        log.error("simulated crash mid-stream (fault crash_mid_stream)")
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(1)
