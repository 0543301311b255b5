"""Ollama /api/chat and /api/generate: the decoder's contract, and the encoder as the ollama client reads it."""

from __future__ import annotations

import json

import ollama
import pytest

from lingma_proxy.errors import ApiError
from lingma_proxy.events import Finish, Latency, TextDelta, ThinkDelta, ToolCall, Usage
from lingma_proxy.model import Conversation, Message
from lingma_proxy.wire.fields import json_output_instruction
from lingma_proxy.wire.ollama import decode_chat_request, decode_generate_request, model_names
from lingma_proxy.wire.ollama_encoder import OllamaChatEncoder, OllamaGenerateEncoder

pytestmark = pytest.mark.timeout(60)

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
JPEG = "/9j/4AAQSkZJRg=="
FINISH = Finish(usage=Usage(12, 7), latency=Latency(first_token_ms=40, total_ms=100))


def _chat(**overrides) -> dict:
    return {"model": "qwen3-coder:latest", "messages": [{"role": "user", "content": "hi"}]} | overrides


def _reject(decode, body: dict) -> str:
    with pytest.raises(ApiError) as caught:
        decode(body)
    assert caught.value.status == 400
    return caught.value.message


@pytest.mark.parametrize(
    ("requested", "names"),
    [
        ("qwen3-coder:latest", ["qwen3-coder:latest", "qwen3-coder"]),
        ("auto", ["auto"]),
        ("localhost:5000/library/qwen", ["localhost:5000/library/qwen"]),  # a port, not a tag
        ("localhost:5000/library/qwen:7b", ["localhost:5000/library/qwen:7b", "localhost:5000/library/qwen"]),
    ],
)
def test_model_names_drop_the_tag_only(requested, names):
    assert model_names(requested) == names


def test_chat_defaults_stream_on_and_keeps_the_name_as_sent():
    conv = decode_chat_request(_chat())
    assert conv.stream is True and conv.model == "qwen3-coder:latest"
    assert conv.max_tokens is None and conv.stop == [] and conv.thinking is False


def test_tool_results_link_by_id_then_name_then_order():
    calls = [
        {"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}},
        {"id": "call_given", "function": {"name": "get_time", "arguments": {"tz": "UTC"}}},
        {"function": {"name": "get_weather", "arguments": {"city": "Rome"}}},
    ]
    messages = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": "", "tool_calls": calls},
        {"role": "tool", "content": "12:00", "tool_call_id": "call_given"},
        {"role": "tool", "content": "rainy", "tool_name": "get_weather"},
        {"role": "tool", "content": "sunny"},
    ]
    conv = decode_chat_request(_chat(messages=messages))
    assistant = conv.messages[1]
    assert [call.id for call in assistant.tool_calls] == ["call_1_0", "call_given", "call_1_2"]
    assert json.loads(assistant.tool_calls[0].arguments) == {"city": "Oslo"}
    results = [(m.tool_call_id, m.tool_name, m.text) for m in conv.messages[2:]]
    assert results == [("call_given", "get_time", "12:00"), ("call_1_0", "get_weather", "rainy"),
                       ("call_1_2", "get_weather", "sunny")]


def test_a_tool_result_without_its_call_keeps_its_name():
    messages = [{"role": "user", "content": "go"}, {"role": "tool", "content": "x", "tool_name": "search"}]
    [_, result] = decode_chat_request(_chat(messages=messages)).messages
    assert (result.tool_call_id, result.tool_name) == (None, "search")


def test_images_get_their_media_type_from_the_bytes():
    messages = [{"role": "user", "content": "look", "images": [PNG, JPEG, f"data:image/webp;base64,{PNG}"]}]
    [message] = decode_chat_request(_chat(messages=messages)).messages
    assert [image.media_type for image in message.images] == ["image/png", "image/jpeg", "image/webp"]
    assert message.images[0].data == PNG


def test_options_think_and_format_are_applied():
    body = _chat(options={"num_predict": 5, "stop": ["END"], "num_ctx": 4096, "temperature": 0.2}, think="high",
                 format="json", tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}])
    conv = decode_chat_request(body)
    assert (conv.max_tokens, conv.stop, conv.thinking) == (5, ["END"], True)
    assert "JSON" in conv.system
    assert [tool.name for tool in conv.tools] == ["f"]


