"""OpenAI Responses: decoder, previous_response_id store, and the event stream as openai-python reads it."""

from __future__ import annotations

import json

import pydantic
import pytest
from openai.types.responses import Response, ResponseStreamEvent

from lingma_proxy.errors import ApiError
from lingma_proxy.events import Finish, Latency, TextDelta, ThinkDelta, ToolCall, Usage
from lingma_proxy.model import Image, Message
from lingma_proxy.response_store import ResponseStore
from lingma_proxy.wire.responses import ResponsesOptions, decode_responses_request
from lingma_proxy.wire.responses_encoder import ResponsesEncoder
from tests.unit.wire_sdk import openai_client, run, sse_payloads

pytestmark = pytest.mark.timeout(60)

STREAM_EVENT = pydantic.TypeAdapter(ResponseStreamEvent)
ARGS = json.dumps({"cmd": "ls -la /tmp && echo 完成", "workdir": "/srv/project"}, ensure_ascii=False)
FINISH = Finish(usage=Usage(20, 9), latency=Latency(first_token_ms=50, total_ms=2500))


def _decode(body: dict, store: ResponseStore | None = None):
    return decode_responses_request({"model": "qwen"} | body, (store if store is not None else ResponseStore()).get)


def _encoder(body: dict | None = None, store: ResponseStore | None = None, response_id: str = "resp_1") -> ResponsesEncoder:
    conv, options = _decode(body or {"input": "hi"}, store)
    return ResponsesEncoder(
        conv, response_id=response_id, model="qwen3", created=1700000000, input_tokens=20, options=options,
        on_complete=store.put if store is not None and options.store else None,
    )


# --- decoder ---------------------------------------------------------------------------------


def test_decode_items_roles_calls_and_outputs():
    conv, options = _decode(
        {
            "instructions": "be terse",
            "input": [
                {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "dev"}]},
                {"role": "user", "content": "plain"},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "look"}, {"type": "input_image", "image_url": "https://example.com/cat.png"}]},
                {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "secret"}]},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "calling"}]},
                {"type": "function_call", "call_id": "call_1", "name": "exec", "arguments": "{\"cmd\":\"ls\"}"},
                {"type": "function_call", "call_id": "call_2", "name": "exec", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "a.txt"},
                {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "b"}, {"type": "input_image"}]},
                {"type": "some_future_item", "x": 1},
            ],
            "prompt_cache_key": "thread-1",
            "store": False,
            "include": ["reasoning.encrypted_content"],
            "reasoning": {"summary": "auto"},
            "client_metadata": {"a": "b"},
        }
    )
    assert conv.system == "be terse"
    assert [m.role for m in conv.messages] == ["system", "user", "user", "assistant", "tool", "tool"]
    assert conv.messages[2].images == [Image(url="https://example.com/cat.png")]
    assistant = conv.messages[3]
    assert assistant.text == "calling" and [c.id for c in assistant.tool_calls] == ["call_1", "call_2"]
    assert (conv.messages[4].tool_name, conv.messages[4].text) == ("exec", "a.txt")
    assert (conv.messages[5].text, conv.messages[5].images) == ("b", [Image()])  # a file_id image: no bytes
    assert "secret" not in json.dumps([m.text for m in conv.messages])
    assert conv.affinity_key == "thread-1"
    assert options.store is False and options.reasoning == {"summary": "auto"}


