"""Each model family's own tool-call format end to end (docs/tool-formats.md): the official SDKs against
the real server, whose simulator answers in GLM, MiniMax, Kimi, DeepSeek and bare Qwen3-Coder syntax
(tool_formats.yaml), on /v1/chat/completions, /v1/responses and /v1/messages."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import anthropic
import openai
import pytest
import yaml

from harness.proxy import Proxy
from lingma_proxy.tools.contract import render_tool_call

from .conftest import SCENARIOS, scenario_proxy
from .tool_calls_support import (
    ONE_INSTANCE,
    REPAIR_HEAD,
    SimWatch,
    anthropic_tools,
    assert_no_leak,
    openai_tools,
    responses_tools,
)

pytestmark = pytest.mark.timeout(60)

SCENARIO = SCENARIOS / "tool_formats.yaml"
FAMILIES = {"glm": "TF-GLM", "minimax": "TF-MINIMAX", "kimi": "TF-KIMI", "deepseek": "TF-DEEPSEEK",
            "deepseek_v4": "TF-DEEPSEEK-V4", "qwen3_coder": "TF-QWEN3-CODER"}
TOOL_NAMES = ("get_current_weather", "get_time")
TEXT = "Checking both for you."
CALLS = [
    ("get_current_weather", {"city": "Paris", "days": 3, "hourly": True}),
    ("get_time", {"timezone": "Europe/Paris"}),
]
REPAIRED = [("get_current_weather", {"city": "Paris"})]
RESULT = "RESULT-TF-SUNNY"
ANSWER = "Sunny in Paris, and it is noon in Paris."
FAMILY_MARKERS = ("<arg_", "<invoke", "minimax", "<|", "<｜", "DSML", "<function", "<parameter", "functions.")
REPLIES = {rule["match"]: rule["reply"] for rule in yaml.safe_load(SCENARIO.read_text(encoding="utf-8"))["rules"]}

STREAM_MODES = pytest.mark.parametrize("stream", [True, False], ids=["stream", "non_stream"])
ALL_FAMILIES = pytest.mark.parametrize("family", FAMILIES)


@dataclass
class Answer:
    text: str
    calls: list[tuple[str, dict]]
    deltas: list[str]  # the text deltas of a stream
    finished_for_tools: bool
    call_ids: list[str]

    @classmethod
    def of(cls, text: str, uses: list[tuple[str, dict, str]], deltas: list[str], for_tools: bool) -> Answer:
        """From the visible text and the (name, arguments, id) of each call."""
        return cls(text, [(name, arguments) for name, arguments, _ in uses], deltas, for_tools, [u[2] for u in uses])


# Without session reuse every question carries the whole transcript, history calls included.
tools_proxy = scenario_proxy("tool_formats", {**ONE_INSTANCE, "sessions": {"reuse": False}}, dialect="classic")


@pytest.fixture(scope="module")
def openai_client(tools_proxy: Proxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{tools_proxy.url}/v1", api_key="unused", max_retries=0, timeout=30)


@pytest.fixture(scope="module")
def anthropic_client(tools_proxy: Proxy) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=tools_proxy.url, api_key="unused", max_retries=0, timeout=30)


def _complete(endpoint, request: dict, stream: bool, delta: Callable, final: str) -> tuple:
    """The SDK's final object, and the text deltas its stream carried (none without streaming)."""
    if not stream:
        return endpoint.create(**request), []
    with endpoint.stream(**request) as events:
        deltas = [text for event in events if (text := delta(event))]
        return getattr(events, final)(), deltas


def chat(client: openai.OpenAI, phrase: str, stream: bool, choice: str) -> Answer:
    request = {"model": "auto", "messages": [{"role": "user", "content": phrase}],
               "tools": openai_tools(*TOOL_NAMES), "tool_choice": choice}
    completion, deltas = _complete(
        client.chat.completions, request, stream, lambda e: e.type == "content.delta" and e.delta, "get_final_completion"
    )
    choice_ = completion.choices[0]
    uses = [(c.function.name, json.loads(c.function.arguments), c.id) for c in choice_.message.tool_calls or []]
    return Answer.of(choice_.message.content or "", uses, deltas, choice_.finish_reason == "tool_calls")


def responses(client: openai.OpenAI, phrase: str, stream: bool, choice: str) -> Answer:
    request = {"model": "auto", "input": phrase, "tools": responses_tools(*TOOL_NAMES), "tool_choice": choice}
    response, deltas = _complete(
        client.responses, request, stream, lambda e: e.type == "response.output_text.delta" and e.delta,
        "get_final_response",
    )
    uses = [(i.name, json.loads(i.arguments), i.call_id) for i in response.output if i.type == "function_call"]
    return Answer.of(response.output_text, uses, deltas, response.status == "completed" and bool(uses))


