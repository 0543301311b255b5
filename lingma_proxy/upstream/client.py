"""Typed Lingma methods over one RpcConnection: the handshake, the dialect probe, account and model
calls, and chat as a stream of upstream events (docs/protocol.md §3, §4, §9).

Every failure leaves this module as an ApiError; RpcError, RpcTimeout and ConnectionLost stay inside.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lingma_proxy import __version__
from lingma_proxy.errors import ApiError
from lingma_proxy.events import UpstreamEvent, UpstreamFinish
from lingma_proxy.redact import redact_json
from lingma_proxy.upstream.dialects import (
    CONTROL_TIMEOUT_SEC,
    AcpDialect,
    ChatRequest,
    ClassicDialect,
    Dialect,
    Turn,
    acp_try_session,
    timestamp_ms,
)
from lingma_proxy.upstream.failures import api_error_from_rpc
from lingma_proxy.upstream.inbox import Inbox
from lingma_proxy.upstream.rpc import ConnectionLost, RpcConnection, RpcError, RpcTimeout
from lingma_proxy.upstream.tool_replies import HOLD_GRACE_SEC, ToolReplies
from lingma_proxy.upstream.transport import Endpoint, as_endpoint

_log = logging.getLogger(__name__)
_ABANDON_TIMEOUT_SEC = 2.0

__all__ = ["AuthStatus", "ChatRequest", "ChatStream", "LingmaClient", "connect_client"]

DEFAULT_PROBE_TIMEOUT_SEC = 5.0  # §9 allows up to 15 s; a runtime without session/new may hang, not fail
_RPC_ERRORS = (RpcError, RpcTimeout, ConnectionLost)


def is_logged_in(auth_status: Any) -> bool:
    """What an `auth/status` result says (§4): `status` 2 is logged in; anything else is not."""
    return isinstance(auth_status, dict) and auth_status.get("status") == 2


@dataclass
class AuthStatus:
    logged_in: bool
    name: str
    user_type: str
    raw: dict  # auth/status as returned, with every token replaced by "***"


class ChatStream:
    """One chat's events: TextDelta | ThinkDelta | NativeToolCall, then exactly one UpstreamFinish.

    A failure is raised from the iterator as an ApiError. The prompt goes out on the first
    iteration. `cancel()` asks Lingma to stop and ends the iteration; `aclose()` only detaches, so
    call cancel() first when the answer is abandoned, or Lingma keeps generating.
    """

    def __init__(self, dialect: Dialect, req: ChatRequest, idle_timeout: float) -> None:
        self.request = req
        self._dialect = dialect
        self._idle_timeout = idle_timeout
        self._inbox: Inbox[UpstreamEvent | ApiError] = Inbox(idle_timeout)
        self._turn: Turn | None = None
        self._done = False

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> UpstreamEvent:
        if self._done:
            raise StopAsyncIteration
        if self._turn is None:
            try:
                self._turn = await self._dialect.start_turn(self.request, self._inbox.put)
            except ApiError:
                self._end()
                raise
        try:
            item = await self._inbox.get()
        except TimeoutError:
            item = ApiError("timeout", f"Lingma sent nothing for {self._idle_timeout:g}s (lingma.rpc_timeout)")
        if isinstance(item, ApiError | UpstreamFinish):
            self._end()
        if isinstance(item, ApiError):
            raise item
        return item

    def _end(self) -> None:
        self._done = True
        self._inbox.close()

    async def cancel(self) -> None:
        """Stop the chat upstream (classic chat/stop, ACP session/cancel) unless it already ended there."""
        self._end()
        if self._turn is not None and not self._turn.ended:
            await self._turn.cancel()
            self._turn.close()

    async def aclose(self) -> None:
        self._end()
        if self._turn is not None:
            self._turn.close()

    async def abandon(self) -> None:
        """Nobody will read the rest: stop it upstream so it stops spending quota (bounded, best effort), detach."""
        try:
            await asyncio.wait_for(self.cancel(), timeout=_ABANDON_TIMEOUT_SEC)
        except (TimeoutError, ApiError, ConnectionError) as exc:
            _log.debug("stopping an abandoned chat upstream failed: %r", exc)
        await self.aclose()


class LingmaClient:
    def __init__(
        self,
        rpc: RpcConnection,
        *,
        rpc_timeout: float,
        dialect: Dialect,
        server_info: dict | None = None,
        native_result: str = "auto",
    ) -> None:
        self.rpc = rpc
        self.rpc_timeout = rpc_timeout
        self.tool_replies = ToolReplies(rpc, native_result, hold_sec=rpc_timeout + HOLD_GRACE_SEC)
        self.dialect = dialect
        self.server_info = server_info or {}
        self._control_timeout = min(rpc_timeout, CONTROL_TIMEOUT_SEC)
        # Told each live token auth/status returns, so the log redactor masks it wherever it shows up.
        self.on_secret: Callable[[str], None] | None = None

    @property
    def dialect_name(self) -> str:
        return self.dialect.name

    @property
    def family(self) -> str:
        """lingma | qodercn: what serverInfo says (§3, §11), else what the folder it was found in says."""
        return runtime_family(self.server_info, self.rpc.endpoint.family)

    @property
    def runtime_version(self) -> str:
        return str(self.server_info.get("version") or "")

    @property
    def transport(self) -> str:
        return self.rpc.transport

    @property
    def closed(self) -> bool:
        return self.rpc.closed

    def on_close(self, callback: Callable[[], None]) -> None:
        """Called once when the connection to this Lingma closes (the process died, or close())."""
        self.rpc.on_close = callback

    def close(self) -> None:
        self.rpc.close()

    async def _call(self, method: str, params: dict, timeout: float | None = None) -> Any:
        try:
            return await self.rpc.call(method, params, timeout or self._control_timeout)
        except _RPC_ERRORS as exc:
            raise api_error_from_rpc(exc, method) from None

    async def auth_status(self) -> AuthStatus:
        raw = await self._call("auth/status", {})
        raw = raw if isinstance(raw, dict) else {}
        if self.on_secret is not None:
            for key in ("token", "refreshToken"):
                if isinstance(raw.get(key), str) and raw[key]:
                    self.on_secret(raw[key])
        raw = redact_json(raw)  # auth/status holds live tokens (§4)
        return AuthStatus(
            logged_in=is_logged_in(raw),
            name=str(raw.get("name") or ""),
            user_type=str(raw.get("userType") or ""),
            raw=raw,
        )

    async def query_models(self) -> dict[str, list[dict]]:
        """Scene (assistant, chat, developer, inline, quest) → models; {} when logged out."""
        result = await self._call("config/queryModels", {})
        if not isinstance(result, dict):
            return {}
        return {scene: models for scene, models in result.items() if isinstance(models, list)}

    async def generate_login_url(self) -> str:
        result = await self._call("login/generateUrl", {"loginDedicatedType": ""})
        url = result.get("loginUrl") if isinstance(result, dict) else None
        if not url or result.get("success") is False:
            why = result.get("errorMsg") if isinstance(result, dict) else None
            raise ApiError("upstream", f"Lingma gave no login URL: {why or result!r}")
        return str(url)

    async def logout(self) -> None:
        await self._call("auth/logout", {})

    async def get_endpoint(self) -> str:
        result = await self._call("config/getEndpoint", {})
        if isinstance(result, dict):
            result = result.get("endpoint") or result.get("url") or ""
        return str(result or "")

    async def update_endpoint(self, url: str) -> None:
        result = await self._call("config/updateEndpoint", {"endpoint": url})
        if isinstance(result, dict) and result.get("success") is False:
            raise ApiError("upstream", f"Lingma refused the endpoint {url}: {result.get('errorMsg') or result}")

    async def delete_session(self, session_id: str) -> None:
        try:
            await self.dialect.delete_session(session_id)
        except _RPC_ERRORS as exc:
            raise api_error_from_rpc(exc, "chat/deleteSessionById") from None

    async def tool_invoke_result(self, outcome: dict) -> None:
        """A native `tool/invoke`'s outcome (§6, made by tool_replies.tool_result()): in its held reply, else
        through `tool/invokeResult`."""
        if not self.tool_replies.answer(outcome["toolCallId"], outcome):
            await self._call("tool/invokeResult", outcome)

    def chat(self, req: ChatRequest) -> ChatStream:
        return ChatStream(self.dialect, req, idle_timeout=self.rpc_timeout)


def initialize_params(dialect_setting: str, workspace: Path) -> dict:
    """Classic LSP-style params, ACP's, or (for auto) both: each runtime ignores the other's keys [unverified]."""
    classic = {
        "processId": None,
        "clientInfo": {"name": "lingma-proxy", "version": __version__},
        "rootUri": workspace.as_uri(),
        "capabilities": {},
        "workspaceFolders": [{"uri": workspace.as_uri(), "name": workspace.name or "workspace"}],
    }
    acp = {"protocolVersion": 1, "clientCapabilities": {}, "timestamp": timestamp_ms()}
    if dialect_setting == "classic":
        return classic
    if dialect_setting == "acp":
        return acp
    return {**classic, **acp}


def runtime_family(server_info: dict, fallback: str = "") -> str:
    name = str(server_info.get("name") or "").strip().lower()
    return name if name in ("lingma", "qodercn") else fallback


async def connect_client(
    target: str | Endpoint,
    rpc_timeout: float,
    dialect_setting: str = "auto",
    *,
    workspace: Path,
    probe_timeout: float = DEFAULT_PROBE_TIMEOUT_SEC,
    native_result: str = "auto",
) -> LingmaClient:
    """Connect (to a ws:// URL or an Endpoint), `initialize`, and settle the chat dialect (probing when auto).

    `workspace` is sent as rootUri and the agent dialect's cwd: an empty folder of the proxy's, never the
    user's current directory, which a real Lingma would index."""
    if dialect_setting not in ("auto", "classic", "acp"):
        raise ValueError(f"unknown dialect setting {dialect_setting!r}")
    workspace = workspace.resolve()
    endpoint = as_endpoint(target)
    control_timeout = min(rpc_timeout, CONTROL_TIMEOUT_SEC)
    try:
        rpc = await RpcConnection.connect(endpoint, control_timeout)
    except _RPC_ERRORS as exc:
        raise api_error_from_rpc(exc, "connect") from None
    try:
        server_info = await rpc.call("initialize", initialize_params(dialect_setting, workspace), control_timeout)
        dialect_name = dialect_setting
        if dialect_setting == "auto":
            dialect_name = await _probe_dialect(rpc, str(workspace), min(rpc_timeout, probe_timeout))
    except _RPC_ERRORS as exc:
        rpc.close()
        raise api_error_from_rpc(exc, "initialize") from None
    info = server_info.get("serverInfo") if isinstance(server_info, dict) else None
    info = info if isinstance(info, dict) else {}
    family = runtime_family(info, endpoint.family) or "lingma"
    dialect: Dialect = (
        AcpDialect(rpc, rpc_timeout, str(workspace), family)
        if dialect_name == "acp"
        else ClassicDialect(rpc, rpc_timeout)
    )
    return LingmaClient(rpc, rpc_timeout=rpc_timeout, dialect=dialect, server_info=info, native_result=native_result)


async def _probe_dialect(rpc: RpcConnection, cwd: str, timeout: float) -> str:
    """§9: a session id from session/new means the agent dialect; an error or silence means classic."""
    try:
        await acp_try_session(rpc, cwd, timeout)
    except (RpcError, RpcTimeout):
        return "classic"
    return "acp"