@pytest.mark.parametrize("num_predict", [-1, -2, 0])
def test_num_predict_without_a_positive_limit_means_no_limit(num_predict):
    assert decode_chat_request(_chat(options={"num_predict": num_predict})).max_tokens is None


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (_chat(messages=[]), "messages"),
        (_chat(messages=[{"role": "developer", "content": "x"}]), "developer"),
        (_chat(messages=[{"role": "user", "content": 3}]), "messages[0].content"),
        (_chat(messages=[{"role": "user", "content": "x", "images": ["%%%"]}]), "messages[0].images[0]"),
        (_chat(messages=[{"role": "user", "content": "x", "images": [""]}]), "messages[0].images[0]"),
        (_chat(think=1), "think"),
        (_chat(format=["json"]), "format"),
        (_chat(options={"num_predict": "many"}), "options.num_predict"),
        (_chat(options={"stop": [1]}), "options.stop[0]"),
        (_chat(model=""), "model"),
    ],
)
def test_bad_chat_input_is_a_400_naming_the_field(body, fragment):
    assert fragment in _reject(decode_chat_request, body)


def test_generate_takes_prompt_system_and_images():
    conv = decode_generate_request({"model": "auto", "prompt": "Why?", "system": "Be brief.", "images": [PNG]})
    [message] = conv.messages
    assert (message.role, message.text, len(message.images)) == ("user", "Why?", 1)
    assert conv.system == "Be brief." and conv.tools == [] and conv.tool_choice.mode == "none"


def test_generate_raw_drops_the_system_prompt_but_keeps_the_format():
    conv = decode_generate_request({"model": "auto", "prompt": "p", "system": "s", "raw": True, "format": "json"})
    assert conv.system == json_output_instruction(None)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"model": "auto", "prompt": "def f():", "suffix": "return 1"}, "suffix"),
        ({"model": "auto", "prompt": ""}, "prompt"),
        ({"model": "auto", "prompt": "p", "raw": "yes"}, "raw"),
    ],
)
def test_bad_generate_input_is_a_400(body, fragment):
    assert fragment in _reject(decode_generate_request, body)


# ---- encoder ---------------------------------------------------------------------------------


def _encoder(encoder_class=OllamaChatEncoder, thinking: bool = False):
    conv = Conversation(model="auto", messages=[Message(role="user", text="hi")], thinking=thinking)
    return encoder_class(
        conv, response_id="ollama-1", model="auto", created=1700000000, input_tokens=11, name="auto:latest"
    )


def _feed_all(encoder, events) -> list[str]:
    lines = encoder.start()
    for event in events:
        lines += encoder.feed(event)
    return lines + encoder.finish(FINISH)


def test_chat_stream_lines_parse_as_the_client_reads_them_and_match_the_body():
    encoder = _encoder(thinking=True)
    call = ToolCall(id="call_1", name="get_weather", arguments='{"city": "Oslo"}')
    lines = _feed_all(encoder, [ThinkDelta("hmm"), TextDelta("Hel"), TextDelta("lo"), call])
    assert all(line.endswith("\n") and line.count("\n") == 1 for line in lines)
    parts = [ollama.ChatResponse.model_validate_json(line) for line in lines]
    assert [part.done for part in parts] == [False] * 4 + [True]
    assert "".join(part.message.content for part in parts) == "Hello"
    assert parts[0].message.thinking == "hmm"
    assert parts[3].message.tool_calls[0].function.arguments == {"city": "Oslo"}
    final = parts[-1]
    assert (final.done_reason, final.prompt_eval_count, final.eval_count) == ("stop", 12, 7)
    assert (final.total_duration, final.prompt_eval_duration, final.eval_duration) == (100_000_000, 40_000_000,
                                                                                        60_000_000)
    body = ollama.ChatResponse.model_validate(encoder.body())
    assert (body.message.content, body.message.thinking, body.model) == ("Hello", "hmm", "auto:latest")
    assert body.message.tool_calls[0].function.name == "get_weather"
    assert body.eval_count == final.eval_count


def test_reasoning_is_left_out_unless_asked_for():
    encoder = _encoder()
    assert encoder.feed(ThinkDelta("secret")) == []
    encoder.finish(FINISH)
    assert "thinking" not in encoder.body()["message"]


def test_generate_lines_carry_response_and_length_is_the_reason_for_a_cut():
    encoder = _encoder(OllamaGenerateEncoder)
    lines = encoder.feed(TextDelta("abc")) + encoder.finish(Finish(reason="length", usage=Usage(1, 3)))
    parts = [ollama.GenerateResponse.model_validate_json(line) for line in lines]
    assert parts[0].response == "abc" and parts[-1].done_reason == "length"
    assert encoder.body()["response"] == "abc"


def test_a_failure_is_a_last_line_with_only_the_error():
    encoder = _encoder()
    encoder.feed(TextDelta("partial"))
    [line] = encoder.fail(ApiError("rate_limit", "Quota exhausted."))
    assert json.loads(line) == {"error": "Quota exhausted."}


def test_the_keepalive_is_a_valid_empty_piece():
    piece = ollama.ChatResponse.model_validate_json(_encoder().keepalive())
    assert piece.done is False and piece.message.content == ""
