"""The Lingma child's output: drained from its raw PTY as it comes, logged line by line (redacted), and
the last lines kept for error messages.

A child that writes logs nobody reads blocks on its own stdout (docs/architecture.md, the PTY), so one
reader callback drains it for as long as the child lives; a newline-free flood is logged in pieces.
"""

from __future__ import annotations

import asyncio
import collections
import os
from collections.abc import Callable

_READ_CHUNK = 256 * 1024
_MAX_LINE_BYTES = 64 * 1024  # a newline-free flood is logged in pieces rather than held in memory
_TAIL_LINES = 200


class ChildOutput:
    def __init__(self, fd: int, emit: Callable[[str], None], redact: Callable[[str], str]) -> None:
        self.fd = fd
        self.closed = asyncio.Event()  # EOF: every writer of the PTY is gone
        self._emit = emit
        self._redact = redact
        self._partial = bytearray()
        self._tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        os.set_blocking(fd, False)
        asyncio.get_running_loop().add_reader(fd, self._read)

    def tail(self, n: int) -> list[str]:
        """The last n lines, already redacted."""
        return list(self._tail)[-n:] if n > 0 else []

    def _read(self) -> None:
        """Reader callback: one non-blocking read, split into lines, log them."""
        try:
            data = os.read(self.fd, _READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:  # EIO: Linux's way to say every slave end is closed
            data = b""
        if not data:
            self._close()
            return
        self._take(data)

    def _take(self, data: bytes) -> None:
        self._partial += data
        *lines, rest = self._partial.split(b"\n")
        self._partial = bytearray(rest)
        if len(self._partial) > _MAX_LINE_BYTES:
            lines.append(bytes(self._partial))
            self._partial.clear()
        for raw in lines:
            self._line(raw)

    def _line(self, raw: bytes) -> None:
        line = self._redact(raw.rstrip(b"\r").decode("utf-8", errors="replace"))
        self._tail.append(line)
        self._emit(line)

    def _close(self) -> None:
        if self.closed.is_set():
            return
        asyncio.get_running_loop().remove_reader(self.fd)
        if self._partial:
            self._line(bytes(self._partial))
            self._partial.clear()
        self.closed.set()

    def drain_remaining(self) -> None:
        """After death: read whatever is still buffered in the PTY, then stop reading."""
        while not self.closed.is_set():
            try:
                data = os.read(self.fd, _READ_CHUNK)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if not data:
                break
            self._take(data)
        self._close()
