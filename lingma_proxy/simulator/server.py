"""The JSON-RPC endpoints: a WebSocket (any path), or a Unix socket (§11.2); framing, the handshake gate and
method dispatch (§2, §3), and the machine-token check on the upgrade (§11.3)."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

from lingma_proxy.framing import MACHINE_TOKEN_HEADER, FrameDecoder, FramingError
from lingma_proxy.simulator.chat import ChatEngine
from lingma_proxy.simulator.classic import Handler
from lingma_proxy.simulator.peer import Peer, RpcError
from lingma_proxy.simulator.settings import SIM_DESKTOP_VERSION, SIM_QODERCN_VERSION, SIM_VERSION
from lingma_proxy.simulator.stats import SimStats
from lingma_proxy.websocket.channel import MessageCallback
from lingma_proxy.websocket.server import ServerChannel, UpgradeDecision, serve

log = logging.getLogger("lingma.sim")

MAX_MESSAGE_BYTES = 256 * 1024 * 1024
_READ_CHUNK = 256 * 1024
_FRAME_PREFIX = b"content-length"
_CAPABILITIES = {
    "textDocumentSync": {"openClose": True, "change": 2},
    "workspace": {"workspaceFolders": {"supported": True}},
}


def _starts_a_frame(data: bytes) -> bool:
    """A new frame opens with its Content-Length header; a short message may hold just part of it."""
    return bool(data) and _FRAME_PREFIX.startswith(data[: len(_FRAME_PREFIX)].lower())


def initialize_result(dialect: str, family: str = "lingma") -> dict[str, Any]:
    if family == "qodercn":
        version = SIM_QODERCN_VERSION
    else:
        version = SIM_DESKTOP_VERSION if dialect == "acp" else SIM_VERSION
    result: dict[str, Any] = {"serverInfo": {"name": family, "version": version}, "capabilities": _CAPABILITIES}
    if dialect == "acp":
        result["protocolVersion"] = 1
        result["agentCapabilities"] = {"loadSession": False, "promptCapabilities": {"image": True}}
    return result


@dataclass(frozen=True)
class Services:
    """What every connection shares, whichever transport carries it."""

    methods: dict[str, Handler]
    engine: ChatEngine
    stats: SimStats
    dialect: str
    family: str
    ack_timeout_sec: float
    machine_token: str = ""  # "" accepts any WebSocket upgrade; else it must carry this Cosy-MachineToken (§11.3)


class Connection:
    """One client's JSON-RPC session on any transport: framing, the handshake gate and method dispatch."""

    def __init__(self, send_text: Callable[[bytes], Awaitable[None]], services: Services) -> None:
        self._services = services
        self._methods = services.methods
        self._stats = services.stats
        self._decoder = FrameDecoder()
        self._peer = Peer(send_text, services.stats, services.ack_timeout_sec)
        self._initialized = False
        self._calls: set[asyncio.Task[None]] = set()  # running dispatches, kept alive until they finish

    @property
    def closed(self) -> bool:
        return self._peer.closed

    def close(self) -> None:
        log.info("client disconnected")
        self._peer.close()
        self._services.engine.stop_owned_by(self._peer)

    def feed(self, message: bytes) -> None:
        """A WebSocket message, or a chunk of the Unix socket's byte stream."""
        if not self._decoder.pending_bytes and not _starts_a_frame(message):
            log.warning("Unknown message header")
            return
        try:
            messages = self._decoder.feed(message)
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
            return initialize_result(self._services.dialect, self._services.family)
        if not self._initialized:
            raise RpcError(-32002, "server not initialized")
        return await self._methods[method](params, self._peer)


def _on_upgrade(services: Services) -> UpgradeDecision:
    """Each upgrade gets a Connection of its own, unless it lacks the machine token the runtime wants."""

    def decide(channel: ServerChannel, headers: Mapping[str, str]) -> MessageCallback | int:
        # Checked before the upgrade, as QoderCN's sidecar does (§11.3); the value is compared, never logged.
        token = services.machine_token
        if token and not hmac.compare_digest(headers.get(MACHINE_TOKEN_HEADER.lower(), ""), token):
            log.warning("refused a connection without a valid %s header", MACHINE_TOKEN_HEADER)
            return HTTPStatus.FORBIDDEN

        def send_text(frame: bytes) -> Awaitable[None]:
            channel.send_text(frame)
            return channel.drained()

        conn = Connection(send_text, services)
        log.info("client connected from %s", channel.peer)

        def on_message(message: bytes | None) -> None:
            if message is None:
                conn.close()
            else:
                conn.feed(message)

        return on_message

    return decide


async def serve_websocket(host: str, port: int, services: Services) -> asyncio.Server:
    """JSON-RPC over a WebSocket on any path (§2), one text message per frame."""
    return await serve(host, port, _on_upgrade(services), max_message_bytes=MAX_MESSAGE_BYTES)


async def serve_unix_socket(path: Path, services: Services) -> asyncio.Server:
    """The same frames straight on a Unix socket's byte stream (§11.2); no upgrade, so no token header."""

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        log.info("client connected on %s", path)

        def send_text(frame: bytes) -> Awaitable[None]:
            if writer.is_closing():
                return _done()
            writer.write(frame)
            if not writer.transport.get_write_buffer_size():
                return _done()  # the socket took it all: no task to wait on drain()
            return asyncio.ensure_future(_ignore_hang_up(writer.drain()))

        conn = Connection(send_text, services)
        try:
            while chunk := await reader.read(_READ_CHUNK):
                conn.feed(chunk)
        except ConnectionError:
            pass
        finally:
            conn.close()
            writer.close()

    path.unlink(missing_ok=True)  # a socket file left by an instance that was killed
    server = await asyncio.start_unix_server(on_client, path=str(path), limit=_READ_CHUNK)
    path.chmod(0o600)  # connecting needs write access: the owner only, whatever the umask (§11.2)
    return server


def _done() -> asyncio.Future[None]:
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done


async def _ignore_hang_up(written: Awaitable[None]) -> None:
    try:
        await written
    except ConnectionError:
        pass  # closing the connection stops this client's streams
