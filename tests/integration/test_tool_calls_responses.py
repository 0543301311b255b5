"""Tool-call emulation end to end on /v1/responses: the official openai SDK against the real server
and the simulator's tools_calls.yaml scenario (docs/features.md §6)."""

from __future__ import annotations

import json

import openai
import pytest
from openai.types.responses import Response

from harness.proxy import Proxy

from .conftest import scenario_proxy
from .tool_calls_support import (
    DEVIATION_IDS,
    DEVIATIONS,
    FALLBACK_HEAD,
    ONE_INSTANCE,
    PARALLEL,
    REPAIRED_GET_TIME,
    REPAIRED_REQUIRED,
    ROUNDTRIP_ANSWER,
    ROUNDTRIP_CALL,
    ROUNDTRIP_RESULT,
    TEXT_FIRST,
    UNKNOWN_TOOL_TEXT,
    Expected,
    SimWatch,
    assert_no_leak,
    assert_one_repair,
    responses_tools,
)

pytestmark = pytest.mark.timeout(60)

STREAM_MODES = pytest.mark.parametrize("stream", [True, False], ids=["stream", "non_stream"])


tools_proxy = scenario_proxy("tools_calls", ONE_INSTANCE, per="sim_dialect")


@pytest.fixture(scope="module")
def client(tools_proxy: Proxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{tools_proxy.url}/v1", api_key="unused", max_retries=0, timeout=30)


def complete(
    client: openai.OpenAI, stream: bool, input: str | list, tools: list[dict] | None = None, **kwargs
) -> tuple[Response, list[str]]:
    """The response, and every output_text delta the stream carried (none without streaming)."""
    request = {"model": "auto", "input": input, "tools": tools or responses_tools(), **kwargs}
    if not stream:
        return client.responses.create(**request), []
    deltas = []
    with client.responses.stream(**request) as events:
        for event in events:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        return events.get_final_response(), deltas


def function_calls(response: Response) -> list:
    return [item for item in response.output if item.type == "function_call"]


def calls_of(response: Response) -> list[tuple[str, dict]]:
    return [(item.name, json.loads(item.arguments)) for item in function_calls(response)]


@STREAM_MODES
@pytest.mark.parametrize("expected", DEVIATIONS, ids=DEVIATION_IDS)
def test_each_tolerated_shape_becomes_the_exact_function_call_item(client, expected: Expected, stream):
    response, deltas = complete(client, stream, expected.phrase)
    assert response.status == "completed"
    assert calls_of(response) == [(expected.name, expected.arguments)]
    [item] = function_calls(response)
    assert item.call_id.startswith("call_") and item.id and item.status == "completed"
    assert response.output_text == expected.text
    assert_no_leak(*deltas, response.output_text)


@pytest.mark.parametrize("expected", TEXT_FIRST, ids=[e.phrase for e in TEXT_FIRST])
def test_text_before_the_block_streams_in_several_deltas_before_the_function_call(client, expected: Expected):
    events = list(client.responses.create(model="auto", input=expected.phrase, tools=responses_tools(), stream=True))
    added = next(
        i for i, e in enumerate(events) if e.type == "response.output_item.added" and e.item.type == "function_call"
    )
    texts = [e.delta for e in events if e.type == "response.output_text.delta"]
    before = [e.delta for e in events[:added] if e.type == "response.output_text.delta"]
    assert len(before) >= 2
    assert expected.text.startswith("".join(before))
    item_id = events[added].item.id
    assert events[added].item.name == expected.name
    fragments = [e.delta for e in events if e.type == "response.function_call_arguments.delta" and e.item_id == item_id]
    assert json.loads("".join(fragments)) == expected.arguments
    [done] = [e for e in events if e.type == "response.output_item.done" and e.item.id == item_id]
    assert done.item.call_id == events[added].item.call_id and json.loads(done.item.arguments) == expected.arguments
    assert events[-1].type == "response.completed"
    assert_no_leak(*texts)


@STREAM_MODES
def test_two_blocks_become_two_function_call_items_with_distinct_call_ids_in_order(client, stream):
    call_ids = []
    for _ in range(2):
        response, deltas = complete(client, stream, "TC-PARALLEL")
        assert calls_of(response) == PARALLEL
        assert_no_leak(*deltas, response.output_text)
        call_ids += [item.call_id for item in function_calls(response)]
    assert len(set(call_ids)) == 4


@STREAM_MODES
def test_parallel_tool_calls_false_keeps_only_the_first_function_call(client, stream):
    response, deltas = complete(client, stream, "TC-PARALLEL", parallel_tool_calls=False)
    assert calls_of(response) == PARALLEL[:1]
    assert_no_leak(*deltas, response.output_text)


@STREAM_MODES
def test_an_undeclared_tool_name_is_not_a_function_call_and_does_not_leak(client, stream):
    response, deltas = complete(client, stream, "TC-UNKNOWN-TOOL")
    assert response.status == "completed"
    assert function_calls(response) == []
    assert response.output_text == UNKNOWN_TOOL_TEXT
    assert_no_leak(*deltas, response.output_text)


@STREAM_MODES
def test_round_trip_function_call_then_output_then_final_answer(client, tools_proxy, stream):
    question = {"type": "message", "role": "user", "content": "TC-ROUNDTRIP: what is the weather in Lisbon?"}
    first, _ = complete(client, stream, [question], store=False)
    assert calls_of(first) == [("get_weather", ROUNDTRIP_CALL)]
    [call] = function_calls(first)
    echoed = {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments}
    result = {"type": "function_call_output", "call_id": call.call_id, "output": ROUNDTRIP_RESULT}
    watch = SimWatch(tools_proxy)
    second, _ = complete(client, stream, [question, echoed, result], store=False)
    assert second.status == "completed"
    assert function_calls(second) == []
    assert second.output_text == ROUNDTRIP_ANSWER
    [asked] = watch.questions()
    assert ROUNDTRIP_RESULT in asked


@STREAM_MODES
@pytest.mark.parametrize(
    ("phrase", "choice", "repaired"),
    [
        ("TC-FORCED-PROSE", "required", REPAIRED_REQUIRED),
        ("TC-FORCED-PROSE", {"type": "function", "name": "get_time"}, REPAIRED_GET_TIME),
        ("TC-FORCED-INVALID", {"type": "function", "name": "get_weather"}, REPAIRED_REQUIRED),
    ],
    ids=["required_prose", "named_prose", "named_invalid_arguments"],
)
def test_forced_choice_repairs_once_in_the_same_session_then_yields_the_function_call(
    client, tools_proxy, phrase, choice, repaired, stream
):
    watch = SimWatch(tools_proxy)
    response, deltas = complete(client, stream, phrase, tool_choice=choice)
    assert calls_of(response) == [repaired]
    assert_no_leak(*deltas, response.output_text)
    assert_one_repair(watch, phrase)


@STREAM_MODES
def test_forced_choice_whose_repair_fails_too_answers_with_a_clear_text(client, tools_proxy, stream):
    watch = SimWatch(tools_proxy)
    response, deltas = complete(
        client, stream, "TC-FORCED-PROSE", tools=responses_tools("never_works"), tool_choice="required"
    )
    assert response.status == "completed"
    assert function_calls(response) == []
    assert response.output_text.split("\n\n")[-1].startswith(FALLBACK_HEAD)
    assert_no_leak(*deltas, response.output_text)
    assert_one_repair(watch, "TC-FORCED-PROSE")


@STREAM_MODES
def test_tool_choice_naming_an_undeclared_tool_is_a_400(client, stream):
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(
            model="auto",
            input="TC-WELL-FORMED",
            tools=responses_tools(),
            tool_choice={"type": "function", "name": "launch_rockets"},
            stream=stream,
        )
    error = raised.value.body
    assert raised.value.status_code == 400
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "tool_choice"
    assert "launch_rockets" in error["message"]
