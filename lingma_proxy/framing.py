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


def encode_frame(message: dict[str, Any]) -> bytes:
    """One JSON-RPC message as one framed WebSocket text message, in UTF-8."""
    return _framed(ujson.dumps(message, ensure_ascii=False, escape_forward_slashes=False).encode("utf-8"))


def null_result_frame(msg_id: int) -> bytes:
    """The reply `{"jsonrpc":"2.0","id":msg_id,"result":null}` as encode_frame() makes it: the ack that every
    chat chunk gets (§2), from a template rather than through the JSON encoder."""
    return _framed(b'{"jsonrpc":"2.0","id":%d,"result":null}' % msg_id)


def _framed(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


class FrameDecoder:
    """Accumulates WebSocket messages (or byte-stream reads) and yields every complete JSON-RPC message in order.

    Most messages hold exactly one whole frame: those are read in place, and only an incomplete tail is kept."""

    def __init__(self, max_frame_bytes: int = 256 * 1024 * 1024) -> None:
        self._buffer = bytearray()
        self._max_frame_bytes = max_frame_bytes

    @property
    def pending_bytes(self) -> int:
        """Bytes of an incomplete frame still waiting for the rest of it."""
        return len(self._buffer)

    def feed(self, data: str | bytes) -> list[dict[str, Any]]:
        chunk = data.encode("utf-8") if isinstance(data, str) else data
        if self._buffer:
            self._buffer += chunk
            source: bytes | bytearray = self._buffer
        else:
            source = chunk
        messages: list[dict[str, Any]] = []
        position, end = 0, len(source)
        while position < end:
            header_end = source.find(_HEADER_END, position)
            if header_end < 0:
                if end - position > 4096 and not source[position : position + 15].lower().startswith(_LENGTH_HEADER):
                    raise FramingError("Unknown message header")
                break
            digits = source[position + 16 : header_end]
            if source.startswith(b"Content-Length: ", position) and digits.isdigit():  # what every peer sends
                length = self._checked(int(digits))
            else:
                length = self._content_length(bytes(source[position:header_end]))
            start = header_end + len(_HEADER_END)
            if end - start < length:
                break
            messages.append(_decode(source[start : start + length]))
            position = start + length
        if source is self._buffer:
            del self._buffer[:position]
        elif position < end:
            self._buffer = bytearray(source[position:])
        return messages

    def _content_length(self, header: bytes) -> int:
        for line in header.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                try:
                    length = int(value.strip())
                except ValueError:
                    raise FramingError("Unknown message header") from None
                return self._checked(length)
        raise FramingError("Unknown message header")

    def _checked(self, length: int) -> int:
        if length < 0 or length > self._max_frame_bytes:
            raise FramingError(f"frame length {length} out of range")
        return length


def _decode(body: bytes | bytearray) -> dict[str, Any]:
    try:
        message = ujson.loads(body)
    except ValueError as exc:
        raise FramingError(f"invalid JSON body: {exc}") from None
    if not isinstance(message, dict):
        raise FramingError("JSON-RPC message is not an object")
    return message


# QoderCN refuses a WebSocket upgrade without this header when its runtime wants a machine token (§11.3).
MACHINE_TOKEN_HEADER = "Cosy-MachineToken"
