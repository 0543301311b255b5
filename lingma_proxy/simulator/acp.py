"""The agent (ACP-style) dialect of the desktop app and QoderCN (docs/protocol.md §9).

Sessions are created by `session/new` and need `session/set_model` before a prompt; the stream is
`session/update` notifications, and the prompt's own response comes after `chat_finish`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from typing import Any

from lingma_proxy.simulator.chat import Ask, ChatEngine, NotLoggedIn
from lingma_proxy.simulator.classic import Handler, send_tool_invoke
from lingma_proxy.simulator.models import is_vision_model
from lingma_proxy.simulator.peer import Peer, ReplyCallback, RpcError
from lingma_proxy.simulator.sessions import CONTEXT_LIMIT_TOKENS, SessionStore
from lingma_proxy.simulator.stats import SimStats

REQUEST_ID_KEY = "ai-coding/request-id"


def prompt_text(prompt: Any) -> str:
    if not isinstance(prompt, list):
        raise RpcError(-32602, "prompt must be a list of content parts")
    texts = [part.get("text", "") for part in prompt if isinstance(part, dict) and part.get("type") == "text"]
    return "\n".join(str(text) for text in texts)


def prompt_images(prompt: list[Any], model: str, family: str) -> list[dict[str, str]]:
    """The image parts of a prompt, each with a mimeType and its bytes or a uri; only a vision model takes
    them (a simulator choice: how the real runtime refuses is unverified)."""
    images = [part for part in prompt if isinstance(part, dict) and part.get("type") == "image"]
    if images and not is_vision_model(model, family):
        raise RpcError(-32603, f"model {model} does not support image input")
    for part in images:
        if not part.get("mimeType") or not (part.get("data") or part.get("uri")):
            raise RpcError(-32602, "an image part needs mimeType and data or uri")
    return [{key: str(part.get(key) or "") for key in ("mimeType", "data", "uri")} for part in images]


class AcpSink:
    """The stream as `session/update` notifications, with the runtime's own bookkeeping requests alongside."""

    def __init__(self, peer: Peer, ask: Ask, sessions: SessionStore, family: str) -> None:
        self._peer = peer
        self._family = family
        self._ask = ask
        self._sessions = sessions

    def _update(self, update: dict[str, Any]) -> Awaitable[None]:
        params = {"sessionId": self._ask.session_id, "_meta": {REQUEST_ID_KEY: self._ask.request_id}, "update": update}
        return self._peer.send_notification("session/update", params)

    def _bookkeeping(self, method: str) -> Awaitable[None]:
        """The desktop runtime's server→client requests (§2): they carry ids and need acks, like the
        classic stream's, though they say nothing about the answer."""
        return self._peer.send_request(method, {"sessionId": self._ask.session_id, "requestId": self._ask.request_id})

    async def begin(self) -> None:
        await self._bookkeeping("snapshot/syncAll")
        await self._bookkeeping("task/status/sync")

    async def think_start(self) -> None:
        pass

    async def think_text(self, text: str) -> None:
        await self._update({"sessionUpdate": "agent_thought_chunk", "content": {"type": "text", "text": text}})

    async def think_done(self) -> None:
        pass

    async def answer(self, text: str) -> None:
        await self._update({"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": text}})

    async def finish(self, reason: str, status_code: int, full_answer: str) -> None:
        await self._bookkeeping("user/task/stats/sync")
        used = self._sessions.context_tokens(self._ask.session_id, full_answer)
        await self._update(
            {
                "sessionUpdate": "notification",
                "type": "context_usage",
                "data": {"usedTokens": used, "limitTokens": CONTEXT_LIMIT_TOKENS},
            }
        )
        finish = {"reason": reason, "fullAnswer": full_answer}
        await self._update({"sessionUpdate": "notification", "type": "chat_finish", "data": finish})

    def invoke_tool(self, tool_call_id: str, name: str, parameters: Any, on_reply: ReplyCallback) -> Awaitable[None]:
        request_id = self._ask.request_id
        return send_tool_invoke(self._peer, request_id, tool_call_id, name, parameters, on_reply, self._family)


class AcpMethods:
    def __init__(self, engine: ChatEngine, sessions: SessionStore, stats: SimStats, family: str) -> None:
        self._engine = engine
        self._family = family
        self._sessions = sessions
        self._stats = stats
        self._models: dict[str, str] = {}  # sessionId → model key set by session/set_model

    def table(self) -> dict[str, Handler]:
        return {
            "session/new": self.new_session,
            "session/set_model": self.set_model,
            "session/prompt": self.prompt,
            "session/cancel": self.cancel,
        }

    def _known_session(self, params: dict[str, Any]) -> str:
        session_id = str(params.get("sessionId") or "")
        if session_id not in self._models:
            raise RpcError(-32603, f"session not found: {session_id}")
        return session_id

    async def new_session(self, params: dict[str, Any], peer: Peer) -> Any:
        session_id = str(uuid.uuid4())
        self._stats.record_workspace(params.get("cwd"))
        self._models[session_id] = ""
        return {"sessionId": session_id}

    async def set_model(self, params: dict[str, Any], peer: Peer) -> Any:
        session_id = self._known_session(params)
        model = str(params.get("modelId") or "")
        if not model:
            raise RpcError(-32603, "model key is empty")
        self._models[session_id] = model
        return {}

    async def prompt(self, params: dict[str, Any], peer: Peer) -> Any:
        session_id = self._known_session(params)
        meta = params.get("_meta") if isinstance(params.get("_meta"), dict) else {}
        request_id = str(meta.get(REQUEST_ID_KEY) or "")
        if not request_id:
            raise RpcError(-32603, "requestId is empty")
        if not self._models[session_id]:
            raise RpcError(-32603, "model key is empty")
        question = prompt_text(params.get("prompt"))
        for image in prompt_images(params["prompt"], self._models[session_id], self._family):
            self._stats.record_image(request_id, image["mimeType"], image["data"], image["uri"])
        ask = Ask(
            request_id=request_id,
            session_id=session_id,
            question=question,
            is_reply=self._sessions.has(session_id),
            model=self._models[session_id],
            mode=str(meta.get("ai-coding/mode") or ""),
        )
        try:
            plan = self._engine.admit(ask)
        except NotLoggedIn:
            raise RpcError(-32603, "user not login") from None
        sink = AcpSink(peer, ask, self._sessions, self._family)
        outcome = await self._engine.start(ask, plan, sink, owner=peer).outcome
        if outcome.stop_reason == "error":
            raise RpcError(-32603, outcome.error)
        return {"stopReason": outcome.stop_reason}

    async def cancel(self, params: dict[str, Any], peer: Peer) -> Any:
        self._engine.stop_session(str(params.get("sessionId") or ""))
        return {}
