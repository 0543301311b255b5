"""The load generator's client: raw HTTP/1.1 over asyncio streams, and a closed-loop runner.

httpx and Tornado's AsyncHTTPClient each cost a few hundred microseconds per request in the client,
which on a 2-core machine is taken straight from the server being measured. This client does only what
the bench needs: keep-alive POSTs, Content-Length and chunked bodies, and for SSE the time of the first
content token and the number of events, found by byte search rather than by decoding every event.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

# A delta with at least one character of text: OpenAI `"content":"x`, Anthropic `"text":"x`. Servers
# differ in JSON spacing (LiteLLM writes `"text": "x"`), hence the \s*.
_FIRST_TOKEN = re.compile(rb'"(?:content|text)":\s*"[^"]')
_STREAM_END = re.compile(rb'data: \[DONE\]|"type":\s*"message_stop"')
_ERROR_EVENT = re.compile(rb'"error":\s*\{')


@dataclass
class Sample:
    ok: bool
    latency: float  # seconds from sending the request to the end of the response
    first_token: float | None = None  # seconds to the first content token (streams), or to the body
    events: int = 0  # SSE events received
    error: str = ""
    hung_up: bool = False  # the client closed the connection on purpose after the first token
    connect: float = 0.0  # seconds of the latency spent opening the connection (0 on a kept-alive one)


class Caller(Protocol):
    async def call(self) -> Sample: ...

    def close(self) -> None: ...


class HttpStatusError(Exception):
    pass


class HttpConnection:
    """One keep-alive connection to host:port, reopened after any failure."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    def build_request(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
        lines = [
            f"POST {path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in (headers or {}).items()),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    async def send(self, request: bytes, stream: bool, hang_up: bool = False) -> Sample:
        """Send a prebuilt request and read the response; never raises.

        hang_up: close the connection as soon as the first content token arrives, as a client that
        gives up mid-stream does."""
        started = time.perf_counter()
        connect = 0.0
        try:
            if self._writer is None:
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
                connect = time.perf_counter() - started
            self._writer.write(request)
            await self._writer.drain()
            sample = await self._read_response(started, stream, hang_up)
        except (OSError, asyncio.IncompleteReadError, ValueError, HttpStatusError) as exc:
            self.close()
            sample = Sample(False, time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}"[:200])
        sample.connect = connect
        return sample

    async def _read_response(self, started: float, stream: bool, hang_up: bool) -> Sample:
        reader = self._reader
        assert reader is not None
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionResetError("connection closed before the response")
        status = int(status_line.split(None, 2)[1])
        headers = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip().lower()
        watcher = _BodyWatcher(started, stream)
        if headers.get(b"transfer-encoding") == b"chunked":
            while size := int((await reader.readline()).split(b";")[0], 16):
                watcher.feed((await reader.readexactly(size + 2))[:-2])
                if hang_up and watcher.first_token is not None:
                    self.close()
                    return Sample(
                        True, time.perf_counter() - started, watcher.first_token, watcher.events, hung_up=True
                    )
            while await reader.readline() not in (b"\r\n", b""):  # trailers
                pass
        elif b"content-length" in headers:
            watcher.feed(await reader.readexactly(int(headers[b"content-length"])))
        else:
            watcher.feed(await reader.read())
            headers[b"connection"] = b"close"
        if headers.get(b"connection") == b"close":
            self.close()
        if status != 200:
            raise HttpStatusError(f"HTTP {status}: {watcher.head[:160]!r}")
        return watcher.sample()


class _BodyWatcher:
    """Notes the first content token and counts SSE events as body pieces arrive."""

    def __init__(self, started: float, stream: bool) -> None:
        self.started = started
        self.stream = stream
        self.first_token: float | None = None
        self.events = 0
        self.head = b""
        self.tail = b""
        self.error = False

    def feed(self, data: bytes) -> None:
        now = time.perf_counter()
        if not self.head:
            self.head = data[:400]
        if self.first_token is None and (not self.stream or _FIRST_TOKEN.search(data)):
            self.first_token = now - self.started
        if self.stream:
            joined = self.tail + data
            self.events += joined.count(b"\n\n") - self.tail.count(b"\n\n")
            self.error = self.error or _ERROR_EVENT.search(data) is not None
            self.tail = joined[-64:]

    def sample(self) -> Sample:
        latency = time.perf_counter() - self.started
        if not self.stream:
            return Sample(True, latency, self.first_token)
        if self.error or not _STREAM_END.search(self.tail):
            why = "error event in stream" if self.error else f"stream ended without its terminator: {self.tail!r}"
            return Sample(False, latency, self.first_token, self.events, why)
        return Sample(True, latency, self.first_token, self.events)


class HttpCaller:
    """A Caller that POSTs one fixed body on its own keep-alive connection."""

    def __init__(self, url: str, path: str, body: bytes, stream: bool, headers: dict[str, str] | None = None) -> None:
        host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
        self.connection = HttpConnection(host, int(port))
        self.stream = stream
        self.request = self.connection.build_request(path, body, headers)

    async def call(self) -> Sample:
        return await self.connection.send(self.request, self.stream)

    def close(self) -> None:
        self.connection.close()


@dataclass
class Run:
    samples: list[Sample]
    wall: float  # seconds for the whole run

    @property
    def errors(self) -> list[str]:
        return [s.error for s in self.samples if not s.ok]

    @property
    def ok(self) -> list[Sample]:
        return [s for s in self.samples if s.ok]

    @property
    def rps(self) -> float:
        return len(self.ok) / self.wall if self.wall > 0 else 0.0


async def closed_loop(new_caller: Callable[[], Caller], total: int, concurrency: int) -> Run:
    """`concurrency` workers, each with its own caller, send `total` requests back to back."""
    remaining = total
    samples: list[Sample] = []

    async def worker() -> None:
        nonlocal remaining
        caller = new_caller()
        try:
            while remaining > 0:
                remaining -= 1
                samples.append(await caller.call())
        finally:
            caller.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, total))))
    wall = time.perf_counter() - started
    return Run(samples, wall)


async def timed_loop(new_caller: Callable[[], Caller], duration: float, concurrency: int) -> Run:
    """Like closed_loop, but each worker keeps going until `duration` seconds have passed."""
    samples: list[Sample] = []
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        caller = new_caller()
        try:
            while time.perf_counter() < deadline:
                samples.append(await caller.call())
        finally:
            caller.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Run(samples, time.perf_counter() - started)
