"""Tornado's HTTP server, bounded against clients that hold connections open without using them.

Tornado waits for a request's headers with one timeout that is also the keep-alive idle timeout, and
has no cap on connections. So a client that opens hundreds of connections and sends its headers one
byte at a time holds every file descriptor for as long as the idle timeout allows. Three small
additions close that:
- the first request on a connection must send its headers within `header_timeout` (a real client
  sends them in milliseconds); later requests on a kept-alive connection may wait `idle_timeout`; a
  request body must arrive within `body_timeout`;
- past `max_connections`, the connection that has waited longest for its headers is closed to make
  room, so a legitimate request still gets in;
- when accept() fails for want of descriptors, accepting pauses briefly instead of spinning, and that
  is logged once per pause rather than once per attempt.
The waits are enforced by one sweep over the connections a few times a second, not by Tornado's
timeout per read: that one wraps each request's header and body reads in a timer and a task, which
was ~5% of the CPU a small request costs. Streams are unaffected: a response being written is not
waiting for headers or a body.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

from tornado import httputil, iostream
from tornado.http1connection import HTTP1Connection, HTTP1ConnectionParameters, HTTP1ServerConnection
from tornado.httpserver import HTTPServer, _HTTPRequestContext
from tornado.ioloop import IOLoop, PeriodicCallback

log = logging.getLogger("lingma_proxy.http")

ACCEPT_PAUSE_SEC = 0.1
_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_DESCRIPTOR_RESERVE = 64  # for the log, the Lingma children's PTYs and sockets, and the upstream connections


def raise_descriptor_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d: %s", soft, exc)
    return soft


def _sweep_every(*timeouts: float) -> float:
    """Often enough that a wait is cut within a quarter of the shortest timeout, at most once a second."""
    return min(1.0, max(0.05, min(timeouts) / 4))


def connection_cap(configured: int, descriptor_limit: int) -> int:
    """limits.max_connections, but never more than the descriptors left after the proxy's own needs."""
    return max(1, min(configured, descriptor_limit - _DESCRIPTOR_RESERVE))


class _WatchedConnection(HTTP1ServerConnection):
    """One client connection that knows whether, and since when, it waits for a request's headers or body."""

    def __init__(self, stream: iostream.IOStream, params: HTTP1ConnectionParameters, context: object) -> None:
        super().__init__(stream, params, context)
        self.waiting_since: float | None = time.monotonic()  # for the headers of a request
        self.body_since: float | None = None  # for the rest of a request whose headers are in
        self.served_one = False  # a kept-alive connection: the idle wait applies, not the header wait

    def overdue(self, now: float, header_timeout: float, idle_timeout: float, body_timeout: float) -> bool:
        if self.waiting_since is not None:
            return now - self.waiting_since > (idle_timeout if self.served_one else header_timeout)
        return self.body_since is not None and now - self.body_since > body_timeout

    async def _server_request_loop(self, delegate: httputil.HTTPServerConnectionDelegate) -> None:
        # Tornado's own loop, with the waits marked for the sweep (GuardedHTTPServer._sweep).
        try:
            while True:
                self.waiting_since = time.monotonic()
                conn = HTTP1Connection(self.stream, False, self.params, self.context)
                request = _HeadersSeen(delegate.start_request(self, conn), self)
                try:
                    keep_going = await conn.read_response(request)
                except (iostream.StreamClosedError, iostream.UnsatisfiableReadError, asyncio.CancelledError):
                    return
                except Exception:
                    log.exception("uncaught exception on an HTTP connection")
                    conn.close()
                    return
                if not keep_going:
                    return
                self.served_one = True
                await asyncio.sleep(0)
        finally:
            delegate.on_close(self)


class _HeadersSeen(httputil.HTTPMessageDelegate):
    """Passes everything on; marks the connection busy once the request's headers are in."""

    def __init__(self, inner: httputil.HTTPMessageDelegate, connection: _WatchedConnection) -> None:
        self._inner = inner
        self._connection = connection

    def headers_received(
        self, start_line: httputil.RequestStartLine | httputil.ResponseStartLine, headers: httputil.HTTPHeaders
    ) -> Any:
        self._connection.waiting_since = None
        self._connection.body_since = time.monotonic()
        return self._inner.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Any:
        return self._inner.data_received(chunk)

    def finish(self) -> None:
        self._connection.body_since = None
        self._inner.finish()

    def on_connection_close(self) -> None:
        self._inner.on_connection_close()


