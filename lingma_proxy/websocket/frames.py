"""RFC 6455 framing and the handshake keys, for the JSON-RPC carrier on both sides of it:
the proxy's client transport and the simulator's server (docs/protocol.md §2, §11.2).

Every chat chunk crosses this code twice (the chunk and its ack), so it is written for that: a caller
feeds whatever bytes arrived and gets every complete message back in one call, and builds frames that it
can send together in one write. Measured per small message, Tornado's WebSocket spends a coroutine step
and a socket write, and wsproto ~9 µs each way; this spends ~1–2 µs. Only what JSON-RPC needs is here:
no extensions, no subprotocols.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
CLOSE_NORMAL, CLOSE_PROTOCOL_ERROR, CLOSE_TOO_BIG = 1000, 1002, 1009

_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_FIN = 0x80
_MASKED = 0x80
_RESERVED_BITS = 0x70


class ProtocolError(Exception):
    """The peer broke RFC 6455; `code` is the close code to answer with."""

    def __init__(self, message: str, code: int = CLOSE_PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.code = code


def new_key() -> str:
    """A client's Sec-WebSocket-Key: 16 random bytes, base64."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


def accept_key(key: str) -> str:
    """The Sec-WebSocket-Accept a server must answer `key` with."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + _ACCEPT_GUID).digest()).decode("ascii")


def build_frame(opcode: int, payload: bytes, *, mask: bool) -> bytes:
    """One unfragmented frame; a client must mask what it sends and a server must not (RFC 6455 §5.1)."""
    size = len(payload)
    mask_bit = _MASKED if mask else 0
    if size < 126:
        header = bytes((_FIN | opcode, mask_bit | size))
    elif size < 1 << 16:
        header = struct.pack("!BBH", _FIN | opcode, mask_bit | 126, size)
    else:
        header = struct.pack("!BBQ", _FIN | opcode, mask_bit | 127, size)
    if not mask:
        return header + payload
    key = _mask_keys.next()
    return header + key + _xor(payload, key)


class _MaskKeys:
    """Unpredictable 4-byte masking keys (RFC 6455 §5.3), cut from one getrandom() call per 1,024 frames
    rather than one per frame: the system call was the largest cost of sending a small frame."""

    _BATCH = 4 * 1024

    def __init__(self) -> None:
        self._pool = b""
        self._next = 0

    def next(self) -> bytes:
        if self._next >= len(self._pool):
            self._pool, self._next = os.urandom(self._BATCH), 0
        key = self._pool[self._next : self._next + 4]
        self._next += 4
        return key


_mask_keys = _MaskKeys()


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode("utf-8")[:120]


def _xor(payload: bytes | bytearray, key: bytes) -> bytes:
    """Masking and unmasking are the same XOR; as one big-integer operation it runs at C speed."""
    size = len(payload)
    if not size:
        return b""
    repeated = (key * ((size >> 2) + 1))[:size]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")).to_bytes(size, "little")


class MessageReader:
    """Turns the bytes of a connection into whole messages: (opcode, payload) in order of arrival.

    Fragments are joined; control frames (close, ping, pong) come out as they arrive, even between the
    fragments of a message. `masked` is whether the peer must mask (it is the client)."""

    def __init__(self, *, masked: bool, max_message_bytes: int) -> None:
        self._masked = masked
        self._max = max_message_bytes
        self._buffer = bytearray()
        self._fragments: list[bytes] = []
        self._fragments_size = 0
        self._fragments_opcode = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        # Most reads hold whole frames: those are parsed in place, and only an incomplete tail is kept.
        if self._buffer:
            self._buffer += data
            buffer: bytes | bytearray = self._buffer
        else:
            buffer = data
        messages: list[tuple[int, bytes]] = []
        position, end = 0, len(buffer)
        while end - position >= 2:
            first, second = buffer[position], buffer[position + 1]
            size, header = second & 0x7F, 2
            if size == 126:
                if end - position < 4:
                    break
                (size,) = struct.unpack_from("!H", buffer, position + 2)
                header = 4
            elif size == 127:
                if end - position < 10:
                    break
                (size,) = struct.unpack_from("!Q", buffer, position + 2)
                header = 10
            self._check_header(first, second, size)
            if second & _MASKED:
                header += 4
            if end - position < header + size:
                break
            payload = bytes(buffer[position + header : position + header + size])
            if second & _MASKED:
                payload = _xor(payload, bytes(buffer[position + header - 4 : position + header]))
            position += header + size
            message = self._take(first, payload)
            if message is not None:
                messages.append(message)
        if buffer is self._buffer:
            del self._buffer[:position]
        elif position < end:
            self._buffer = bytearray(buffer[position:])
        return messages

    def _check_header(self, first: int, second: int, size: int) -> None:
        opcode = first & 0x0F
        if first & _RESERVED_BITS:
            raise ProtocolError("reserved bits set without a negotiated extension")
        if bool(second & _MASKED) != self._masked:
            raise ProtocolError("a client must mask its frames and a server must not")
        if opcode >= CLOSE and (size > 125 or not first & _FIN):
            raise ProtocolError("a control frame must be short and unfragmented")
        if opcode not in (CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG):
            raise ProtocolError(f"unknown opcode {opcode}")
        if self._fragments_size + size > self._max:
            raise ProtocolError(f"message over {self._max} bytes", CLOSE_TOO_BIG)

    def _take(self, first: int, payload: bytes) -> tuple[int, bytes] | None:
        opcode, final = first & 0x0F, first & _FIN
        if opcode >= CLOSE:
            return opcode, payload
        if opcode == CONTINUATION:
            if not self._fragments_opcode:
                raise ProtocolError("a continuation frame without a message to continue")
        elif self._fragments_opcode:
            raise ProtocolError("a new message began before the last one ended")
        elif final:
            return opcode, payload
        else:
            self._fragments_opcode = opcode
        self._fragments.append(payload)
        self._fragments_size += len(payload)
        if not final:
            return None
        message = (self._fragments_opcode, b"".join(self._fragments))
        self._fragments, self._fragments_size, self._fragments_opcode = [], 0, 0
        return message
