"""JSON-RPC 2.0 over Content-Length frames over one transport, a WebSocket or a Unix socket (docs/protocol.md
§2, §11.2).

Knows framing and correlation, nothing about Lingma's methods or how bytes travel (upstream/transport.py).
Every server→client request is acked at once, for any method, because the binary waits on each ack (§2);
then the message goes to whoever subscribed to its request id, so interleaved chats on one connection stay
apart (§6).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from lingma_proxy.framing import FrameDecoder, FramingError, encode_frame, null_result_frame
from lingma_proxy.upstream.transport import (
    MAX_MESSAGE_BYTES,
    Endpoint,
    Transport,
    TransportError,
    TransportTimeout,
    as_endpoint,
)

_log = logging.getLogger(__name__)

ACP_REQUEST_ID = "ai-coding/request-id"
# Sent to every subscriber when the socket closes, so a stream can end instead of idling to its timeout.
CONNECTION_LOST = "$/connectionLost"

Subscriber = Callable[[str, dict], None]
# handler(message id, params): the reply's result, or HOLD when the handler will answer later with reply().
RequestHandler = Callable[[Any, dict], Any]
Observer = Callable[[dict], None]
HOLD = object()


class RpcError(Exception):
    """The peer answered a call with a JSON-RPC error object."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} (code {code})")
        self.code = code
        self.message = message
        self.data = data


class RpcTimeout(Exception):
    """No response to a call within its timeout."""


class ConnectionLost(Exception):
    """The connection closed before (or while) the call was answered."""


def route_key(params: dict) -> str | None:
    """Which chat a server message belongs to: its requestId, else ACP's _meta id, else its sessionId."""
    request_id = params.get("requestId")
    if not request_id:
        meta = params.get("_meta")
        request_id = meta.get(ACP_REQUEST_ID) if isinstance(meta, dict) else None
    if not request_id and isinstance(params.get("result"), dict):
        request_id = params["result"].get("requestId")  # image/uploadResultNotification (§11.4)
    return request_id or params.get("sessionId") or None