def test_decode_tools_ignores_unknown_types_and_reports_them():
    conv, options = _decode(
        {
            "input": "hi",
            "tools": [
                {"type": "function", "name": "exec", "description": "run", "parameters": {"type": "object"}, "strict": False},
                {"type": "namespace", "name": "multi", "tools": []},
                {"type": "web_search"},
            ],
            "tool_choice": {"type": "function", "name": "exec"},
        }
    )
    assert [tool.name for tool in conv.tools] == ["exec"]
    assert options.ignored_tool_types == ["namespace", "web_search"]
    assert options.tools[0]["strict"] is False
    assert conv.tool_choice.name == "exec"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": None, "input": "hi"}, "model"),
        ({}, "input"),
        ({"input": []}, "input"),
        ({"input": 5}, "input"),
        ({"input": [{"type": "message", "role": "robot", "content": "x"}]}, "input[0].role"),
        ({"input": [{"type": "function_call", "name": "x", "arguments": "{}"}]}, "input[0].call_id"),
        ({"input": [{"type": "function_call_output", "call_id": "c", "output": 3}]}, "input[0].output"),
        ({"input": "hi", "tool_choice": {"type": "function", "name": "nope"}}, "tool_choice"),
        ({"input": "hi", "tool_choice": {"type": "web_search_preview"}}, "tool_choice.type"),
        ({"input": "hi", "max_output_tokens": -1}, "max_output_tokens"),
        ({"input": "hi", "store": "no"}, "store"),
        ({"input": "hi", "tools": [{"type": "function"}]}, "tools[0].name"),
    ],
)
def test_bad_input_is_a_400_naming_the_param(body, param):
    with pytest.raises(ApiError) as caught:
        _decode(body)
    assert caught.value.param == param and caught.value.status == 400


def test_unknown_previous_response_is_a_400_with_its_code():
    with pytest.raises(ApiError) as caught:
        _decode({"input": "hi", "previous_response_id": "resp_missing"})
    assert (caught.value.param, caught.value.code) == ("previous_response_id", "previous_response_not_found")


def test_previous_response_id_continues_the_stored_conversation():
    store = ResponseStore()
    first = _encoder({"input": "list files", "instructions": "sys"}, store, response_id="resp_first")
    run(first, [TextDelta("Sure."), ToolCall("call_9", "exec", ARGS)], FINISH)
    conv, options = _decode(
        {"previous_response_id": "resp_first", "input": [{"type": "function_call_output", "call_id": "call_9", "output": "a"}]},
        store,
    )
    assert [m.role for m in conv.messages] == ["user", "assistant", "tool"]
    assert conv.messages[1].text == "Sure." and conv.messages[1].tool_calls[0].arguments == ARGS
    assert conv.messages[2].tool_name == "exec"
    assert conv.system == ""  # instructions are not carried over, as OpenAI documents
    assert options.previous_response_id == "resp_first"


def test_store_false_keeps_nothing_and_the_store_is_bounded():
    store = ResponseStore(max_entries=2)
    run(_encoder({"input": "a", "store": False}, store, "resp_a"), [TextDelta("x")], FINISH)
    assert len(store) == 0
    for name in ("resp_1", "resp_2", "resp_3"):
        store.put(name, [Message(role="user", text=name)])
    assert store.get("resp_1") is None and store.get("resp_3")[0].text == "resp_3"


def test_stored_history_is_not_altered_by_a_follow_up():
    store = ResponseStore()
    store.put("resp_x", [Message(role="assistant", text="hi")])
    _decode({"previous_response_id": "resp_x", "input": [{"type": "function_call", "call_id": "c", "name": "n", "arguments": "{}"}]}, store)
    assert store.get("resp_x")[0].tool_calls == []


# --- encoder, judged by openai-python --------------------------------------------------------

EVENTS = [ThinkDelta("plan "), ThinkDelta("more"), TextDelta("Running ✓ "), TextDelta("it."), ToolCall("call_7", "exec", ARGS)]


