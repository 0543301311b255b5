"""OpenAI chat completions: the decoder's contract, and the encoder as openai-python reads it."""

from __future__ import annotations

import json

import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from lingma_proxy.errors import ApiError
from lingma_proxy.events import Finish, Latency, TextDelta, ThinkDelta, ToolCall, Usage
from lingma_proxy.model import Conversation, Image, Message
from lingma_proxy.wire.openai_chat import decode_chat_request
from lingma_proxy.wire.openai_chat_encoder import ChatCompletionsEncoder
from tests.unit.wire_sdk import openai_client, run, sse_payloads

pytestmark = pytest.mark.timeout(60)

LONG_ARGS = json.dumps({"file_path": "/tmp/说明.txt", "content": "héllo wörld\n" * 30}, ensure_ascii=False)


def _body(**overrides) -> dict:
    return {"model": "qwen", "messages": [{"role": "user", "content": "hi"}]} | overrides


def _reject(body: dict) -> ApiError:
    with pytest.raises(ApiError) as caught:
        decode_chat_request(body)
    assert caught.value.status == 400
    return caught.value


def _encoder(include_usage: bool = True) -> ChatCompletionsEncoder:
    conv = Conversation(model="qwen", messages=[Message(role="user", text="hi")])
    return ChatCompletionsEncoder(
        conv, response_id="chatcmpl-test", model="qwen3-coder", created=1700000000, input_tokens=11, include_usage=include_usage
    )


FINISH = Finish(usage=Usage(11, 7), served_by="acct/0", latency=Latency(first_token_ms=120, total_ms=900))


# --- decoder ---------------------------------------------------------------------------------


def test_decode_maps_every_role_and_links_tool_results_to_their_call():
    conv, options = decode_chat_request(
        _body(
            messages=[
                {"role": "developer", "content": "be brief"},
                {"role": "system", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                {"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}}]},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "Read", "arguments": "{\"p\":1}"}}],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "file text"},
                {"role": "assistant", "content": "ok", "function_call": {"name": "Grep", "arguments": "{}"}},
                {"role": "function", "name": "Grep", "content": "no match"},
            ],
            stream_options={"include_usage": True},
            user="alice",
        )
    )
    roles = [message.role for message in conv.messages]
    assert roles == ["system", "system", "user", "assistant", "tool", "assistant", "tool"]
    assert conv.messages[0].text == "be brief"
    assert conv.messages[1].text == "a\n\nb"
    assert (conv.messages[2].text, conv.messages[2].images) == ("look", [Image(media_type="image/png", data="iVBORw0K")])
    call = conv.messages[3].tool_calls[0]
    assert (call.id, call.name, call.arguments) == ("call_1", "Read", "{\"p\":1}")
    assert (conv.messages[4].tool_call_id, conv.messages[4].tool_name, conv.messages[4].text) == ("call_1", "Read", "file text")
    legacy = conv.messages[5].tool_calls[0]
    assert conv.messages[6].tool_call_id == legacy.id and conv.messages[6].tool_name == "Grep"
    assert options.include_usage is True
    assert conv.affinity_key == "alice"


def test_decode_reads_tools_choice_and_limits():
    tools = [
        {"type": "function", "function": {"name": "Read", "description": "read a file", "parameters": {"type": "object"}}},
        {"type": "custom", "custom": {"name": "patch"}},
    ]
    conv, _ = decode_chat_request(
        _body(
            tools=tools,
            tool_choice={"type": "function", "function": {"name": "Read"}},
            parallel_tool_calls=False,
            max_tokens=50,
            max_completion_tokens=40,
            stop="END",
            temperature=0,
            stream=True,
            top_p=0.5,
            some_future_field={"x": 1},
        )
    )
    assert [(tool.name, tool.description, tool.parameters) for tool in conv.tools] == [
        ("Read", "read a file", {"type": "object"})
    ]
    assert (conv.tool_choice.mode, conv.tool_choice.name) == ("named", "Read")
    assert conv.parallel_tool_calls is False
    assert conv.max_tokens == 40
    assert conv.stop == ["END"]
    assert conv.temperature == 0.0
    assert conv.stream is True


