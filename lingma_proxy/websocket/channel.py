"""One WebSocket connection on an asyncio transport, after (and including) its opening handshake."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from .frames import (
    BINARY,
    CLOSE,
    CLOSE_NORMAL,
    PING,
    PONG,
    TEXT,
    MessageReader,
    ProtocolError,
    build_frame,
    close_payload,
)

_log = logging.getLogger(__name__)

MessageCallback = Callable[["bytes | None"], None]  # a whole text or binary message; None once, when it is gone
_MAX_HANDSHAKE_BYTES = 64 * 1024


class Channel(asyncio.Protocol):
    """Whole messages in through the message callback; frames queued in one event-loop turn go out in one
    socket write, each still its own WebSocket message, and what the callback queues while a read is
    delivered (the acks a chat stream needs) leaves at the end of that read, without a loop turn of its
    own. A subclass reads the handshake in `_head_received`.

    No Nagle delay to switch off: asyncio's TCP transports set TCP_NODELAY themselves, which acks need."""

    def __init__(self, on_message: MessageCallback, *, client: bool, max_message_bytes: int) -> None:
        self._client = client
        self._reader = MessageReader(masked=not client, max_message_bytes=max_message_bytes)
        self._on_message = on_message
        self._transport: asyncio.Transport | None = None
        self._head = bytearray()
        self._open = False
        self._gone = False
        self._told_gone = False
        self._outgoing: list[bytes] = []
        self._delivering = False
        self._drained: asyncio.Future[None] | None = None

    @property
    def open(self) -> bool:
        return self._open and not self._gone

    def send_text(self, text: bytes) -> bool:
        """Queue one text message; False when the connection is already gone."""
        return self._send(TEXT, text)

    def drained(self) -> Awaitable[None]:
        """Wait until the socket takes writes again (at once unless the peer reads slower than we write)."""
        if self._drained is None:
            done = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        return asyncio.shield(self._drained)

    def close(self, code: int = CLOSE_NORMAL) -> None:
        """Say goodbye with a close frame and close the socket once what is queued has been written."""
        if self._gone or self._transport is None:
            return
        if self._open:
            self._send(CLOSE, close_payload(code))
            self._flush()
        self._gone = True
        self._transport.close()

    # --- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if self._gone:
            return  # closed by us: what is still in flight is nobody's
        if not self._open:
            data = self._read_head(data)
            if not data:
                return
        try:
            messages = self._reader.feed(data)
        except ProtocolError as exc:
            _log.warning("WebSocket peer broke the protocol: %s", exc)
            self.close(exc.code)
            self._tell_gone()
            return
        self._delivering = True
        try:
            for opcode, payload in messages:
                if opcode == TEXT or opcode == BINARY:
                    self._on_message(payload)
                elif opcode == PING:
                    self._send(PONG, payload)
                elif opcode == CLOSE:
                    self.close()
                    self._tell_gone()
                if self._gone:
                    return
        finally:
            self._delivering = False
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone = True
        self._outgoing.clear()
        self.resume_writing()
        self._tell_gone()

    def pause_writing(self) -> None:
        if self._drained is None:
            self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    # --- for the two sides ----------------------------------------------------------------------

    def _head_received(self, head: bytes) -> bool:
        """The handshake's request or response, without its blank line; True when the socket is now open."""
        raise NotImplementedError

    def _tell_gone(self) -> None:
        if self._open and not self._told_gone:
            self._told_gone = True
            self._on_message(None)

    def _read_head(self, data: bytes) -> bytes:
        """Collect the handshake; return what follows it (already frames), or b"" while it is incomplete."""
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > _MAX_HANDSHAKE_BYTES and self._transport is not None:
                self._transport.close()
            return b""
        head, rest = bytes(self._head[:end]), bytes(self._head[end + 4 :])
        self._head = bytearray()
        self._open = self._head_received(head)
        return rest if self._open else b""

    def _send(self, opcode: int, payload: bytes) -> bool:
        if self._gone or self._transport is None:
            return False
        self._outgoing.append(build_frame(opcode, payload, mask=self._client))
        if len(self._outgoing) == 1 and not self._delivering:
            asyncio.get_running_loop().call_soon(self._flush)
        return True

    def _flush(self) -> None:
        if self._outgoing and self._transport is not None and not self._transport.is_closing():
            self._transport.write(self._outgoing[0] if len(self._outgoing) == 1 else b"".join(self._outgoing))
        self._outgoing.clear()


def format_head(first_line: str, headers: Iterable[tuple[str, str]]) -> bytes:
    """An HTTP/1.1 head: its first line and headers, and the blank line that ends it."""
    lines = [first_line, *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def parse_head(head: bytes) -> tuple[str, dict[str, str]]:
    """An HTTP/1.1 head: its first line, and its headers with lower-case names."""
    first, *lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return first, headers