class GuardedHTTPServer(HTTPServer):
    """HTTPServer with a header timeout apart from the idle one, a connection cap, and a calm accept loop."""

    def initialize(  # type: ignore[override]
        self,
        request_callback: Callable,
        *,
        header_timeout: float,
        idle_timeout: float,
        body_timeout: float,
        max_connections: int,
        max_body_size: int,
    ) -> None:
        super().initialize(request_callback, max_body_size=max_body_size)
        tornado_params = self.conn_params
        self.conn_params = HTTP1ConnectionParameters(
            decompress=tornado_params.decompress, chunk_size=tornado_params.chunk_size,
            max_header_size=tornado_params.max_header_size, max_body_size=tornado_params.max_body_size,
            no_keep_alive=tornado_params.no_keep_alive, header_timeout=None, body_timeout=None,
        )  # fmt: skip
        self._timeouts = (header_timeout, idle_timeout, body_timeout)
        self.max_connections = max_connections
        self._sweeper = PeriodicCallback(self._sweep, 1000 * _sweep_every(header_timeout, body_timeout))
        self._sweeper.start()

    def stop(self) -> None:
        self._sweeper.stop()
        super().stop()

    def _sweep(self) -> None:
        """Close every connection that has waited too long for a request's headers or body."""
        now = time.monotonic()
        for conn in list(self._connections):
            if isinstance(conn, _WatchedConnection) and conn.overdue(now, *self._timeouts):
                conn.waiting_since = conn.body_since = None  # closing; its own loop takes it out of _connections
                conn.stream.close()

    def handle_stream(self, stream: iostream.IOStream, address: tuple) -> None:
        open_now = sum(1 for c in self._connections if not c.stream.closed())
        if open_now >= self.max_connections and not self._evict_one():
            stream.close()  # every connection is busy with a request: the newcomer waits for none of them
            return
        context = _HTTPRequestContext(stream, address, self.protocol, self.trusted_downstream)
        conn = _WatchedConnection(stream, self.conn_params, context)
        self._connections.add(conn)
        conn.start_serving(self)

    def _evict_one(self) -> bool:
        waiting = [c for c in self._connections if isinstance(c, _WatchedConnection) and c.waiting_since]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda c: c.waiting_since or 0.0)
        oldest.waiting_since = None  # closing; its own loop takes it out of _connections
        oldest.stream.close()
        return True

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = _add_calm_accept_handler(sock, self._handle_connection)


def _add_calm_accept_handler(sock: socket.socket, callback: Callable[[socket.socket, Any], None]) -> Callable[[], None]:
    """tornado.netutil.add_accept_handler, except that running out of descriptors pauses accepting.

    Tornado's handler lets EMFILE escape: the listening socket stays readable, so the loop calls it
    again at once, forever, logging a traceback each time."""
    io_loop = IOLoop.current()
    state = {"removed": False, "paused": False}

    def resume() -> None:
        state["paused"] = False
        if not state["removed"]:
            io_loop.add_handler(sock, accept, IOLoop.READ)

    def accept(fd: Any, events: int) -> None:
        for _ in range(128):
            if state["removed"]:
                return
            try:
                connection, address = sock.accept()
            except BlockingIOError:
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno not in _OUT_OF_DESCRIPTORS:
                    raise
                log.warning("out of file descriptors (%s): not accepting for %.0f ms", exc.strerror,
                            ACCEPT_PAUSE_SEC * 1000)  # fmt: skip
                io_loop.remove_handler(sock)
                state["paused"] = True
                io_loop.call_later(ACCEPT_PAUSE_SEC, resume)
                return
            callback(connection, address)

    def remove() -> None:
        if not state["paused"]:
            io_loop.remove_handler(sock)
        state["removed"] = True

    io_loop.add_handler(sock, accept, IOLoop.READ)
    return remove
