"""The JSON-RPC WebSocket endpoint (any path): framing, the handshake gate and method dispatch (§2, §3)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from tornado.web import Application
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from lingma_proxy.framing import FrameDecoder, FramingError
from lingma_proxy.simulator.chat import ChatEngine
from lingma_proxy.simulator.classic import Handler
from lingma_proxy.simulator.peer import Peer, RpcError
from lingma_proxy.simulator.settings import SIM_DESKTOP_VERSION, SIM_VERSION
from lingma_proxy.simulator.stats import SimStats

log = logging.getLogger("lingma.sim")

MAX_MESSAGE_BYTES = 256 * 1024 * 1024
_FRAME_PREFIX = "content-length"
_CAPABILITIES = {
    "textDocumentSync": {"openClose": True, "change": 2},
    "workspace": {"workspaceFolders": {"supported": True}},
}


def _starts_a_frame(text: str) -> bool:
    """A new frame opens with its Content-Length header; a short message may hold just part of it."""
    return bool(text) and _FRAME_PREFIX.startswith(text[: len(_FRAME_PREFIX)].lower())


def initialize_result(dialect: str) -> dict[str, Any]:
    version = SIM_DESKTOP_VERSION if dialect == "acp" else SIM_VERSION
    result: dict[str, Any] = {"serverInfo": {"name": "lingma", "version": version}, "capabilities": _CAPABILITIES}
    if dialect == "acp":
        result["protocolVersion"] = 1
        result["agentCapabilities"] = {"loadSession": False, "promptCapabilities": {"image": True}}
    return result


class RpcSocket(WebSocketHandler):
    def initialize(  # type: ignore[override]
        self, methods: dict[str, Handler], engine: ChatEngine, stats: SimStats, dialect: str, ack_timeout_sec: float
    ) -> None:
        self._methods = methods
        self._engine = engine
        self._dialect = dialect
        self._stats = stats
        self._decoder = FrameDecoder()
        self._peer = Peer(self._write, stats, ack_timeout_sec)
        self._initialized = False
        self._calls: set[asyncio.Task[None]] = set()  # running dispatches, kept alive until they finish

    def check_origin(self, origin: str) -> bool:
        return True

    def open(self, *args: str) -> None:
        # Small frames must not wait ~40 ms for a delayed TCP ack (Nagle).
        self.set_nodelay(True)
        log.info("client connected from %s", self.request.remote_ip)

    def on_close(self) -> None:
        log.info("client disconnected")
        self._peer.close()
        self._engine.stop_owned_by(self._peer)

    def on_message(self, message: str | bytes) -> None:
        text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
        if not self._decoder.pending_bytes and not _starts_a_frame(text):
            log.warning("Unknown message header")
            return
        try:
            messages = self._decoder.feed(text)
        except FramingError as exc:
            log.warning("Unknown message header: %s", exc)
            self._decoder = FrameDecoder()
            return
        for rpc in messages:
            if "method" in rpc:
                # Own task per request: an agent-dialect prompt stays open until its stream ends.
                call = asyncio.create_task(self._dispatch(rpc))
                self._calls.add(call)
                call.add_done_callback(self._calls.discard)
            elif "id" in rpc:
                self._peer.handle_reply(rpc)

    async def _dispatch(self, rpc: dict[str, Any]) -> None:
        method, is_request, request_id = rpc["method"], "id" in rpc, rpc.get("id")
        if method == "initialized":
            return  # optional in the protocol; the real binary shrugs it off
        try:
            result = await self._call(method, rpc.get("params"))
        except RpcError as exc:
            if is_request:
                self._peer.send_error(request_id, exc.code, exc.message)
            return
        except Exception:  # a simulator bug must still answer the client, as a server would
            log.exception("method %s failed", method)
            if is_request:
                self._peer.send_error(request_id, -32603, f"internal error in {method}")
            return
        if is_request:
            self._peer.send_result(request_id, result)

    async def _call(self, method: str, params: Any) -> Any:
        if method != "initialize" and method not in self._methods:
            log.warning("unknown method: %s", method)
            raise RpcError(-32601, f"method not found: {method}")
        if not isinstance(params, dict):
            raise RpcError(-32602, "decode error: params must be an object")
        if method == "initialize":
            self._stats.record_workspace(params.get("rootUri"))
            self._initialized = True
            return initialize_result(self._dialect)
        if not self._initialized:
            raise RpcError(-32002, "server not initialized")
        return await self._methods[method](params, self._peer)

    def _write(self, text: str) -> Awaitable[None]:
        """Queue one frame now (so frames keep their order); the returned wait never raises on a hang-up."""
        if self._peer.closed:
            return _closed()
        try:
            written = self.write_message(text)
        except WebSocketClosedError:
            return _closed()
        return asyncio.ensure_future(_ignore_hang_up(written))


def _closed() -> asyncio.Future[None]:
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done


async def _ignore_hang_up(written: Awaitable[None]) -> None:
    try:
        await written
    except WebSocketClosedError:
        pass  # on_close stops this client's streams


def make_socket_app(
    methods: dict[str, Handler], engine: ChatEngine, stats: SimStats, dialect: str, ack_timeout_sec: float
) -> Application:
    route_args = {
        "methods": methods,
        "engine": engine,
        "stats": stats,
        "dialect": dialect,
        "ack_timeout_sec": ack_timeout_sec,
    }
    return Application([(r"/.*", RpcSocket, route_args)], websocket_max_message_size=MAX_MESSAGE_BYTES)
