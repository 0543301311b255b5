"""RFC 6455 framing: what the proxy's client and the simulator's server read and write, checked against
wsproto (an independent implementation) and the RFC's own examples."""

from __future__ import annotations

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, Ping, Request, TextMessage

from lingma_proxy.websocket.frames import (
    BINARY,
    CLOSE,
    CLOSE_TOO_BIG,
    PING,
    TEXT,
    MessageReader,
    ProtocolError,
    accept_key,
    build_frame,
)

SIZES = [0, 1, 125, 126, 65_535, 65_536, 1_000_003]


def test_accept_key_is_the_rfc_example():
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_the_rfc_unmasked_and_masked_hello():
    # RFC 6455 §5.7
    assert build_frame(TEXT, b"Hello", mask=False) == bytes.fromhex("810548656c6c6f")
    masked = bytes.fromhex("818537fa213d7f9f4d5158")
    assert MessageReader(masked=True, max_message_bytes=100).feed(masked) == [(TEXT, b"Hello")]


def _open_pair(ours_is_client: bool) -> WSConnection:
    """A wsproto peer past its handshake, playing the other side."""
    client, server = WSConnection(ConnectionType.CLIENT), WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="localhost", target="/")))
    next(server.events())
    client.receive_data(server.send(AcceptConnection()))
    next(client.events())
    return server if ours_is_client else client


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("ours_is_client", [True, False], ids=["client", "server"])
def test_wsproto_reads_what_we_write(size, ours_is_client):
    peer = _open_pair(ours_is_client)
    payload = bytes(i % 251 for i in range(size))
    peer.receive_data(build_frame(BINARY, payload, mask=ours_is_client))
    [event] = peer.events()
    assert isinstance(event, BytesMessage) and event.data == payload


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("ours_is_client", [True, False], ids=["client", "server"])
def test_we_read_what_wsproto_writes_in_any_slicing(size, ours_is_client):
    peer = _open_pair(ours_is_client)
    text = "".join(chr(0x41 + i % 26) if i % 7 else "é" for i in range(size))
    wire = peer.send(TextMessage(data=text)) + peer.send(Ping(payload=b"hi"))
    reader = MessageReader(masked=not ours_is_client, max_message_bytes=2_000_000)
    step = max(1, len(wire) // 7)
    messages = [m for start in range(0, len(wire), step) for m in reader.feed(wire[start : start + step])]
    assert messages == [(TEXT, text.encode("utf-8")), (PING, b"hi")]


def test_fragments_are_joined_and_a_control_frame_between_them_comes_out_at_once():
    peer = _open_pair(ours_is_client=True)
    wire = (
        peer.send(TextMessage(data="Content-", message_finished=False))
        + peer.send(Ping(payload=b"p"))
        + peer.send(TextMessage(data="Length", message_finished=True))
    )
    assert MessageReader(masked=False, max_message_bytes=100).feed(wire) == [(PING, b"p"), (TEXT, b"Content-Length")]


def test_several_frames_in_one_read_all_come_out_in_order():
    frames = b"".join(build_frame(TEXT, f"message {i}".encode(), mask=True) for i in range(50))
    messages = MessageReader(masked=True, max_message_bytes=100).feed(frames)
    assert messages == [(TEXT, f"message {i}".encode()) for i in range(50)]


@pytest.mark.parametrize(
    "wire, problem",
    [
        (build_frame(TEXT, b"x", mask=False), "must mask"),  # a server reading an unmasked client frame
        (bytes([0xC1, 0x81]) + b"\0\0\0\0x", "reserved bits"),
        (bytes([0x83, 0x81]) + b"\0\0\0\0x", "unknown opcode"),
        (bytes([0x80, 0x81]) + b"\0\0\0\0x", "continuation"),
        (bytes([0x09, 0x81]) + b"\0\0\0\0x", "control frame"),  # a fragmented ping
    ],
)
def test_protocol_errors_are_named(wire, problem):
    with pytest.raises(ProtocolError, match=problem):
        MessageReader(masked=True, max_message_bytes=100).feed(wire)


def test_a_message_over_the_limit_is_refused_from_its_header_alone():
    header_only = build_frame(TEXT, b"x" * 1000, mask=True)[:8]
    with pytest.raises(ProtocolError) as raised:
        MessageReader(masked=True, max_message_bytes=999).feed(header_only)
    assert raised.value.code == CLOSE_TOO_BIG


def test_a_close_frame_is_a_message():
    assert MessageReader(masked=False, max_message_bytes=10).feed(build_frame(CLOSE, b"\x03\xe8", mask=False)) == [
        (CLOSE, b"\x03\xe8")
    ]
