"""Anthropic Messages: the decoder's contract, and the encoder as anthropic-python reads it."""

from __future__ import annotations

import json

import anthropic
import pydantic
import pytest
from anthropic.types import Message as SdkMessage
from anthropic.types import RawMessageStreamEvent

from lingma_proxy.errors import ApiError
from lingma_proxy.events import Finish, TextDelta, ThinkDelta, ToolCall, Usage
from lingma_proxy.model import Conversation, Image, Message
from lingma_proxy.wire.anthropic import DOCUMENT_PLACEHOLDER, decode_messages_request
from lingma_proxy.wire.anthropic_encoder import AnthropicEncoder
from tests.unit.wire_sdk import anthropic_client, run, sse_payloads

pytestmark = pytest.mark.timeout(60)

STREAM_EVENT = pydantic.TypeAdapter(RawMessageStreamEvent)
ARGS = json.dumps({"file_path": "/src/main.py", "content": "print('héllo')\n" * 12}, ensure_ascii=False)
FINISH = Finish(usage=Usage(30, 12))


def _body(**overrides) -> dict:
    return {"model": "claude-x", "max_tokens": 1024, "messages": [{"role": "user", "content": "hi"}]} | overrides


def _encoder(thinking: bool = False) -> AnthropicEncoder:
    conv = Conversation(model="claude-x", messages=[Message(role="user", text="hi")], thinking=thinking)
    return AnthropicEncoder(conv, response_id="msg_test", model="qwen3", created=1700000000, input_tokens=30)


# --- decoder ---------------------------------------------------------------------------------


def test_decode_system_blocks_and_in_message_system_entries():
    conv = decode_messages_request(
        _body(
            system=[{"type": "text", "text": "one"}, {"type": "text", "text": "two", "cache_control": {"type": "ephemeral"}}],
            messages=[
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                {"role": "system", "content": "reminder", "output_config": {"effort": "low"}},
            ],
            metadata={"user_id": "{\"device\":\"d\"}"},
            thinking={"type": "enabled", "budget_tokens": 2048},
            context_management={"edits": []},
            betas=["x"],
        )
    )
    assert conv.system == "one\n\ntwo"
    assert [(m.role, m.text) for m in conv.messages] == [("user", "a\n\nb"), ("system", "reminder")]
    assert conv.affinity_key == "{\"device\":\"d\"}"
    assert conv.thinking is True and conv.max_tokens == 1024


def test_decode_tool_round_trip_puts_results_before_the_rest_of_the_turn():
    conv = decode_messages_request(
        _body(
            messages=[
                {"role": "user", "content": "read it"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hidden reasoning", "signature": "s"},
                        {"type": "redacted_thinking", "data": "zzz"},
                        {"type": "text", "text": "Reading."},
                        {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "ü.txt"}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "and then?"},
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_1",
                            "is_error": True,
                            "cache_control": {"type": "ephemeral"},
                            "content": [{"type": "text", "text": "denied"}, {"type": "image", "source": {}}],
                        },
                        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
                        {"type": "document", "source": {}},
                    ],
                },
            ]
        )
    )
    assert [m.role for m in conv.messages] == ["user", "assistant", "tool", "user"]
    assistant = conv.messages[1]
    assert assistant.text == "Reading." and "hidden" not in assistant.text
    assert json.loads(assistant.tool_calls[0].arguments) == {"path": "ü.txt"}
    result = conv.messages[2]
    assert (result.tool_call_id, result.tool_name, result.text, result.is_error, result.images) == (
        "toolu_1",
        "Read",
        "denied",
        True,
        [Image()],
    )
    assert (conv.messages[3].text, conv.messages[3].images) == (
        "and then?\n\n" + DOCUMENT_PLACEHOLDER,
        [Image(media_type="image/jpeg", data="/9j/4AAQ")],
    )


def test_decode_tools_and_choices():
    tools = [
        {"name": "Read", "description": "read", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}},
        {"name": "Later", "input_schema": {"type": "object"}, "defer_loading": True},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
    ]
    conv = decode_messages_request(_body(tools=tools, tool_choice={"type": "any", "disable_parallel_tool_use": True}))
    assert [tool.name for tool in conv.tools] == ["Read", "Later"]
    assert conv.tool_choice.mode == "required" and conv.parallel_tool_calls is False
    conv = decode_messages_request(_body(tools=tools, tool_choice={"type": "tool", "name": "Later"}))
    assert (conv.tool_choice.mode, conv.tool_choice.name) == ("named", "Later")


def test_thinking_shown_only_when_asked_for():
    assert decode_messages_request(_body(thinking={"type": "adaptive"})).thinking is True
    assert decode_messages_request(_body(thinking={"type": "adaptive", "display": "omitted"})).thinking is False
    assert decode_messages_request(_body(thinking={"type": "disabled"})).thinking is False
    assert decode_messages_request(_body()).thinking is False


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}, "model"),
        (_body(max_tokens=None), "max_tokens"),
        (_body(max_tokens=0), "max_tokens"),
        (_body(max_tokens=2_000_000), "max_tokens"),
        (_body(max_tokens=10.5), "max_tokens"),
        (_body(messages=[]), "messages"),
        (_body(messages=[{"role": "tool", "content": "x"}]), "messages[0].role"),
        (_body(messages=[{"role": "user"}]), "messages[0].content"),
        (_body(messages=[{"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "n", "input": {}}]}]), "messages[0].content[0].type"),
        (_body(messages=[{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "n", "input": []}]}]), "messages[0].content[0].input"),
        (_body(messages=[{"role": "user", "content": [{"type": "tool_result"}]}]), "messages[0].content[0].tool_use_id"),
        (_body(messages=[{"role": "user", "content": [{"text": "no type"}]}]), "messages[0].content[0].type"),
        (_body(tool_choice={"type": "tool", "name": "Nope"}), "tool_choice.name"),
        (_body(tool_choice={"type": "any"}), "tool_choice"),
        (_body(tool_choice={"type": "sometimes"}), "tool_choice.type"),
        (_body(temperature=1.5), "temperature"),
        (_body(stop_sequences=[3]), "stop_sequences[0]"),
        (_body(system=[{"type": "text"}]), "system[0].text"),
    ],
)
def test_bad_input_is_a_400_naming_the_param(body, param):
    with pytest.raises(ApiError) as caught:
        decode_messages_request(body)
    assert caught.value.param == param and caught.value.status == 400


