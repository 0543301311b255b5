"""Content-Length framing (docs/protocol.md §2): frames split anywhere, several in one message, odd headers."""

from __future__ import annotations

import pytest

from lingma_proxy.framing import FrameDecoder, FramingError, encode_frame, null_result_frame

MESSAGES = [
    {"jsonrpc": "2.0", "id": 1, "method": "chat/answer", "params": {"text": "héllo 你好 \r\n\r\n"}},
    {"jsonrpc": "2.0", "id": 2, "result": None},
    {"jsonrpc": "2.0", "method": "n", "params": {"blob": "x" * 70_000}},
]
WIRE = b"".join(encode_frame(message) for message in MESSAGES)


@pytest.mark.parametrize("step", [1, 2, 7, 100, 4096, len(WIRE)])
def test_frames_come_out_whole_and_in_order_however_the_bytes_are_cut(step):
    decoder = FrameDecoder()
    out = [m for start in range(0, len(WIRE), step) for m in decoder.feed(WIRE[start : start + step])]
    assert out == MESSAGES
    assert decoder.pending_bytes == 0


def test_a_str_message_and_a_tail_kept_for_later():
    decoder = FrameDecoder()
    first, second = encode_frame(MESSAGES[0]).decode("utf-8"), encode_frame(MESSAGES[1]).decode("utf-8")
    assert decoder.feed(first + second[:10]) == [MESSAGES[0]]
    assert decoder.pending_bytes == 10
    assert decoder.feed(second[10:]) == [MESSAGES[1]]


def test_other_header_lines_and_any_case_are_read():
    body = b'{"jsonrpc":"2.0","id":3,"result":{}}'
    wire = b"Content-Type: application/vscode-jsonrpc\r\ncontent-length:  %d \r\n\r\n%s" % (len(body), body)
    assert FrameDecoder().feed(wire) == [{"jsonrpc": "2.0", "id": 3, "result": {}}]


@pytest.mark.parametrize(
    "wire, problem",
    [
        (b"Content-Length: x\r\n\r\n{}", "Unknown message header"),
        (b"Content-Type: a\r\n\r\n{}", "Unknown message header"),
        (b"Content-Length: 99\r\n\r\n", "out of range"),
        (b"Content-Length: 2\r\n\r\n[]", "not an object"),
        (b"Content-Length: 2\r\n\r\n{x", "invalid JSON"),
        (b"garbage " * 600, "Unknown message header"),
    ],
)
def test_bad_frames_are_named(wire, problem):
    with pytest.raises(FramingError, match=problem):
        FrameDecoder(max_frame_bytes=50).feed(wire)


@pytest.mark.parametrize("msg_id", [0, 7, 123456789012])
def test_the_ack_template_is_what_the_encoder_makes(msg_id):
    assert null_result_frame(msg_id) == encode_frame({"jsonrpc": "2.0", "id": msg_id, "result": None})
