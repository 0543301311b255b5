"""LSP base-protocol framing (`Content-Length: N\r\n\r\n<json>`) as Lingma uses it over a WebSocket.

Shared by the proxy's RPC layer and the simulator: docs/protocol.md §2. The length counts UTF-8
bytes, and a reader must cope with several frames in one message or one frame split across messages.
"""

from __future__ import annotations

from typing import Any

import ujson

_HEADER_END = b"\r\n\r\n"
_LENGTH_HEADER = b"content-length:"


class FramingError(ValueError):
    """The peer sent bytes that are not a Content-Length frame (the binary answers `Unknown message header`)."""


def encode_frame(message: dict[str, Any]) -> str:
    """One JSON-RPC message as one framed WebSocket text message."""
    body = ujson.dumps(message, ensure_ascii=False, escape_forward_slashes=False)
    return f"Content-Length: {len(body.encode('utf-8'))}\r\n\r\n{body}"


class FrameDecoder:
    """Accumulates WebSocket messages and yields every complete JSON-RPC message in order."""

    def __init__(self, max_frame_bytes: int = 256 * 1024 * 1024) -> None:
        self._buffer = bytearray()
        self._max_frame_bytes = max_frame_bytes

    @property
    def pending_bytes(self) -> int:
        """Bytes of an incomplete frame still waiting for the rest of it."""
        return len(self._buffer)

    def feed(self, data: str | bytes) -> list[dict[str, Any]]:
        self._buffer += data.encode("utf-8") if isinstance(data, str) else data
        messages: list[dict[str, Any]] = []
        while True:
            header_end = self._buffer.find(_HEADER_END)
            if header_end < 0:
                if len(self._buffer) > 4096 and not self._buffer.lower().startswith(_LENGTH_HEADER):
                    raise FramingError("Unknown message header")
                return messages
            length = self._content_length(bytes(self._buffer[:header_end]))
            start = header_end + len(_HEADER_END)
            if len(self._buffer) - start < length:
                return messages
            body = bytes(self._buffer[start : start + length])
            del self._buffer[: start + length]
            try:
                message = ujson.loads(body)
            except ValueError as exc:
                raise FramingError(f"invalid JSON body: {exc}") from None
            if not isinstance(message, dict):
                raise FramingError("JSON-RPC message is not an object")
            messages.append(message)

    def _content_length(self, header: bytes) -> int:
        for line in header.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                try:
                    length = int(value.strip())
                except ValueError:
                    raise FramingError("Unknown message header") from None
                if length < 0 or length > self._max_frame_bytes:
                    raise FramingError(f"frame length {length} out of range")
                return length
        raise FramingError("Unknown message header")


# QoderCN refuses a WebSocket upgrade without this header when its runtime wants a machine token (§11.3).
MACHINE_TOKEN_HEADER = "Cosy-MachineToken"
