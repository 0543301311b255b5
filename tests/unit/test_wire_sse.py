"""SSE frames, read back by the SDKs' own decoders."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from lingma_proxy.wire.sse import dumps, sse_comment, sse_data, sse_event

pytestmark = pytest.mark.timeout(30)


def _decode_openai(text: str, read_size: int = 5) -> list:
    raw = text.encode()
    pieces = [raw[start : start + read_size] for start in range(0, len(raw), read_size)]
    return list(openai._streaming.SSEDecoder().iter_bytes(iter(pieces)))


def _decode_anthropic(text: str) -> list:
    return list(anthropic._streaming.SSEDecoder().iter_bytes(iter([text.encode()])))


def test_json_payload_round_trips_with_unicode_and_slashes_kept():
    payload = {"text": "中文 ü / \u2028 line\nbreak", "n": [1, 2.5, None, True]}
    frame = sse_data(payload)
    assert "中文" in frame and "\\/" not in frame and "\\u" not in frame.replace("\\u2028", "")
    (event,) = _decode_openai(frame)
    assert event.event is None and json.loads(event.data) == payload


def test_multi_line_text_becomes_several_data_lines_and_decodes_back():
    frame = sse_data("one\ntwo\r\nthree\rfour")
    assert frame == "data: one\ndata: two\ndata: three\ndata: four\n\n"
    assert [event.data for event in _decode_openai(frame)] == ["one\ntwo\nthree\nfour"]


def test_named_events_decode_in_both_sdks():
    frames = sse_event("message_start", {"type": "message_start", "x": "ü"}) + sse_event("ping", {"type": "ping"})
    for events in (_decode_openai(frames), _decode_anthropic(frames)):
        assert [(event.event, event.json()) for event in events] == [
            ("message_start", {"type": "message_start", "x": "ü"}),
            ("ping", {"type": "ping"}),
        ]


def test_comments_are_skipped_by_decoders():
    frames = sse_comment("keep-alive") + sse_data("[DONE]")
    assert sse_comment("keep-alive") == ": keep-alive\n\n"
    assert [event.data for event in _decode_openai(frames)] == ["[DONE]"]
    assert [event.data for event in _decode_anthropic(frames)] == ["[DONE]"]


def test_an_event_name_with_a_line_break_is_refused():
    with pytest.raises(ValueError):
        sse_event("bad\nname", {})


def test_dumps_is_compact_utf8_json():
    assert dumps({"a": "é/b"}) == '{"a":"é/b"}'
