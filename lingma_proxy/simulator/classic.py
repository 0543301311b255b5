"""The classic dialect of the plugin binary (docs/protocol.md §4–§6): its methods and its chat stream."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from lingma_proxy.simulator.auth import Auth
from lingma_proxy.simulator.chat import Ask, ChatEngine, NotLoggedIn
from lingma_proxy.simulator.images import ImageUploads
from lingma_proxy.simulator.models import query_models_result
from lingma_proxy.simulator.peer import Peer, ReplyCallback, RpcError
from lingma_proxy.simulator.scenario import Scenario
from lingma_proxy.simulator.sessions import CONTEXT_LIMIT_TOKENS, SessionStore
from lingma_proxy.simulator.settings import RPC_TIMEOUT_SEC
from lingma_proxy.simulator.state import WorkDir

log = logging.getLogger("lingma.sim")

Handler = Callable[[dict[str, Any], Peer], Awaitable[Any]]

TITLE_CHARS = 50


def _now_ms() -> int:
    return int(time.time() * 1000)


def _title(question: str) -> str:
    return next((line.strip()[:TITLE_CHARS] for line in question.splitlines() if line.strip()), "New chat")


def _model_key(params: dict[str, Any]) -> str:
    extra = params.get("extra")
    model_config = extra.get("modelConfig") if isinstance(extra, dict) else None
    return str(model_config.get("key", "")) if isinstance(model_config, dict) else ""


def _ask_reply(request_id: str, status: int, error_message: str) -> dict[str, Any]:
    ok = status == 200
    return {"requestId": request_id, "success": ok, "isSuccess": ok, "status": status, "errorMessage": error_message}


def send_tool_invoke(
    peer: Peer, request_id: str, tool_call_id: str, name: str, parameters: Any, on_reply: ReplyCallback, family: str
) -> Awaitable[None]:
    """A native tool call (§6), the same in both dialects. The plugin binary says `async: true` and takes the
    result later through tool/invokeResult; QoderCN wants it in the reply [reported], so its reply may take as
    long as the tool."""
    in_reply = family == "qodercn"
    params = {
        "requestId": request_id,
        "toolCallId": tool_call_id,
        "name": name,
        "parameters": parameters,
        "async": not in_reply,
    }
    return peer.send_request("tool/invoke", params, on_reply, ack_timeout_sec=RPC_TIMEOUT_SEC if in_reply else None)


class ClassicSink:
    """The stream as server→client requests: step callbacks and title, then think/answer deltas, then finish."""

    def __init__(self, peer: Peer, ask: Ask, usage_from: SessionStore | None, family: str) -> None:
        """`usage_from`: the sessions to report context/usage/sync from; None sends none."""
        self._peer = peer
        self._family = family
        self._usage_from = usage_from
        self._ids = {"requestId": ask.request_id, "sessionId": ask.session_id}
        self._title = _title(ask.question)

    def _step(self, status: str, step: str) -> Awaitable[None]:
        params = {**self._ids, "step": step, "description": "", "status": status, "result": None, "message": ""}
        return self._peer.send_request("chat/process_step_callback", params)

    async def begin(self) -> None:
        await self._step("doing", "step_start")
        await self._peer.send_request(
            "session/title/update", {"sessionId": self._ids["sessionId"], "sessionTitle": self._title}
        )
        await self._step("done", "step_end")

    def _think(self, text: str, step: str) -> Awaitable[None]:
        params = {**self._ids, "text": text, "step": step, "timestamp": _now_ms(), "extra": {"sessionType": "chat"}}
        return self._peer.send_request("chat/think", params)

    async def think_start(self) -> None:
        await self._think("", "start")

    async def think_text(self, text: str) -> None:
        await self._think(text, "start")

    async def think_done(self) -> None:
        await self._think("", "done")

    async def answer(self, text: str) -> None:
        params = {
            **self._ids,
            "text": text,
            "overwrite": False,
            "isFiltered": False,
            "timestamp": _now_ms(),
            "extra": {"sessionType": "chat"},
        }
        await self._peer.send_request("chat/answer", params)

    async def finish(self, reason: str, status_code: int, full_answer: str) -> None:
        if self._usage_from is not None:
            used = self._usage_from.context_tokens(self._ids["sessionId"], full_answer)
            usage = {**self._ids, "usedTokens": used, "limitTokens": CONTEXT_LIMIT_TOKENS}
            await self._peer.send_request("context/usage/sync", usage)  # §11.5: the classic usage figure
        params = {
            **self._ids,
            "reason": reason,
            "statusCode": status_code,
            "fullAnswer": full_answer,
            "extra": {"sessionType": "chat"},
        }
        await self._peer.send_request("chat/finish", params)

    def invoke_tool(self, tool_call_id: str, name: str, parameters: Any, on_reply: ReplyCallback) -> Awaitable[None]:
        request_id = self._ids["requestId"]
        return send_tool_invoke(self._peer, request_id, tool_call_id, name, parameters, on_reply, self._family)


class ClassicMethods:
    def __init__(
        self,
        auth: Auth,
        work_dir: WorkDir,
        engine: ChatEngine,
        sessions: SessionStore,
        scenario: Scenario,
        uploads: ImageUploads,
        family: str = "lingma",
        usage_sync: bool = False,
    ) -> None:
        self._auth = auth
        self._usage_sync = usage_sync
        self._uploads = uploads
        self._family = family  # whose model list to serve
        self._work_dir = work_dir
        self._engine = engine
        self._sessions = sessions
        self._scenario = scenario

    def table(self) -> dict[str, Handler]:
        return {
            "auth/status": self.auth_status,
            "login/generateUrl": self.generate_login_url,
            "auth/logout": self.logout,
            "config/queryModels": self.query_models,
            "config/getEndpoint": self.get_endpoint,
            "config/updateEndpoint": self.update_endpoint,
            "chat/ask": self.ask,
            "image/upload": self._uploads.upload,
            "chat/stop": self.stop,
            "chat/deleteSessionById": self.delete_session,
            "tool/invokeResult": self.invoke_result,
            "session/new": self.no_agent_sessions,  # replaced by the agent dialect's own (acp.py)
        }

    async def auth_status(self, params: dict[str, Any], peer: Peer) -> Any:
        return self._auth.status_result()

    async def generate_login_url(self, params: dict[str, Any], peer: Peer) -> Any:
        return self._auth.generate_url()

    async def logout(self, params: dict[str, Any], peer: Peer) -> Any:
        self._auth.logout()
        return {}

    async def query_models(self, params: dict[str, Any], peer: Peer) -> Any:
        return query_models_result(self._auth.user() is not None, self._family)

    async def get_endpoint(self, params: dict[str, Any], peer: Peer) -> Any:
        return {"endpoint": self._work_dir.endpoint()}

    async def update_endpoint(self, params: dict[str, Any], peer: Peer) -> Any:
        endpoint = params.get("endpoint")
        if not isinstance(endpoint, str):
            raise RpcError(-32602, "endpoint must be a string")
        self._work_dir.set_endpoint(endpoint)
        return {"success": True}

    async def ask(self, params: dict[str, Any], peer: Peer) -> Any:
        request_id = str(params.get("requestId") or "")
        if not request_id:
            raise RpcError(-32603, "requestId is empty")
        question = params.get("questionText")
        if not isinstance(question, str):
            raise RpcError(-32602, "questionText must be a string")
        ask = Ask(
            request_id=request_id,
            session_id=str(params.get("sessionId") or uuid.uuid4()),
            question=question,
            is_reply=bool(params.get("isReply")),
            model=_model_key(params),
            mode=str(params.get("mode") or ""),
            image_urls=tuple(self._uploads.check_ask(params.get("chatContext"), _model_key(params))),
        )
        try:
            plan = self._engine.admit(ask)
        except NotLoggedIn:
            return _ask_reply(request_id, 401, "user not login")
        # The stream task first runs after this reply is written: the dispatcher sends it without yielding.
        sink = ClassicSink(peer, ask, self._sessions if self._usage_sync else None, self._family)
        self._engine.start(ask, plan, sink, owner=peer)
        return _ask_reply(request_id, 200, "")

    async def stop(self, params: dict[str, Any], peer: Peer) -> Any:
        self._engine.stop(str(params.get("requestId") or ""))
        return {}

    async def delete_session(self, params: dict[str, Any], peer: Peer) -> Any:
        session_id = str(params.get("sessionId") or params.get("id") or "")
        if not session_id:
            raise RpcError(-32602, "sessionId is empty")
        self._sessions.delete(session_id)
        return {}

    async def invoke_result(self, params: dict[str, Any], peer: Peer) -> Any:
        self._engine.deliver_tool_result(params)
        return {"errorCode": None, "errorMessage": None}

    async def no_agent_sessions(self, params: dict[str, Any], peer: Peer) -> Any:
        """The plugin binary lacks `session/new`: it answers as to any unknown method, or never (§9)."""
        if self._scenario.session_new_hangs():
            await peer.wait_closed()
        log.warning("unknown method: session/new")
        raise RpcError(-32601, "method not found: session/new")