def test_empty_model_is_accepted_for_the_default_model():
    conv, _ = decode_chat_request(_body(model=""))
    assert conv.model == ""


def test_json_mode_adds_an_instruction_to_the_system_prompt():
    conv, _ = decode_chat_request(_body(response_format={"type": "json_object"}))
    assert "JSON" in conv.system
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    conv, _ = decode_chat_request(_body(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}))
    assert '"properties"' in conv.system


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
        (_body(model=3), "model"),
        ({"model": "m"}, "messages"),
        (_body(messages=[]), "messages"),
        (_body(messages="hi"), "messages"),
        (_body(messages=[{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}]), "messages[1].role"),
        (_body(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
        (_body(messages=[{"role": "user"}]), "messages[0].content"),
        (_body(messages=[{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "input_audio"}]}]), "messages[0].content[1].type"),
        (_body(messages=[{"role": "user", "content": [{"type": "file", "file": {}}]}]), "messages[0].content[0].type"),
        (_body(messages=[{"role": "tool", "content": "x"}]), "messages[0].tool_call_id"),
        (_body(messages=[{"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "a"}}]}]), "messages[0].tool_calls[0].id"),
        (_body(tool_choice={"type": "function", "function": {"name": "Nope"}}), "tool_choice"),
        (_body(tool_choice="required"), "tool_choice"),
        (_body(tool_choice="sometimes"), "tool_choice"),
        (_body(n=2), "n"),
        (_body(max_tokens=0), "max_tokens"),
        (_body(max_tokens=True), "max_tokens"),
        (_body(max_completion_tokens="5"), "max_completion_tokens"),
        (_body(max_tokens="5", max_completion_tokens=5), "max_tokens"),
        (_body(stop=["a", "b", "c", "d", "e"]), "stop"),
        (_body(stop=[1]), "stop[0]"),
        (_body(temperature=2.5), "temperature"),
        (_body(temperature=True), "temperature"),
        (_body(stream="yes"), "stream"),
        (_body(stream_options={"include_usage": 1}), "stream_options.include_usage"),
        (_body(tools=[{"type": "function", "function": {"description": "no name"}}]), "tools[0].function.name"),
        (_body(response_format={"type": "yaml"}), "response_format.type"),
    ],
)
def test_bad_input_is_a_400_naming_the_param(body, param):
    assert _reject(body).param == param


def test_a_non_object_body_is_a_400():
    for body in (None, [], "text", 3):
        _reject(body)


# --- encoder, judged by openai-python --------------------------------------------------------

EVENTS = [
    ThinkDelta("Let me think."),
    TextDelta("Hello, "),
    TextDelta("wörld 你好 / done"),
    ToolCall("call_aaa", "Write", LONG_ARGS),
    ToolCall("call_bbb", "Read", "{}"),
]


def test_stream_helper_accumulates_text_and_exact_tool_calls():
    frames = run(_encoder(), EVENTS, FINISH)
    client = openai_client(frames)
    with client.chat.completions.stream(model="qwen", messages=[{"role": "user", "content": "hi"}]) as stream:
        completion = stream.get_final_completion()
    choice = completion.choices[0]
    assert choice.message.content == "Hello, wörld 你好 / done"
    assert [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls] == [
        ("call_aaa", "Write", LONG_ARGS),
        ("call_bbb", "Read", "{}"),
    ]
    assert choice.finish_reason == "tool_calls"
    assert completion.usage.prompt_tokens == 11 and completion.usage.completion_tokens == 7
    assert completion.usage.total_tokens == 18


def test_stream_chunks_follow_the_client_rules():
    frames = run(_encoder(), EVENTS, FINISH)
    payloads = sse_payloads(frames)
    assert payloads[-1] == (None, "[DONE]")
    chunks = [ChatCompletionChunk.model_validate(json.loads(data)) for _, data in payloads[:-1]]
    first = chunks[0].choices[0].delta
    assert (first.role, first.content) == ("assistant", "")
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    tool_deltas = [call for chunk in chunks if chunk.choices for call in (chunk.choices[0].delta.tool_calls or [])]
    assert all(call.index in (0, 1) for call in tool_deltas)
    # id, type and name appear once per call; fragments carry arguments only.
    assert [call.id for call in tool_deltas if call.id] == ["call_aaa", "call_bbb"]
    assert len([call for call in tool_deltas if call.index == 0]) > 2
    assert chunks[1].choices[0].delta.model_extra["reasoning_content"] == "Let me think."
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == [] and usage_chunk.usage.total_tokens == 18
    final = json.loads(payloads[-2][1])
    assert final["served_by"] == "acct/0" and final["latency"] == {"first_token_ms": 120, "total_ms": 900}


def test_without_include_usage_there_is_no_usage_chunk():
    payloads = sse_payloads(run(_encoder(include_usage=False), [TextDelta("x")], FINISH))
    last_chunk = json.loads(payloads[-2][1])
    assert last_chunk["choices"][0]["finish_reason"] == "stop"
    assert "usage" not in last_chunk


def test_non_stream_body_is_a_strict_completion_that_matches_the_stream():
    encoder = _encoder()
    frames = run(encoder, EVENTS, FINISH)
    body = encoder.body()
    completion = ChatCompletion.model_validate(body)
    message = completion.choices[0].message
    assert message.refusal is None and body["choices"][0]["message"]["refusal"] is None
    assert body["choices"][0]["message"]["reasoning_content"] == "Let me think."
    assert body["served_by"] == "acct/0" and body["latency"]["total_ms"] == 900
    sdk_view = openai_client(body).chat.completions.create(model="qwen", messages=[{"role": "user", "content": "hi"}])
    with openai_client(frames).chat.completions.stream(model="qwen", messages=[]) as stream:
        streamed = stream.get_final_completion()
    assert sdk_view.choices[0].message.content == streamed.choices[0].message.content
    assert [c.model_dump() for c in sdk_view.choices[0].message.tool_calls] == [
        {"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}
        for c in streamed.choices[0].message.tool_calls
    ]
    assert sdk_view.choices[0].finish_reason == streamed.choices[0].finish_reason == "tool_calls"


def test_content_is_null_when_the_reply_is_only_tool_calls():
    encoder = _encoder()
    run(encoder, [ToolCall("call_x", "Read", "{\"a\":1}")], FINISH)
    assert encoder.body()["choices"][0]["message"]["content"] is None


@pytest.mark.parametrize(("reason", "expected"), [("length", "length"), ("stop_sequence", "stop"), ("stop", "stop")])
def test_finish_reasons(reason, expected):
    encoder = _encoder()
    run(encoder, [TextDelta("x")], Finish(reason=reason, stop_sequence="END"))
    assert encoder.body()["choices"][0]["finish_reason"] == expected


def test_mid_stream_error_raises_in_the_sdk_and_ends_without_done():
    encoder = _encoder()
    frames = run(encoder, [TextDelta("partial")])
    frames += encoder.fail(ApiError("upstream", "Lingma went away", code="upstream_error"))
    assert "[DONE]" not in "".join(frames)
    client = openai_client(frames)
    with pytest.raises(openai.APIError, match="Lingma went away"):
        for _ in client.chat.completions.create(model="qwen", messages=[], stream=True):
            pass


def test_keepalive_is_an_sse_comment_the_sdk_skips():
    encoder = _encoder()
    frames = [encoder.keepalive()] + run(encoder, [TextDelta("a")], FINISH)
    assert frames[0] == ": keep-alive\n\n"
    chunks = list(openai_client(frames).chat.completions.create(model="qwen", messages=[], stream=True))
    assert chunks[1].choices[0].delta.content == "a"


def test_feed_without_start_still_opens_with_the_role_chunk():
    encoder = _encoder()
    frames = encoder.feed(TextDelta("a"))
    assert len(frames) == 2 and '"role":"assistant"' in frames[0]
    assert encoder.start() == []


def test_the_encoder_refuses_events_after_the_end():
    encoder = _encoder()
    run(encoder, [], FINISH)
    with pytest.raises(RuntimeError):
        encoder.feed(TextDelta("late"))
    with pytest.raises(RuntimeError):
        _encoder().body()
