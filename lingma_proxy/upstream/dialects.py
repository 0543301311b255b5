"""Lingma's two chat dialects, each turned into the same upstream events (docs/protocol.md §5, §6, §9).

A dialect starts a *turn*: it subscribes to the turn's request id on the RPC connection, sends the
prompt without waiting on the answer, and translates every routed message into TextDelta, ThinkDelta,
NativeToolCall and one final UpstreamFinish, or one ApiError. Both go to `emit`; the turn ignores
anything after its end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from lingma_proxy.errors import ApiError
from lingma_proxy.events import NativeToolCall, TextDelta, ThinkDelta, UpstreamEvent, UpstreamFinish
from lingma_proxy.model import Image
from lingma_proxy.upstream.classic_images import upload_images
from lingma_proxy.upstream.failures import api_error_from_rpc, classify_failure, crashed
from lingma_proxy.upstream.rpc import (
    ACP_REQUEST_ID,
    CONNECTION_LOST,
    ConnectionLost,
    RpcConnection,
    RpcError,
    RpcTimeout,
)

_log = logging.getLogger(__name__)

IMAGE_NOT_SUPPORTED = "image_not_supported"


Emit = Callable[[UpstreamEvent | ApiError], None]

CONTROL_TIMEOUT_SEC = 10.0  # chat/stop, session/new and friends answer at once; don't let them hang a turn
ACP_FINISH_GRACE_SEC = 1.0


@dataclass
class ChatRequest:
    question: str
    model_key: str
    session_id: str  # ours (a UUID); ACP session ids are mapped from it
    request_id: str
    is_reply: bool
    mode: str = "chat"
    images: tuple[Image, ...] = ()  # forwarded as prompt parts by the agent dialect only (§9)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def timestamp_ms() -> int:
    return int(time.time() * 1000)


# --- the shared turn machinery -------------------------------------------------------------


class Turn:
    """One chat on the connection: routes messages for its request id, ends exactly once."""

    prompt_method = ""  # the call that starts the turn; its reply only ever reports a failure

    def __init__(self, rpc: RpcConnection, req: ChatRequest, emit: Emit, keys: list[str]) -> None:
        self.rpc = rpc
        self.req = req
        self._emit = emit
        self._keys = keys
        self.ended = False
        self.seen_events = False
        for key in keys:
            rpc.subscribe(key, self.on_message)

    def on_message(self, method: str, params: dict) -> None:
        if self.ended:
            return
        if method == CONNECTION_LOST:
            self.fail(crashed())
        elif method in ("error", "fatal_error"):  # QoderCN's failure methods (§6)
            self.fail(classify_failure(str(params.get("message") or params.get("errorMessage") or params)))
        elif method == "tool/invoke":
            self.push(
                NativeToolCall(
                    request_id=self.req.request_id,
                    tool_call_id=str(params.get("toolCallId", "")),
                    name=str(params.get("name", "")),
                    parameters=params.get("parameters") if isinstance(params.get("parameters"), dict) else {},
                )
            )
        else:
            self.translate(method, params)

    def translate(self, method: str, params: dict) -> None:
        raise NotImplementedError

    def push(self, event: UpstreamEvent) -> None:
        if not self.ended:
            self.seen_events = True
            self._emit(event)

    def finish_reason(self, data: dict) -> str | None:
        """The reason of a successful finish (statusCode 200, or none at all: the plugin checks `== 200`);
        any other status fails the turn, and gives None."""
        status = _int_or_none(data.get("statusCode"))
        reason = str(data.get("reason") or "")
        if status in (None, 200):
            return reason
        self.fail(classify_failure(reason or f"chat finished with status {status}", status))
        return None

    def finish(self, reason: str, context_tokens: int | None = None) -> None:
        if not self.ended:
            self._emit(UpstreamFinish(reason=reason, context_tokens=context_tokens))
            self.ended = True

    def fail(self, error: ApiError) -> None:
        if not self.ended:
            self._emit(error)
            self.ended = True

    def on_prompt_answered(self, answer: asyncio.Future) -> None:
        """The prompt call's own reply: only its failure matters, the stream carries the rest."""
        if answer.cancelled():
            return
        exc = answer.exception()  # always retrieved, or asyncio logs it as never retrieved
        if self.ended:
            return
        if isinstance(exc, RpcTimeout) and self.seen_events:
            return  # the stream is flowing; a slow or missing ack is not a failure
        if exc is not None:
            self.fail(api_error_from_rpc(exc, self.prompt_method))
            return
        result = answer.result()
        if isinstance(result, dict) and (result.get("success") is False or result.get("isSuccess") is False):
            message = result.get("errorMessage") or result.get("errorMsg") or result.get("message") or "chat refused"
            self.fail(classify_failure(str(message), _int_or_none(result.get("status") or result.get("statusCode"))))

    async def cancel(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.ended = True
        for key in self._keys:
            self.rpc.unsubscribe(key)


async def _best_effort(call: Any, what: str) -> None:
    """Stopping a chat is advisory: a dead or slow instance must not turn a cancel into an error."""
    try:
        await call
    except (RpcError, RpcTimeout, ConnectionLost) as exc:
        _log.warning("%s failed: %s", what, exc)


# --- classic: chat/ask, the plugin binary (§5, §6) ---------------------------------------


def classic_ask_params(req: ChatRequest, image_urls: list[str] | None = None) -> dict:
    """Exactly the minimal chat/ask observed working against the plugin binary (§5); uploaded images are
    named in `chatContext.imageUrls` (§11.4, unverified from a non-plugin client)."""
    return {
        "requestId": req.request_id,
        "sessionId": req.session_id,
        "isReply": req.is_reply,
        "questionText": req.question,
        "stream": True,
        "chatTask": "FREE_INPUT",
        "sessionType": "chat",
        "mode": req.mode,
        "source": 1,
        "codeLanguage": "",
        "taskDefinitionType": "",
        "targetAgent": "",
        "shellType": "",
        "chatContext": {"imageUrls": image_urls} if image_urls else None,
        "pluginPayloadConfig": {"isEnableProjectRule": False, "isEnableAskAgent": False, "isEnableAutoMemory": False},
        "extra": {"modelConfig": {"key": req.model_key}},
        "customModel": None,
    }


class ClassicTurn(Turn):
    prompt_method = "chat/ask"

    def __init__(self, rpc: RpcConnection, req: ChatRequest, emit: Emit, control_timeout: float) -> None:
        super().__init__(rpc, req, emit, [req.request_id])
        self._control_timeout = control_timeout
        self._sent: list[str] = []  # what went out as TextDelta, kept only for overwrite
        self._context_tokens: int | None = None

    def translate(self, method: str, params: dict) -> None:
        if method == "chat/answer":
            text = str(params.get("text") or "")
            if params.get("overwrite"):
                text = self._replacement_suffix(text)
            if text:
                self._sent.append(text)
                self.push(TextDelta(text))
        elif method == "chat/think":
            text = str(params.get("text") or "")
            if text:
                self.push(ThinkDelta(text))
        elif method == "context/usage/sync":  # §11.5: routed here only when it names our requestId
            self._context_tokens = _int_or_none(params.get("usedTokens"))
        elif method == "chat/finish":
            reason = self.finish_reason(params)
            if reason is not None:
                self.finish(reason, self._context_tokens)
        # chat/process_step_callback, session/title/update, tool/call/sync: already acked, nothing to show.

    def _replacement_suffix(self, full_text: str) -> str:
        """`overwrite: true` replaces the answer so far (§6, unverified). Sent text cannot be unsent, so
        emit only the new suffix when the replacement extends it, else the whole replacement."""
        sent = "".join(self._sent)
        if full_text.startswith(sent):
            return full_text[len(sent) :]
        _log.warning(
            "chat %s: overwrite replaced text already streamed; sending the new text after it", self.req.request_id
        )
        self._sent.clear()
        return full_text

    async def cancel(self) -> None:
        params = {"requestId": self.req.request_id, "sessionId": self.req.session_id}
        await _best_effort(self.rpc.call("chat/stop", params, self._control_timeout), "chat/stop")


class ClassicDialect:
    name = "classic"

    def __init__(self, rpc: RpcConnection, rpc_timeout: float) -> None:
        self._rpc = rpc
        self._rpc_timeout = rpc_timeout
        self._control_timeout = min(rpc_timeout, CONTROL_TIMEOUT_SEC)

    async def start_turn(self, req: ChatRequest, emit: Emit) -> Turn:
        # completion/images.py checked lingma.classic_images, the model and the limits before a slot was taken.
        image_urls = await upload_images(self._rpc, req.images, self._control_timeout) if req.images else None
        turn = ClassicTurn(self._rpc, req, emit, self._control_timeout)
        ask = self._rpc.request("chat/ask", classic_ask_params(req, image_urls), self._rpc_timeout)
        ask.add_done_callback(turn.on_prompt_answered)
        return turn

    async def delete_session(self, session_id: str) -> None:
        try:
            await self._rpc.call("chat/deleteSessionById", {"sessionId": session_id}, self._control_timeout)
        except RpcError:
            await self._rpc.call("chat/deleteSessionById", {"id": session_id}, self._control_timeout)


# --- ACP: session/new + session/prompt, the desktop app and QoderCN (§9) ------------------


async def acp_new_session(rpc: RpcConnection, cwd: str, timeout: float) -> str:
    params = {"cwd": cwd, "mcpServers": [], "_meta": {}, "timestamp": timestamp_ms()}
    result = await rpc.call("session/new", params, timeout)
    session_id = (result.get("sessionId") or result.get("id")) if isinstance(result, dict) else None
    if not session_id:
        raise RpcError(-32603, f"session/new returned no session id: {result!r}")
    return str(session_id)


async def acp_try_session(rpc: RpcConnection, cwd: str, timeout: float) -> None:
    """§9's dialect test: only the agent dialect answers session/new with a session id (RpcError or
    RpcTimeout otherwise). The session is deleted at once, so that testing leaves nothing in the
    user's history on the desktop app."""
    session_id = await acp_new_session(rpc, cwd, timeout)
    delete = rpc.call("chat/deleteSessionById", {"sessionId": session_id}, min(timeout, CONTROL_TIMEOUT_SEC))
    await _best_effort(delete, "deleting the dialect probe's session")


def content_text(content: Any) -> str:
    """ACP content is a part, a list of parts, or (leniently) a bare string."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        text = content.get("text")
        return text if isinstance(text, str) else ""
    if isinstance(content, list):
        return "".join(content_text(part) for part in content)
    return ""


class AcpTurn(Turn):
    prompt_method = "session/prompt"

    def __init__(self, rpc: RpcConnection, req: ChatRequest, emit: Emit, acp_session_id: str) -> None:
        # The session id is a fallback route for updates that lack `_meta` (unverified either way).
        super().__init__(rpc, req, emit, [req.request_id, acp_session_id])
        self.acp_session_id = acp_session_id
        self._prompt_answered = False
        self._finish_reason: str | None = None
        self._context_tokens: int | None = None

    def on_prompt_answered(self, answer: asyncio.Future) -> None:
        super().on_prompt_answered(answer)
        self._prompt_answered = True
        if self._finish_reason is not None:
            self.finish(self._finish_reason, self._context_tokens)

    def _on_chat_finish(self, reason: str) -> None:
        """chat_finish carries no verdict; a failed turn shows as an error on the prompt's reply, which
        follows it. Wait for that reply briefly, then finish anyway, since it may never come (§9)."""
        if self._prompt_answered:
            self.finish(reason, self._context_tokens)
            return
        self._finish_reason = reason
        asyncio.get_running_loop().call_later(ACP_FINISH_GRACE_SEC, self.finish, reason, self._context_tokens)

    def translate(self, method: str, params: dict) -> None:
        update = params.get("update") if method == "session/update" else None
        if not isinstance(update, dict):
            return
        kind = update.get("sessionUpdate")
        if kind == "agent_message_chunk":
            text = content_text(update.get("content"))
            if text:
                self.push(TextDelta(text))
        elif kind == "agent_thought_chunk":
            text = content_text(update.get("content"))
            if text:
                self.push(ThinkDelta(text))
        elif kind == "notification":
            data = update.get("data") if isinstance(update.get("data"), dict) else {}
            if update.get("type") == "context_usage":
                self._context_tokens = _int_or_none(data.get("usedTokens"))
            elif update.get("type") == "chat_finish" and (reason := self.finish_reason(data)) is not None:
                self._on_chat_finish(reason)

    async def cancel(self) -> None:
        params = {"sessionId": self.acp_session_id, "_meta": {ACP_REQUEST_ID: self.req.request_id}}
        await _best_effort(self.rpc.notify("session/cancel", params), "session/cancel")


def _image_part(image: Image, family: str, number: int) -> dict:
    """An ACP image content part (§11.4): inline base64 `data` under a file URI in the family's scheme
    (`qodercn:///agent/file?path=…` or `lingma:///…`), which the QoderCN worker never resolves; an image the
    client gave only by URL goes as that `uri`, with no bytes to inline."""
    mime = image.media_type or "image/png"
    if not image.data:
        return {"type": "image", "mimeType": mime, "uri": image.url, "data": ""}
    name = f"image-{number}.{mime.rpartition('/')[2] or 'png'}"
    uri = f"{family}:///agent/file?{urlencode({'path': name})}"
    return {"type": "image", "mimeType": mime, "uri": uri, "data": image.data}


class AcpDialect:
    name = "acp"

    def __init__(self, rpc: RpcConnection, rpc_timeout: float, cwd: str, family: str = "lingma") -> None:
        self._rpc = rpc
        self._family = family  # lingma | qodercn: the image URI scheme (§11.4)
        self._rpc_timeout = rpc_timeout
        self._control_timeout = min(rpc_timeout, CONTROL_TIMEOUT_SEC)
        self._cwd = cwd
        self._sessions: dict[str, str] = {}  # our session id -> ACP session id
        self._models: dict[str, str] = {}  # ACP session id -> the model last set on it

    async def start_turn(self, req: ChatRequest, emit: Emit) -> Turn:
        try:
            acp_session_id = await self._session_for(req)
            if self._models.get(acp_session_id) != req.model_key:
                params = {
                    "sessionId": acp_session_id,
                    "modelId": req.model_key,
                    "timestamp": timestamp_ms(),
                    "_meta": {},
                }
                await self._rpc.call("session/set_model", params, self._control_timeout)
                self._models[acp_session_id] = req.model_key
        except (RpcError, RpcTimeout, ConnectionLost) as exc:
            raise api_error_from_rpc(exc, "session/new or session/set_model") from None
        turn = AcpTurn(self._rpc, req, emit, acp_session_id)
        params = {
            "sessionId": acp_session_id,
            "prompt": [{"type": "text", "text": req.question}, *self._image_parts(req)],
            "_meta": {ACP_REQUEST_ID: req.request_id},
        }
        # Its reply may be {stopReason}, null, or come late: only an error from it counts (§9).
        # The reply only comes once the stream has ended, so give it longer than the stream's own idle
        # timeout (ChatStream): a hang is then always reported the same way, whichever dialect ran.
        prompt_timeout = self._rpc_timeout + CONTROL_TIMEOUT_SEC
        self._rpc.request("session/prompt", params, prompt_timeout).add_done_callback(turn.on_prompt_answered)
        return turn

    def _image_parts(self, req: ChatRequest) -> list[dict]:
        return [_image_part(image, self._family, n) for n, image in enumerate(req.images, 1)]

    async def _session_for(self, req: ChatRequest) -> str:
        if req.is_reply and req.session_id in self._sessions:
            return self._sessions[req.session_id]
        acp_session_id = await acp_new_session(self._rpc, self._cwd, self._control_timeout)
        self._sessions[req.session_id] = acp_session_id
        return acp_session_id

    async def delete_session(self, session_id: str) -> None:
        acp_session_id = self._sessions.pop(session_id, None)
        if acp_session_id is None:
            return  # never reached upstream, nothing to delete
        self._models.pop(acp_session_id, None)
        await self._rpc.call("chat/deleteSessionById", {"sessionId": acp_session_id}, self._control_timeout)


Dialect = ClassicDialect | AcpDialect
