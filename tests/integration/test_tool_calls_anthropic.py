"""Tool-call emulation end to end on /v1/messages: the official anthropic SDK against the real server
and the simulator's tools_calls.yaml scenario (docs/features.md §6)."""

from __future__ import annotations

import json

import anthropic
import pytest
from anthropic.types import Message

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
    anthropic_tools,
    assert_no_leak,
    assert_one_repair,
)

pytestmark = pytest.mark.timeout(60)

STREAM_MODES = pytest.mark.parametrize("stream", [True, False], ids=["stream", "non_stream"])
MAX_TOKENS = 1024


tools_proxy = scenario_proxy("tools_calls", ONE_INSTANCE, per="sim_dialect")


@pytest.fixture(scope="module")
def client(tools_proxy: Proxy) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=tools_proxy.url, api_key="unused", max_retries=0, timeout=30)


def ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def complete(
    client: anthropic.Anthropic, stream: bool, messages: list[dict], tools: list[dict] | None = None, **kwargs
) -> tuple[Message, list[str]]:
    """The message, and every text delta the stream carried (none without streaming)."""
    request = {"model": "auto", "max_tokens": MAX_TOKENS, "messages": messages, "tools": tools or anthropic_tools()}
    if not stream:
        return client.messages.create(**request, **kwargs), []
    deltas = []
    with client.messages.stream(**request, **kwargs) as events:
        for event in events:
            if event.type == "text":
                deltas.append(event.text)
        return events.get_final_message(), deltas


def calls_of(message: Message) -> list[tuple[str, dict]]:
    return [(block.name, block.input) for block in message.content if block.type == "tool_use"]


def text_of(message: Message) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


@STREAM_MODES
@pytest.mark.parametrize("expected", DEVIATIONS, ids=DEVIATION_IDS)
def test_each_tolerated_shape_becomes_the_exact_tool_use(client, expected: Expected, stream):
    message, deltas = complete(client, stream, ask(expected.phrase))
    assert message.stop_reason == "tool_use"
    assert calls_of(message) == [(expected.name, expected.arguments)]
    assert next(block for block in message.content if block.type == "tool_use").id.startswith("toolu_")
    assert text_of(message) == expected.text
    assert_no_leak(*deltas, text_of(message))