class RpcConnection:
    """One JSON-RPC peer. Build it with `await RpcConnection.connect(endpoint, timeout)`."""

    def __init__(self, transport: Transport, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.url = str(endpoint)  # for messages: ws://… or unix://…
        self.on_close: Callable[[], None] | None = None
        self._transport = transport
        self._decoder = FrameDecoder(max_frame_bytes=MAX_MESSAGE_BYTES)
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[asyncio.Future, asyncio.TimerHandle, str]] = {}
        self.error_counts: Counter[str] = Counter()  # method → errors and timeouts, for /metrics
        self._subscribers: dict[str, Subscriber] = {}
        self._request_handlers: dict[str, RequestHandler] = {}
        self._observers: list[Observer] = []
        self._closed = False

    @classmethod
    async def connect(cls, target: str | Endpoint, timeout: float) -> RpcConnection:
        """`target` is a ws:// URL, or an Endpoint (which also names a Unix socket and the machine token)."""
        endpoint = as_endpoint(target)
        transport = endpoint.open()
        conn = cls(transport, endpoint)
        try:
            await transport.connect(conn._on_data, timeout)
        except TransportTimeout as exc:
            raise RpcTimeout(str(exc)) from None
        except TransportError as exc:
            raise ConnectionLost(str(exc)) from None
        return conn

    @property
    def transport(self) -> str:
        """websocket | unix"""
        return self._transport.kind

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._transport.close()
        self._handle_closed()

    # --- client → server -------------------------------------------------------------------

    def request(self, method: str, params: dict, timeout: float) -> asyncio.Future:
        """Send a call and return the future of its result, without waiting (chat streams need this)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if self._closed:
            future.set_exception(ConnectionLost(f"{method}: connection to {self.url} is closed"))
            return future
        msg_id = next(self._ids)
        timer = loop.call_later(timeout, self._expire, msg_id, method, timeout)
        self._pending[msg_id] = (future, timer, method)
        future.add_done_callback(lambda _: self._forget(msg_id))
        self._send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return future

    async def call(self, method: str, params: dict, timeout: float) -> Any:
        return await self.request(method, params, timeout)

    async def notify(self, method: str, params: dict) -> None:
        if self._closed:
            raise ConnectionLost(f"{method}: connection to {self.url} is closed")
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    # --- server → client routing -----------------------------------------------------------

    def subscribe(self, key: str, callback: Subscriber) -> None:
        """Deliver server messages whose route_key() is `key` as callback(method, params)."""
        self._subscribers[key] = callback

    def unsubscribe(self, key: str) -> None:
        self._subscribers.pop(key, None)

    def add_observer(self, callback: Observer) -> None:
        """Also hand every decoded incoming message, as received, to callback(message) (diagnostics: the probe)."""
        self._observers.append(callback)

    def set_request_handler(self, method: str, handler: RequestHandler) -> None:
        """Let `handler(msg_id, params)` choose the reply to server requests of `method`: a result (None = null),
        or HOLD, after which the handler owes the peer a reply()."""
        self._request_handlers[method] = handler

    def reply(self, msg_id: Any, result: Any) -> None:
        """The late reply to a server request whose handler said HOLD."""
        if not self._closed:
            self._send({"jsonrpc": "2.0", "id": msg_id, "result": result})

    # --- internals -------------------------------------------------------------------------

    def _send(self, message: dict) -> None:
        self._transport.write(encode_frame(message))

    def _expire(self, msg_id: int, method: str, timeout: float) -> None:
        entry = self._pending.get(msg_id)
        if entry is not None and not entry[0].done():
            self.error_counts[method] += 1
            entry[0].set_exception(RpcTimeout(f"{method}: no response within {timeout:g}s"))

    def _forget(self, msg_id: int) -> None:
        entry = self._pending.pop(msg_id, None)
        if entry is not None:
            entry[1].cancel()

    def _on_data(self, data: bytes | None) -> None:
        if data is None:
            self._handle_closed()
            return
        try:
            messages = self._decoder.feed(data)
        except FramingError as exc:
            _log.error("%s: unreadable frame from Lingma (%s); closing the connection", self.url, exc)
            self.close()
            return
        for message in messages:
            for observer in self._observers:
                self._observe(observer, message)
            self._dispatch(message)

    def _dispatch(self, message: dict) -> None:
        method = message.get("method")
        if method is None:
            self._resolve(message)
            return
        params = message.get("params")
        if not isinstance(params, dict):
            params = {}
        if "id" in message:
            self._ack(message["id"], method, params)
        key = route_key(params)
        subscriber = self._subscribers.get(key) if key else None
        if subscriber is not None:
            self._deliver(subscriber, method, params)

    def _ack(self, msg_id: Any, method: str, params: dict) -> None:
        handler = self._request_handlers.get(method)
        result = None
        if handler is not None:
            try:
                result = handler(msg_id, params)
            except Exception:
                # The binary must get a reply whatever happens (§2); a null result is always acceptable.
                _log.exception("%s: request handler failed on %s", self.url, method)
        if result is HOLD:
            return
        if result is None and type(msg_id) is int:
            self._transport.write(null_result_frame(msg_id))
        else:
            self._send({"jsonrpc": "2.0", "id": msg_id, "result": result})

    def _resolve(self, message: dict) -> None:
        entry = self._pending.get(message.get("id"))
        if entry is None or entry[0].done():
            return  # a late answer to a call that already timed out
        future = entry[0]
        error = message.get("error")
        if error is not None:
            self.error_counts[entry[2]] += 1
            if not isinstance(error, dict):
                error = {"message": str(error)}
            future.set_exception(RpcError(error.get("code", 0), str(error.get("message", "")), error.get("data")))
        else:
            future.set_result(message.get("result"))

    def _observe(self, observer: Observer, message: dict) -> None:
        try:
            observer(message)
        except Exception:  # an observer only watches: its failure must not cost the message its routing
            _log.exception("%s: observer failed", self.url)

    def _deliver(self, subscriber: Subscriber, method: str, params: dict) -> None:
        try:
            subscriber(method, params)
        except Exception:
            # Raising into the transport's read loop would drop the whole connection and every other chat on it.
            _log.exception("%s: subscriber failed on %s", self.url, method)

    def _handle_closed(self) -> None:
        if self._closed:
            return
        self._closed = True
        for future, _timer, _method in list(self._pending.values()):
            if not future.done():
                future.set_exception(ConnectionLost(f"connection to {self.url} closed"))
        for subscriber in list(self._subscribers.values()):
            self._deliver(subscriber, CONNECTION_LOST, {})
        if self.on_close is not None:
            self.on_close()
