"""Tool-call emulation end to end on /v1/chat/completions: the official openai SDK against the real
server and the simulator's tools_calls.yaml scenario (docs/features.md §6)."""

from __future__ import annotations

import json

import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionMessage

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
    openai_tools,
)

pytestmark = pytest.mark.timeout(60)

STREAM_MODES = pytest.mark.parametrize("stream", [True, False], ids=["stream", "non_stream"])
NAMED_GET_TIME = {"type": "function", "function": {"name": "get_time"}}
NAMED_GET_WEATHER = {"type": "function", "function": {"name": "get_weather"}}


tools_proxy = scenario_proxy("tools_calls", ONE_INSTANCE, per="sim_dialect")


@pytest.fixture(scope="module")
def client(tools_proxy: Proxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{tools_proxy.url}/v1", api_key="unused", max_retries=0, timeout=30)


def ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def complete(
    client: openai.OpenAI, stream: bool, messages: list[dict], tools: list[dict] | None = None, **kwargs
) -> tuple[ChatCompletion, list[str]]:
    """The completion, and every content delta the stream carried (none without streaming)."""
    tools = tools or openai_tools()
    if not stream:
        return client.chat.completions.create(model="auto", messages=messages, tools=tools, **kwargs), []
    deltas = []
    with client.chat.completions.stream(model="auto", messages=messages, tools=tools, **kwargs) as events:
        for event in events:
            if event.type == "content.delta":
                deltas.append(event.delta)
        return events.get_final_completion(), deltas


def calls_of(message: ChatCompletionMessage) -> list[tuple[str, dict]]:
    return [(call.function.name, json.loads(call.function.arguments)) for call in message.tool_calls or []]


@STREAM_MODES
@pytest.mark.parametrize("expected", DEVIATIONS, ids=DEVIATION_IDS)
def test_each_tolerated_shape_becomes_the_exact_call(client, expected: Expected, stream):
    completion, deltas = complete(client, stream, ask(expected.phrase))
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert calls_of(choice.message) == [(expected.name, expected.arguments)]
    assert choice.message.tool_calls[0].id.startswith("call_")
    assert (choice.message.content or "") == expected.text
    assert_no_leak(*deltas, choice.message.content or "")


@pytest.mark.parametrize("expected", TEXT_FIRST, ids=[e.phrase for e in TEXT_FIRST])
def test_text_before_the_block_streams_in_several_deltas_before_the_call(client, expected: Expected):
    chunks = list(
        client.chat.completions.create(model="auto", messages=ask(expected.phrase), tools=openai_tools(), stream=True)
    )
    deltas = [chunk.choices[0].delta for chunk in chunks if chunk.choices]
    first_call = next(i for i, delta in enumerate(deltas) if delta.tool_calls)
    before = [delta.content for delta in deltas[:first_call] if delta.content]
    assert len(before) >= 2
    assert expected.text.startswith("".join(before))
    opening = deltas[first_call].tool_calls[0]
    assert opening.index == 0 and opening.id.startswith("call_") and opening.type == "function"
    assert opening.function.name == expected.name
    later = [call for delta in deltas[first_call + 1 :] for call in delta.tool_calls or []]
    assert later and all(call.id is None and call.type is None and call.function.name is None for call in later)
    assert json.loads("".join(call.function.arguments for call in later)) == expected.arguments
    assert_no_leak(*(delta.content or "" for delta in deltas))


@STREAM_MODES
def test_two_blocks_become_two_parallel_calls_with_distinct_ids_in_order(client, stream):
    ids = []
    for _ in range(2):
        completion, deltas = complete(client, stream, ask("TC-PARALLEL"))
        message = completion.choices[0].message
        assert completion.choices[0].finish_reason == "tool_calls"
        assert calls_of(message) == PARALLEL
        assert_no_leak(*deltas, message.content or "")
        ids += [call.id for call in message.tool_calls]
    assert len(set(ids)) == 4  # distinct within a reply and never reused by the next turn


@STREAM_MODES
def test_parallel_tool_calls_false_keeps_only_the_first_call(client, stream):
    completion, deltas = complete(client, stream, ask("TC-PARALLEL"), parallel_tool_calls=False)
    assert completion.choices[0].finish_reason == "tool_calls"
    assert calls_of(completion.choices[0].message) == PARALLEL[:1]
    assert_no_leak(*deltas, completion.choices[0].message.content or "")


@STREAM_MODES
def test_an_undeclared_tool_name_is_not_a_call_and_does_not_leak(client, stream):
    completion, deltas = complete(client, stream, ask("TC-UNKNOWN-TOOL"))
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert not choice.message.tool_calls
    assert choice.message.content == UNKNOWN_TOOL_TEXT
    assert_no_leak(*deltas, choice.message.content)


@STREAM_MODES
def test_round_trip_call_then_tool_result_then_final_answer(client, tools_proxy, stream):
    messages = ask("TC-ROUNDTRIP: what is the weather in Lisbon?")
    first, _ = complete(client, stream, messages)
    call = first.choices[0].message.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", ROUNDTRIP_CALL)
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": call.id, "type": "function", "function": call.function.model_dump()}],
        },
        {"role": "tool", "tool_call_id": call.id, "content": ROUNDTRIP_RESULT},
    ]
    watch = SimWatch(tools_proxy)
    second, deltas = complete(client, stream, messages)
    choice = second.choices[0]
    assert choice.finish_reason == "stop"
    assert not choice.message.tool_calls
    assert choice.message.content == ROUNDTRIP_ANSWER
    [question] = watch.questions()
    assert ROUNDTRIP_RESULT in question


@STREAM_MODES
@pytest.mark.parametrize(
    ("phrase", "choice", "repaired"),
    [
        ("TC-FORCED-PROSE", "required", REPAIRED_REQUIRED),
        ("TC-FORCED-PROSE", NAMED_GET_TIME, REPAIRED_GET_TIME),
        ("TC-FORCED-INVALID", NAMED_GET_WEATHER, REPAIRED_REQUIRED),
    ],
    ids=["required_prose", "named_prose", "named_invalid_arguments"],
)
def test_forced_choice_repairs_once_in_the_same_session_then_yields_the_call(
    client, tools_proxy, phrase, choice, repaired, stream
):
    watch = SimWatch(tools_proxy)
    completion, deltas = complete(client, stream, ask(phrase), tool_choice=choice)
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "tool_calls"
    assert calls_of(message) == [repaired]
    assert_no_leak(*deltas, message.content or "")
    assert_one_repair(watch, phrase)


@STREAM_MODES
def test_forced_choice_whose_repair_fails_too_answers_with_a_clear_text(client, tools_proxy, stream):
    watch = SimWatch(tools_proxy)
    completion, deltas = complete(
        client, stream, ask("TC-FORCED-PROSE"), tools=openai_tools("never_works"), tool_choice="required"
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert not choice.message.tool_calls
    assert choice.message.content.split("\n\n")[-1].startswith(FALLBACK_HEAD)  # its own paragraph, not glued on
    assert_no_leak(*deltas, choice.message.content)
    assert_one_repair(watch, "TC-FORCED-PROSE")


@STREAM_MODES
def test_tool_choice_naming_an_undeclared_tool_is_a_400(client, stream):
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model="auto",
            messages=ask("TC-WELL-FORMED"),
            tools=openai_tools(),
            tool_choice={"type": "function", "function": {"name": "launch_rockets"}},
            stream=stream,
        )
    error = raised.value.body
    assert raised.value.status_code == 400
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "tool_choice"
    assert "launch_rockets" in error["message"]
