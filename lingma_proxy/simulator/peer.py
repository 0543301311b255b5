"""One client connection's JSON-RPC traffic: replies, notifications, and server→client requests.

Server→client requests carry integer ids and are never awaited one by one (docs/protocol.md §2):
each gets its own ack timer, and one not acked in time is logged like the real binary does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from lingma_proxy.framing import encode_frame
from lingma_proxy.simulator.stats import SimStats

log = logging.getLogger("lingma.sim")

ReplyCallback = Callable[[Any, Any], None]  # (result, error) of the client's reply


class RpcError(Exception):
    """A JSON-RPC error reply."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Peer:
    def __init__(self, send_text: Callable[[bytes], Awaitable[None]], stats: SimStats, ack_timeout_sec: float):
        self._send_text = send_text
        self._stats = stats
        self._ack_timeout_sec = ack_timeout_sec
        self._next_id = 0
        self._pending: dict[int, tuple[str, asyncio.TimerHandle | None, ReplyCallback | None]] = {}
        self.closed = False
        self._hung_up = asyncio.Event()

    def send_result(self, request_id: Any, result: Any) -> Awaitable[None]:
        return self._send({"jsonrpc": "2.0", "id": request_id, "result": result})

    def send_error(self, request_id: Any, code: int, message: str) -> Awaitable[None]:
        return self._send({"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}})

    def send_notification(self, method: str, params: dict[str, Any]) -> Awaitable[None]:
        return self._send({"jsonrpc": "2.0", "method": method, "params": params})

    def send_request(
        self,
        method: str,
        params: dict[str, Any],
        on_reply: ReplyCallback | None = None,
        ack_timeout_sec: float | None = None,
    ) -> Awaitable[None]:
        """`ack_timeout_sec` replaces the usual ack timeout for a request whose reply carries a result."""
        self._next_id += 1
        request_id = self._next_id
        if not self.closed:  # after a hang-up nobody can ack: no timer, no count
            timeout = self._ack_timeout_sec if ack_timeout_sec is None else ack_timeout_sec
            timer = asyncio.get_running_loop().call_later(timeout, self._ack_timed_out, request_id)
            self._pending[request_id] = (method, timer, on_reply)
            self._stats.server_requests += 1
        return self._send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})

    def handle_reply(self, message: dict[str, Any]) -> None:
        """The client answered one of our requests: that is its ack, whatever it says."""
        entry = self._pending.pop(message.get("id"), None)  # type: ignore[arg-type]
        if entry is None:
            log.warning("reply to an unknown or timed-out request id %r", message.get("id"))
            return
        method, timer, on_reply = entry
        if timer is not None:
            timer.cancel()
        self._stats.acks += 1
        error = message.get("error")
        if error is not None:
            self._stats.ack_errors += 1
            log.warning("client answered %s (id %s) with an error: %s", method, message.get("id"), error)
        if on_reply is not None:
            on_reply(message.get("result"), error)

    async def wait_closed(self) -> None:
        await self._hung_up.wait()

    def close(self) -> None:
        self.closed = True
        self._hung_up.set()
        for _, timer, _ in self._pending.values():
            if timer is not None:
                timer.cancel()
        self._pending.clear()

    def _ack_timed_out(self, request_id: int) -> None:
        entry = self._pending.pop(request_id, None)
        if entry is None:
            return
        method, _, on_reply = entry
        self._stats.unacked_timeouts += 1
        log.warning("no response from client, timeout reached: %s (id %d)", method, request_id)
        if on_reply is not None:
            # A tool/invoke may still be answered late with its result (QoderCN style), so keep listening.
            self._pending[request_id] = (method, None, on_reply)

    def _send(self, message: dict[str, Any]) -> Awaitable[None]:
        return self._send_text(encode_frame(message))
