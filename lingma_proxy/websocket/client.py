"""Opening a WebSocket as a client: `await connect(url, on_message, ...)` gives an open `ClientChannel`."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from urllib.parse import urlsplit

from .channel import Channel, MessageCallback, format_head, parse_head
from .frames import accept_key, new_key


class HandshakeRefused(Exception):
    """The server answered the upgrade with an HTTP status other than 101."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"HTTP {status} {reason}".rstrip())
        self.status = status


class ClientChannel(Channel):
    def __init__(
        self, on_message: MessageCallback, host: str, target: str, headers: Mapping[str, str], max_message_bytes: int
    ) -> None:
        super().__init__(on_message, client=True, max_message_bytes=max_message_bytes)
        self._request_head = (host, target, dict(headers))
        self._key = new_key()
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        host, target, headers = self._request_head
        upgrade = {
            "Host": host,
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": self._key,
            "Sec-WebSocket-Version": "13",
        }
        assert self._transport is not None
        self._transport.write(format_head(f"GET {target} HTTP/1.1", [*upgrade.items(), *headers.items()]))

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.opened.done():
            self.opened.set_exception(ConnectionResetError("the server closed the connection during the handshake"))

    def _head_received(self, head: bytes) -> bool:
        status_line, headers = parse_head(head)
        _version, _, rest = status_line.partition(" ")
        code, _, reason = rest.partition(" ")
        failure: Exception | None = None
        if not code.isdigit() or int(code) != 101:
            failure = HandshakeRefused(int(code) if code.isdigit() else 0, reason)
        elif headers.get("sec-websocket-accept") != accept_key(self._key):
            failure = ConnectionError("the server's Sec-WebSocket-Accept does not match the key sent")
        if failure is not None:
            if not self.opened.done():
                self.opened.set_exception(failure)
            assert self._transport is not None
            self._transport.close()
            return False
        self.opened.set_result(None)
        return True


async def connect(
    url: str,
    on_message: MessageCallback,
    *,
    headers: Mapping[str, str] | None = None,
    max_message_bytes: int,
) -> ClientChannel:
    """Connect to a ws:// or wss:// URL and finish the handshake; messages go to `on_message` from then on.

    A message that arrives with the handshake's answer is delivered before this returns."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"not a WebSocket URL: {url}")
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    host = parts.netloc.rpartition("@")[2]  # the URL's own authority: brackets and port as written, no user info
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    channel = ClientChannel(on_message, host, target, headers or {}, max_message_bytes)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(
        lambda: channel, parts.hostname, port, ssl=ssl.create_default_context() if secure else None
    )
    try:
        await channel.opened
    except BaseException:
        transport.close()
        raise
    return channel