@pytest.mark.parametrize("expected", TEXT_FIRST, ids=[e.phrase for e in TEXT_FIRST])
def test_text_before_the_block_streams_in_several_deltas_before_the_tool_use(client, expected: Expected):
    events = list(
        client.messages.create(
            model="auto", max_tokens=MAX_TOKENS, messages=ask(expected.phrase), tools=anthropic_tools(), stream=True
        )
    )
    start = next(
        i for i, e in enumerate(events) if e.type == "content_block_start" and e.content_block.type == "tool_use"
    )
    texts = [e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta"]
    before = [e.delta.text for e in events[:start] if e.type == "content_block_delta" and e.delta.type == "text_delta"]
    assert len(before) >= 2
    assert expected.text.startswith("".join(before))
    index = events[start].index
    assert events[start].content_block.name == expected.name
    fragments = [e.delta.partial_json for e in events if e.type == "content_block_delta" and e.index == index]
    assert json.loads("".join(fragments)) == expected.arguments
    assert any(e.type == "content_block_stop" and e.index == index for e in events[start:])
    assert events[-2].type == "message_delta" and events[-2].delta.stop_reason == "tool_use"
    assert_no_leak(*texts)


@STREAM_MODES
def test_two_blocks_become_two_parallel_tool_uses_with_distinct_ids_in_order(client, stream):
    ids = []
    for _ in range(2):
        message, deltas = complete(client, stream, ask("TC-PARALLEL"))
        assert message.stop_reason == "tool_use"
        assert calls_of(message) == PARALLEL
        assert_no_leak(*deltas, text_of(message))
        ids += [block.id for block in message.content if block.type == "tool_use"]
    assert len(set(ids)) == 4


@STREAM_MODES
def test_disable_parallel_tool_use_keeps_only_the_first_tool_use(client, stream):
    choice = {"type": "auto", "disable_parallel_tool_use": True}
    message, deltas = complete(client, stream, ask("TC-PARALLEL"), tool_choice=choice)
    assert message.stop_reason == "tool_use"
    assert calls_of(message) == PARALLEL[:1]
    assert_no_leak(*deltas, text_of(message))


@STREAM_MODES
def test_an_undeclared_tool_name_is_not_a_tool_use_and_does_not_leak(client, stream):
    message, deltas = complete(client, stream, ask("TC-UNKNOWN-TOOL"))
    assert message.stop_reason == "end_turn"
    assert calls_of(message) == []
    assert text_of(message) == UNKNOWN_TOOL_TEXT
    assert_no_leak(*deltas, text_of(message))


@STREAM_MODES
def test_round_trip_tool_use_then_tool_result_then_final_answer(client, tools_proxy, stream):
    messages = ask("TC-ROUNDTRIP: what is the weather in Lisbon?")
    first, _ = complete(client, stream, messages)
    assert calls_of(first) == [("get_weather", ROUNDTRIP_CALL)]
    tool_use = next(block for block in first.content if block.type == "tool_use")
    messages += [
        {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]},
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": tool_use.id,
                    "content": ROUNDTRIP_RESULT,
                    "cache_control": {"type": "ephemeral"},
                }
            ],
        },
    ]
    watch = SimWatch(tools_proxy)
    second, _ = complete(client, stream, messages)
    assert second.stop_reason == "end_turn"
    assert calls_of(second) == []
    assert text_of(second) == ROUNDTRIP_ANSWER
    [question] = watch.questions()
    assert ROUNDTRIP_RESULT in question


@STREAM_MODES
@pytest.mark.parametrize(
    ("phrase", "choice", "repaired"),
    [
        ("TC-FORCED-PROSE", {"type": "any"}, REPAIRED_REQUIRED),
        ("TC-FORCED-PROSE", {"type": "tool", "name": "get_time"}, REPAIRED_GET_TIME),
        ("TC-FORCED-INVALID", {"type": "tool", "name": "get_weather"}, REPAIRED_REQUIRED),
    ],
    ids=["any_prose", "tool_prose", "tool_invalid_arguments"],
)
def test_forced_choice_repairs_once_in_the_same_session_then_yields_the_tool_use(
    client, tools_proxy, phrase, choice, repaired, stream
):
    watch = SimWatch(tools_proxy)
    message, deltas = complete(client, stream, ask(phrase), tool_choice=choice)
    assert message.stop_reason == "tool_use"
    assert calls_of(message) == [repaired]
    assert_no_leak(*deltas, text_of(message))
    assert_one_repair(watch, phrase)


@STREAM_MODES
def test_forced_choice_whose_repair_fails_too_answers_with_a_clear_text(client, tools_proxy, stream):
    watch = SimWatch(tools_proxy)
    message, deltas = complete(
        client, stream, ask("TC-FORCED-PROSE"), tools=anthropic_tools("never_works"), tool_choice={"type": "any"}
    )
    assert message.stop_reason == "end_turn"
    assert calls_of(message) == []
    assert text_of(message).split("\n\n")[-1].startswith(FALLBACK_HEAD)
    assert_no_leak(*deltas, text_of(message))
    assert_one_repair(watch, "TC-FORCED-PROSE")


@STREAM_MODES
def test_tool_choice_naming_an_undeclared_tool_is_a_400(client, stream):
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(
            model="auto",
            max_tokens=MAX_TOKENS,
            messages=ask("TC-WELL-FORMED"),
            tools=anthropic_tools(),
            tool_choice={"type": "tool", "name": "launch_rockets"},
            stream=stream,
        )
    body = raised.value.body
    assert raised.value.status_code == 400
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert "launch_rockets" in body["error"]["message"]