# --- encoder, judged by anthropic-python -----------------------------------------------------

EVENTS = [
    ThinkDelta("Thinking "),
    ThinkDelta("hard."),
    TextDelta("Writing the file… "),
    TextDelta("now / 现在."),
    ToolCall("call_Ab12", "Write", ARGS),
    ToolCall("toolu_keep", "Read", "{}"),
]


def test_stream_helper_accumulates_blocks_and_exact_tool_input():
    frames = run(_encoder(thinking=True), EVENTS, FINISH)
    with anthropic_client(frames).messages.stream(model="claude-x", max_tokens=10, messages=[]) as stream:
        message = stream.get_final_message()
    assert [block.type for block in message.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert message.content[0].thinking == "Thinking hard." and message.content[0].signature
    assert message.content[1].text == "Writing the file… now / 现在."
    assert (message.content[2].id, message.content[2].name, message.content[2].input) == ("toolu_Ab12", "Write", json.loads(ARGS))
    assert message.content[3].id == "toolu_keep" and message.content[3].input == {}
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (30, 12)


def test_every_event_is_a_valid_sdk_event_and_every_block_is_closed():
    payloads = sse_payloads(run(_encoder(thinking=True), EVENTS, FINISH))
    events = [STREAM_EVENT.validate_python(json.loads(data)) for _, data in payloads]
    assert [name for name, _ in payloads] == [event.type for event in events]
    kinds = [event.type for event in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    starts = [event.index for event in events if event.type == "content_block_start"]
    stops = [event.index for event in events if event.type == "content_block_stop"]
    assert starts == stops == [0, 1, 2, 3]
    start = events[0].message
    assert start.content == [] and start.usage.cache_read_input_tokens == 0
    signature_at = kinds.index("content_block_stop") - 1
    assert events[signature_at].delta.type == "signature_delta"


def test_non_stream_body_is_a_strict_message_equal_to_the_streamed_one():
    encoder = _encoder(thinking=True)
    frames = run(encoder, EVENTS, FINISH)
    body = encoder.body()
    parsed = SdkMessage.model_validate(body)
    assert body["content"][1]["citations"] is None
    assert body["usage"]["cache_creation_input_tokens"] == 0
    with anthropic_client(frames).messages.stream(model="claude-x", max_tokens=10, messages=[]) as stream:
        streamed = stream.get_final_message()
    assert streamed.model_dump(exclude_none=True) == parsed.model_dump(exclude_none=True)
    assert anthropic_client(body).messages.create(model="claude-x", max_tokens=10, messages=[]).content == parsed.content


def test_thinking_is_dropped_unless_the_request_asked_for_it():
    encoder = _encoder(thinking=False)
    run(encoder, EVENTS, FINISH)
    assert [block["type"] for block in encoder.body()["content"]] == ["text", "tool_use", "tool_use"]


@pytest.mark.parametrize(
    ("reason", "stop_reason", "stop_sequence"),
    [("stop", "end_turn", None), ("length", "max_tokens", None), ("stop_sequence", "stop_sequence", "END")],
)
def test_stop_reasons(reason, stop_reason, stop_sequence):
    encoder = _encoder()
    frames = run(encoder, [TextDelta("x")], Finish(reason=reason, stop_sequence="END"))
    with anthropic_client(frames).messages.stream(model="claude-x", max_tokens=10, messages=[]) as stream:
        message = stream.get_final_message()
    assert (message.stop_reason, message.stop_sequence) == (stop_reason, stop_sequence)
    assert encoder.body()["stop_reason"] == stop_reason


def test_mid_stream_error_event_raises_in_the_sdk():
    encoder = _encoder()
    frames = run(encoder, [TextDelta("partial")])
    frames += encoder.fail(ApiError("unavailable", "No Lingma instance is logged in."))
    assert frames[-1].startswith("event: error\n")
    assert json.loads(sse_payloads(frames)[-1][1])["error"]["type"] == "overloaded_error"
    with pytest.raises(anthropic.APIStatusError, match="logged in"):
        with anthropic_client(frames).messages.stream(model="claude-x", max_tokens=10, messages=[]) as stream:
            stream.get_final_message()


def test_keepalive_is_a_ping_the_sdk_skips():
    encoder = _encoder()
    frames = [encoder.keepalive()] + run(encoder, [TextDelta("a")], FINISH)
    assert frames[0] == 'event: ping\ndata: {"type":"ping"}\n\n'
    with anthropic_client(frames).messages.stream(model="claude-x", max_tokens=10, messages=[]) as stream:
        assert stream.get_final_message().content[0].text == "a"


def test_an_empty_reply_is_still_a_complete_message():
    encoder = _encoder()
    frames = run(encoder, [], FINISH)
    with anthropic_client(frames).messages.stream(model="claude-x", max_tokens=10, messages=[]) as stream:
        assert stream.get_final_message().content == []
    assert encoder.body()["stop_reason"] == "end_turn"
