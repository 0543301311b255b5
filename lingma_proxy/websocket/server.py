"""Accepting WebSockets: `await serve(host, port, on_upgrade, ...)` answers each upgrade on any path."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from http import HTTPStatus

from .channel import Channel, MessageCallback, format_head, parse_head
from .frames import accept_key

# What to do with an upgrade, given its headers: the callback for the connection's messages, or an HTTP
# status to refuse it with.
UpgradeDecision = Callable[["ServerChannel", Mapping[str, str]], "MessageCallback | int"]


class ServerChannel(Channel):
    def __init__(self, on_upgrade: UpgradeDecision, max_message_bytes: int) -> None:
        super().__init__(lambda message: None, client=False, max_message_bytes=max_message_bytes)
        self._on_upgrade = on_upgrade

    @property
    def peer(self) -> str:
        name = self._transport.get_extra_info("peername") if self._transport is not None else None
        return str(name[0]) if isinstance(name, tuple) else "?"

    def _head_received(self, head: bytes) -> bool:
        request_line, headers = parse_head(head)
        method, _, _ = request_line.partition(" ")
        key = headers.get("sec-websocket-key", "")
        if (
            method != "GET"
            or headers.get("upgrade", "").lower() != "websocket"
            or "upgrade" not in headers.get("connection", "").lower()
            or headers.get("sec-websocket-version") != "13"
            or not key
        ):
            self._refuse(HTTPStatus.BAD_REQUEST, {"Sec-WebSocket-Version": "13"})
            return False
        decision = self._on_upgrade(self, headers)
        if isinstance(decision, int):
            self._refuse(HTTPStatus(decision), {})
            return False
        self._on_message = decision
        self._write_head(HTTPStatus.SWITCHING_PROTOCOLS, {
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Accept": accept_key(key),
        })
        return True

    def _refuse(self, status: HTTPStatus, headers: dict[str, str]) -> None:
        self._write_head(status, {**headers, "Content-Length": "0", "Connection": "close"})
        assert self._transport is not None
        self._transport.close()

    def _write_head(self, status: HTTPStatus, headers: dict[str, str]) -> None:
        assert self._transport is not None
        self._transport.write(format_head(f"HTTP/1.1 {status.value} {status.phrase}", headers.items()))


async def serve(
    host: str, port: int, on_upgrade: UpgradeDecision, *, max_message_bytes: int
) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: ServerChannel(on_upgrade, max_message_bytes), host, port)