def messages(client: anthropic.Anthropic, phrase: str, stream: bool, choice: str) -> Answer:
    request = {"model": "auto", "max_tokens": 1024, "messages": [{"role": "user", "content": phrase}],
               "tools": anthropic_tools(*TOOL_NAMES), "tool_choice": {"type": {"required": "any"}.get(choice, choice)}}
    message, deltas = _complete(
        client.messages, request, stream, lambda e: e.type == "text" and e.text, "get_final_message"
    )
    uses = [(block.name, block.input, block.id) for block in message.content if block.type == "tool_use"]
    text = "".join(block.text for block in message.content if block.type == "text")
    return Answer.of(text, uses, deltas, message.stop_reason == "tool_use")


APIS: dict[str, tuple[Callable[..., Answer], str]] = {
    "chat": (chat, "openai_client"),
    "responses": (responses, "openai_client"),
    "messages": (messages, "anthropic_client"),
}
ALL_APIS = pytest.mark.parametrize("api", APIS)


def ask(request: pytest.FixtureRequest, api: str, phrase: str, stream: bool = False, choice: str = "auto") -> Answer:
    function, client = APIS[api]
    return function(request.getfixturevalue(client), phrase, stream, choice)


def assert_no_family_leak(*texts: str) -> None:
    assert_no_leak(*texts)
    for text in [*texts, "".join(texts)]:
        assert not any(marker in text for marker in FAMILY_MARKERS), text


@STREAM_MODES
@ALL_FAMILIES
@ALL_APIS
def test_parallel_calls_in_each_family_format_become_the_exact_calls(request, api, family, stream):
    answer = ask(request, api, FAMILIES[family] + "-CALLS", stream)
    assert answer.calls == CALLS
    assert answer.finished_for_tools
    assert len(set(answer.call_ids)) == 2
    assert answer.text == TEXT
    if stream:
        assert "".join(answer.deltas) == TEXT
    assert_no_family_leak(*answer.deltas, answer.text)


@ALL_FAMILIES
@ALL_APIS
def test_tool_choice_none_passes_the_reply_through_verbatim(request, api, family, tools_proxy):
    phrase = FAMILIES[family] + "-CALLS"
    answer = ask(request, api, phrase, stream=True, choice="none")
    assert answer.calls == [] and not answer.finished_for_tools
    assert answer.text == "".join(answer.deltas) == REPLIES[phrase]


@ALL_FAMILIES
@ALL_APIS
def test_an_undeclared_tool_under_a_forced_choice_goes_to_the_repair(request, api, family, tools_proxy):
    watch = SimWatch(tools_proxy)
    answer = ask(request, api, FAMILIES[family] + "-UNDECLARED", choice="required")
    assert answer.calls == REPAIRED
    assert answer.text == ""
    asks = watch.asks()
    assert [ask_["question_head"].startswith(REPAIR_HEAD) for ask_ in asks] == [False, True]
    assert 'unknown tool "launch_rockets"' in watch.questions()[1]


@ALL_FAMILIES
def test_an_undeclared_tool_under_auto_is_no_call_and_no_leak(request, family):
    answer = ask(request, "chat", FAMILIES[family] + "-UNDECLARED", stream=True)
    assert answer.calls == []
    assert_no_family_leak(*answer.deltas, answer.text)


@ALL_FAMILIES
def test_history_calls_are_sent_back_as_canonical_blocks(request, family, openai_client, tools_proxy):
    """Whatever format the model wrote, the next question renders its calls in our one block format."""
    phrase = FAMILIES[family] + "-CALLS"
    first = openai_client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": phrase}], tools=openai_tools(*TOOL_NAMES)
    )
    message = first.choices[0].message
    results = [{"role": "tool", "tool_call_id": call.id, "content": RESULT} for call in message.tool_calls]
    watch = SimWatch(tools_proxy)
    second = openai_client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": phrase}, message.model_dump(exclude_none=True), *results],
        tools=openai_tools(*TOOL_NAMES),
    )
    assert second.choices[0].message.content == ANSWER
    [question] = watch.questions()
    for call in message.tool_calls:
        assert render_tool_call(call.function.name, call.function.arguments) in question
    transcript = question.split("[User]", 1)[1]
    assert not any(marker in transcript for marker in FAMILY_MARKERS), transcript