def test_every_event_is_a_valid_sdk_event_in_the_documented_order():
    payloads = sse_payloads(run(_encoder(), EVENTS, FINISH))
    events = [STREAM_EVENT.validate_python(json.loads(data)) for _, data in payloads]
    assert [name for name, _ in payloads] == [event.type for event in events]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    text_item = kinds.index("response.content_part.added")
    assert kinds[text_item - 1] == "response.output_item.added"
    assert kinds[text_item + 1 : text_item + 6] == [
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    call_start = kinds.index("response.function_call_arguments.delta") - 1
    assert kinds[call_start] == "response.output_item.added"
    assert kinds[-3:-1] == ["response.function_call_arguments.done", "response.output_item.done"]


def test_stream_helper_returns_the_final_response_with_exact_call():
    frames = run(_encoder(), EVENTS, FINISH)
    with openai_client(frames).responses.stream(model="qwen", input="hi") as stream:
        response = stream.get_final_response()
    assert response.status == "completed"
    assert [item.type for item in response.output] == ["reasoning", "message", "function_call"]
    assert response.output[0].summary[0].text == "plan more"
    assert response.output_text == "Running ✓ it."
    call = response.output[2]
    assert (call.call_id, call.name, call.arguments, call.status) == ("call_7", "exec", ARGS, "completed")
    assert call.id.startswith("fc_") and response.output[1].id.startswith("msg_") and response.output[0].id.startswith("rs_")
    assert response.usage.input_tokens == 20 and response.usage.output_tokens == 9 and response.usage.total_tokens == 29


def test_body_is_the_completed_response_and_matches_the_stream():
    encoder = _encoder({"input": "hi", "instructions": "sys", "max_output_tokens": 100, "store": False})
    frames = run(encoder, EVENTS, FINISH)
    body = encoder.body()
    response = Response.model_validate(body)
    assert (response.object, response.status, response.instructions, response.max_output_tokens) == ("response", "completed", "sys", 100)
    assert response.store is False and response.error is None and response.truncation == "disabled"
    assert body["usage"]["input_tokens_details"]["cached_tokens"] == 0
    final_event = json.loads(sse_payloads(frames)[-1][1])
    assert final_event["response"] == body


def test_length_ends_with_completed_event_and_incomplete_status():
    encoder = _encoder()
    frames = run(encoder, [TextDelta("cut")], Finish(reason="length"))
    final = json.loads(sse_payloads(frames)[-1][1])
    assert final["type"] == "response.completed"
    response = Response.model_validate(final["response"])
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"


def test_fail_sends_response_failed_with_an_error():
    encoder = _encoder()
    frames = run(encoder, [TextDelta("partial")])
    frames += encoder.fail(ApiError("rate_limit", "Lingma quota exhausted.", retry_after=30))
    name, data = sse_payloads(frames)[-1]
    event = STREAM_EVENT.validate_python(json.loads(data))
    assert name == event.type == "response.failed"
    assert event.response.status == "failed"
    assert event.response.error.code == "rate_limit_exceeded"
    assert "try again in 30s" in event.response.error.message


def test_keepalive_is_a_comment():
    assert _encoder().keepalive() == ": keep-alive\n\n"


def test_tool_choice_and_tools_are_echoed():
    encoder = _encoder(
        {"input": "x", "tools": [{"type": "function", "name": "exec", "parameters": {}}], "tool_choice": "required"}
    )
    run(encoder, [ToolCall("call_1", "exec", "{}")], FINISH)
    response = Response.model_validate(encoder.body())
    assert response.tool_choice == "required" and response.tools[0].name == "exec"


def test_options_default_to_stored_text_responses():
    options = ResponsesOptions()
    assert options.store is True and options.text == {"format": {"type": "text"}}


@pytest.mark.parametrize(
    "text_format",
    [
        {"type": "json_schema", "name": "", "schema": {}, "strict": False},
        {"type": "json_schema", "name": "point", "schema": {"type": "object", "properties": {"x": {"type": "number"}}}},
    ],
)
def test_json_schema_format_is_echoed_as_sent(text_format):
    encoder = _encoder({"input": "x", "text": {"format": text_format}})
    run(encoder, [TextDelta("{}")], FINISH)
    body = encoder.body()
    assert body["text"]["format"]["schema"] == text_format["schema"]
    assert body["text"]["format"]["name"] == text_format["name"]
    Response.model_validate(body)
