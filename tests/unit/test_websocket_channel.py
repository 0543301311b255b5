"""lingma_proxy/websocket on real sockets: our client and server with each other and with Tornado's
(an independent implementation): messages both ways, batching, pings, closing, a refused upgrade; and on
an in-memory transport, when the writes happen."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
import tornado.web
import tornado.websocket
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from lingma_proxy import websocket
from lingma_proxy.websocket.channel import MessageCallback
from lingma_proxy.websocket.frames import TEXT, build_frame
from lingma_proxy.websocket.server import ServerChannel, serve

pytestmark = pytest.mark.timeout(30)
BIG = 1_000_000


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())


class Received:
    """What a channel delivered, awaitable message by message; None when the peer is gone."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    def __call__(self, message: bytes | None) -> None:
        self.queue.put_nowait(message)

    async def next(self) -> bytes | None:
        return await asyncio.wait_for(self.queue.get(), 10)


async def echo_server(token: str = "") -> tuple[asyncio.Server, int]:
    """Our server: echoes each message, refuses an upgrade without the token (when one is set)."""

    def decide(channel: ServerChannel, headers) -> MessageCallback | int:
        if token and headers.get("x-token") != token:
            return 403

        def on_message(message: bytes | None) -> None:
            if message is not None:
                channel.send_text(message)

        return on_message

    server = await serve("127.0.0.1", 0, decide, max_message_bytes=2 * BIG)
    return server, server.sockets[0].getsockname()[1]


def test_our_client_and_server_carry_small_big_and_batched_messages():
    async def scenario() -> None:
        server, port = await echo_server()
        inbox = Received()
        client = await websocket.connect(f"ws://127.0.0.1:{port}/any/path", inbox, max_message_bytes=2 * BIG)
        for text in (b"", b"hello", "é你好".encode(), b"x" * BIG):
            client.send_text(text)
            assert await inbox.next() == text
        for i in range(100):  # queued in one loop turn: one socket write, still 100 messages
            client.send_text(b"message %d" % i)
        assert [await inbox.next() for _ in range(100)] == [b"message %d" % i for i in range(100)]
        client.close()
        server.close()

    run(scenario)


def test_a_refused_upgrade_is_the_status_and_a_token_header_gets_through():
    async def scenario() -> None:
        server, port = await echo_server(token="t0k")
        with pytest.raises(websocket.HandshakeRefused) as refused:
            await websocket.connect(f"ws://127.0.0.1:{port}/", Received(), max_message_bytes=100)
        assert refused.value.status == 403
        inbox = Received()
        client = await websocket.connect(
            f"ws://127.0.0.1:{port}/", inbox, headers={"X-Token": "t0k"}, max_message_bytes=100
        )
        client.send_text(b"in")
        assert await inbox.next() == b"in"
        client.close()
        server.close()

    run(scenario)


class TornadoEcho(tornado.websocket.WebSocketHandler):
    def on_message(self, message: str | bytes) -> None:
        if message == "ping me":
            self.ping(b"are you there")
        elif message == "close me":
            self.close(1000)
        else:
            self.write_message(message, binary=isinstance(message, bytes))

    def on_pong(self, data: bytes) -> None:
        self.write_message(b"pong: " + data, binary=True)


def test_our_client_with_tornados_server_answers_pings_and_sees_a_close():
    async def scenario() -> None:
        app = tornado.web.Application([(r"/.*", TornadoEcho)], websocket_max_message_size=2 * BIG)
        sock, port = bind_unused_port()
        server = HTTPServer(app)
        server.add_sockets([sock])
        inbox = Received()
        client = await websocket.connect(f"ws://127.0.0.1:{port}/", inbox, max_message_bytes=2 * BIG)
        client.send_text(b"Content-Length: 2\r\n\r\n{}")
        assert await inbox.next() == b"Content-Length: 2\r\n\r\n{}"
        client.send_text(b"y" * BIG)
        assert await inbox.next() == b"y" * BIG
        client.send_text(b"ping me")
        assert await inbox.next() == b"pong: are you there"  # our channel answered Tornado's ping
        client.send_text(b"close me")
        assert await inbox.next() is None
        assert not client.open
        server.stop()

    run(scenario)


def test_tornados_client_with_our_server_and_a_refusal():
    async def scenario() -> None:
        server, port = await echo_server(token="t0k")
        with pytest.raises(HTTPClientError) as refused:
            await tornado.websocket.websocket_connect(f"ws://127.0.0.1:{port}/")
        assert refused.value.code == 403
        request = HTTPRequest(f"ws://127.0.0.1:{port}/", headers={"X-Token": "t0k"})
        client = await tornado.websocket.websocket_connect(request, max_message_size=2 * BIG)
        for text in ("short", "z" * BIG):
            await client.write_message(text)
            assert await client.read_message() == text  # our server answers a text frame with a text frame
        client.close()
        server.close()

    run(scenario)


def test_a_peer_that_breaks_the_protocol_is_dropped_and_reported_gone():
    async def scenario() -> None:
        gone = asyncio.Event()

        def decide(channel: ServerChannel, headers) -> MessageCallback:
            return lambda message: gone.set() if message is None else None

        server = await serve("127.0.0.1", 0, decide, max_message_bytes=100)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101") and b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
        writer.write(b"\x81\x05hello")  # unmasked: a client must mask
        await asyncio.wait_for(gone.wait(), 10)
        assert (await reader.read()).startswith(b"\x88")  # a close frame, then the end of the stream
        writer.close()
        server.close()

    run(scenario)


class RecordingTransport(asyncio.Transport):
    """The socket side of a channel, kept in memory: each write() is one socket write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return False


def test_replies_queued_while_a_read_is_delivered_leave_in_one_write_at_its_end():
    async def scenario() -> None:
        replies = [b"ack %d" % i for i in range(3)]

        def decide(channel: ServerChannel, headers) -> MessageCallback:
            return lambda message: channel.send_text(b"ack " + message) if message is not None else None

        channel, transport = ServerChannel(decide, max_message_bytes=1024), RecordingTransport()
        channel.connection_made(transport)
        channel.data_received(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        assert transport.writes[0].startswith(b"HTTP/1.1 101")
        # Three messages in one read: their replies go out before the read returns, in one write.
        channel.data_received(b"".join(build_frame(TEXT, b"%d" % i, mask=True) for i in range(3)))
        assert transport.writes[1:] == [b"".join(build_frame(TEXT, reply, mask=False) for reply in replies)]
        await asyncio.sleep(0)  # and nothing is left for a later loop turn
        assert len(transport.writes) == 2

    run(scenario)
