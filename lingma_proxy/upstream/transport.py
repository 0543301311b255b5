"""The byte/message carriers under the JSON-RPC layer: a WebSocket, or a Unix domain socket (docs/protocol.md §11.2).

Both carry the same Content-Length frames (§2): the WebSocket one frame per text message, the Unix socket
as a plain byte stream. `RpcConnection` only ever sees `connect`, `write`, the `on_data` callback (None
when the peer is gone) and `close`, so a Windows named pipe would be one more class here (§11.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import websocket
from ..framing import MACHINE_TOKEN_HEADER

_log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 256 * 1024 * 1024  # a whole prompt or answer is one message: 1 MB prompts must fit, and more
_READ_CHUNK = 256 * 1024

WEBSOCKET, UNIX = "websocket", "unix"
DataCallback = Callable[["bytes | None"], None]


class TransportError(Exception):
    """No connection could be made; the message is one line for the operator."""


class TransportTimeout(TransportError):
    """The runtime did not accept a connection in time."""


@dataclass(frozen=True)
class Endpoint:
    """Where a runtime listens and how to reach it: a ws:// URL or a Unix socket path, plus what attach learned."""

    address: str
    transport: str = WEBSOCKET  # websocket | unix
    machine_token: str = field(default="", repr=False)  # the Cosy-MachineToken of a WebSocket upgrade (§11.3)
    token_path: Path | None = None  # where the token came from, for messages
    family: str = ""  # qodercn | lingma, from the folder its info file was in; "" when unknown
    info_dir: Path | None = None  # the SharedClientCache folder it was found in (attach auto only)

    def __str__(self) -> str:
        return self.address if self.transport == WEBSOCKET else f"unix://{self.address}"

    def open(self) -> Transport:
        if self.transport == UNIX:
            return UnixSocketTransport(self.address)
        return WebSocketTransport(self.address, self.machine_token, self.token_path)


def as_endpoint(target: str | Endpoint) -> Endpoint:
    return target if isinstance(target, Endpoint) else Endpoint(target)


class Transport:
    """One connection's carrier. `connect()` once; then `write()` frames; `on_data` gets what arrives."""

    kind = ""

    def __init__(self, address: str) -> None:
        self.address = address
        self._on_data: DataCallback = lambda data: None
        self._closed = False

    async def connect(self, on_data: DataCallback, timeout: float) -> None:
        raise NotImplementedError

    def write(self, frame: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _lost(self) -> None:
        """Tell the RPC layer once that the peer is gone."""
        if not self._closed:
            self._closed = True
            self._on_data(None)


class WebSocketTransport(Transport):
    kind = WEBSOCKET

    def __init__(self, url: str, machine_token: str = "", token_path: Path | None = None) -> None:
        super().__init__(url)
        self._token = machine_token
        self._token_path = token_path
        self._channel: websocket.ClientChannel | None = None
        # A message may arrive with the handshake's answer, before connect() returns; replies to it wait here.
        self._unsent: list[bytes] = []

    async def connect(self, on_data: DataCallback, timeout: float) -> None:
        self._on_data = on_data
        headers = {MACHINE_TOKEN_HEADER: self._token} if self._token else {}
        try:
            self._channel = await asyncio.wait_for(
                websocket.connect(self.address, self._on_message, headers=headers, max_message_bytes=MAX_MESSAGE_BYTES),
                timeout,
            )
        except TimeoutError:
            raise TransportTimeout(f"no WebSocket connection to {self.address} within {timeout:g}s") from None
        except websocket.HandshakeRefused as exc:
            raise TransportError(self._refused(exc)) from None
        except (OSError, ValueError) as exc:
            raise TransportError(f"cannot connect to {self.address}: {exc}") from None
        for frame in self._unsent:
            self.write(frame)
        self._unsent.clear()

    def _refused(self, exc: websocket.HandshakeRefused) -> str:
        if exc.status not in (401, 403):
            return f"cannot connect to {self.address}: {exc}"
        if self._token:
            return (
                f"{self.address} refused the connection (HTTP {exc.status}): it did not accept the "
                f"{MACHINE_TOKEN_HEADER} from {self._token_path or 'machine_token.json'}; restart the IDE's runtime "
                "so that it writes a fresh one"
            )
        return (
            f"{self.address} refused the connection (HTTP {exc.status}): it may want a {MACHINE_TOKEN_HEADER} header, "
            "which is sent only when cache/machine_token.json sits beside the info file (lingma.attach: auto)"
        )

    def _on_message(self, data: bytes | None) -> None:
        if data is None:
            self._lost()
        else:
            self._on_data(data)

    def write(self, frame: bytes) -> None:
        if self._channel is None:
            self._unsent.append(frame)
        elif not self._channel.send_text(frame):
            self._lost()

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
        self._closed = True


class UnixSocketTransport(Transport):
    """The same frames straight on a Unix domain socket's byte stream, LSP style (§11.2)."""

    kind = UNIX

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None

    async def connect(self, on_data: DataCallback, timeout: float) -> None:
        self._on_data = on_data
        if not Path(self.address).exists():
            raise TransportError(f"cannot connect to unix://{self.address}: no such socket (is the runtime running?)")
        try:
            reader, self._writer = await asyncio.wait_for(
                asyncio.open_unix_connection(self.address, limit=_READ_CHUNK), timeout
            )
        except TimeoutError:
            raise TransportTimeout(f"no connection to unix://{self.address} within {timeout:g}s") from None
        except OSError as exc:
            raise TransportError(f"cannot connect to unix://{self.address}: {exc.strerror or exc}") from None
        self._reader_task = asyncio.create_task(self._read(reader), name=f"unix-reader {self.address}")

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while chunk := await reader.read(_READ_CHUNK):
                self._on_data(chunk)
        except OSError as exc:
            _log.debug("unix://%s: read failed: %r", self.address, exc)
        self._lost()

    def write(self, frame: bytes) -> None:
        if self._writer is None or self._closed:
            return
        try:
            self._writer.write(frame)
        except (OSError, RuntimeError):
            self._lost()

    def close(self) -> None:
        self._closed = True
        if self._writer is not None:
            with contextlib.suppress(OSError, RuntimeError):
                self._writer.close()
        if self._reader_task is not None:
            self._reader_task.cancel()
