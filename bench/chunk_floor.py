"""The floor for relaying one stream chunk: what a bare asyncio process spends to take a message off one
socket, ack it on that socket and pass it on through another, which the proxy must do for every chat chunk,
without its WebSocket framing, JSON, routing or encoding.

Three processes, shaped like a proxied stream: a sender that writes one message per loop turn, as the
simulator writes chunks; the relay; and the sink, which is the bench process, as the HTTP client is.

    floor = await ChunkFloor.start()
    us = await floor.per_message_us(placement)   # the relay's CPU µs per message
    await floor.stop()

As a script it is the relay (`relay SINK_PORT`) or the sender (`send RELAY_PORT COUNT`).
"""

from __future__ import annotations

import asyncio
import sys

from measure import cpu_seconds
from placement import Placement, pinned

MESSAGE = b"x" * 160 + b"\n"  # about a chat/answer request with an 8-character delta
ACK = b"ack\n"
MESSAGES = 5000


class _Relay(asyncio.Protocol):
    def __init__(self, sink: asyncio.Transport) -> None:
        self._sink = sink
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        *lines, self._tail = (self._tail + data).split(b"\n")
        for line in lines:
            self._transport.write(ACK)
            self._sink.write(b"data: " + line + b"\n\n")


async def _relay(sink_port: int) -> None:
    loop = asyncio.get_running_loop()
    _, sink = await asyncio.open_connection("127.0.0.1", sink_port)
    server = await loop.create_server(lambda: _Relay(sink.transport), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # serves until the bench closes stdin


async def _send(relay_port: int, count: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", relay_port)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # "go", once pinned
    for _ in range(count):
        writer.write(MESSAGE)
        await asyncio.sleep(0)
    acked = 0
    while acked < count:
        data = await reader.read(65536)
        if not data:
            raise SystemExit("the relay closed the connection")
        acked += data.count(b"\n")


class ChunkFloor:
    """The relay process and this process's sink, kept for a whole run."""

    def __init__(self, relay: asyncio.subprocess.Process, port: int, sink: asyncio.Server) -> None:
        self._relay, self._port, self._sink = relay, port, sink

    @classmethod
    async def start(cls) -> ChunkFloor:
        sink = await asyncio.start_server(_drain, "127.0.0.1", 0)
        relay = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "relay", str(sink.sockets[0].getsockname()[1]),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert relay.stdout is not None
        line = await relay.stdout.readline()
        if not line:
            raise RuntimeError("the floor relay did not start")
        return cls(relay, int(line), sink)

    async def per_message_us(self, placement: Placement, messages: int = MESSAGES) -> float:
        sender = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "send", str(self._port), str(messages), stdin=asyncio.subprocess.PIPE
        )
        assert sender.stdin is not None
        with pinned(self._relay.pid, sender.pid, placement):
            before = cpu_seconds(self._relay.pid) or 0.0
            sender.stdin.write(b"go\n")
            await sender.stdin.drain()
            if await sender.wait() != 0:
                raise RuntimeError("the floor sender failed")
            spent = (cpu_seconds(self._relay.pid) or 0.0) - before
        return spent * 1e6 / messages

    async def stop(self) -> None:
        if self._relay.stdin is not None:
            self._relay.stdin.close()
        try:
            await asyncio.wait_for(self._relay.wait(), 10)
        except TimeoutError:
            self._relay.kill()
            await self._relay.wait()
        self._sink.close()


async def _drain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while await reader.read(65536):
        pass
    writer.close()


if __name__ == "__main__":
    role, port = sys.argv[1], int(sys.argv[2])
    asyncio.run(_relay(port) if role == "relay" else _send(port, int(sys.argv[3])))
