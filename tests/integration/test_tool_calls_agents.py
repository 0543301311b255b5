"""Agent-size requests with tool history (tests/fixtures/clients/*-turn2.json), posted raw as the
agents send them, and `tools.emulation: off` on all three wire formats (docs/features.md §6)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from harness.proxy import Proxy

from .conftest import scenario_proxy
from .tool_calls_support import ONE_INSTANCE, SimWatch, assert_no_leak, sse_events

pytestmark = pytest.mark.timeout(60)

CLIENTS = Path(__file__).resolve().parents[1] / "fixtures" / "clients"
ANTHROPIC_HEADERS = {"x-api-key": "unused", "anthropic-version": "2023-06-01", "anthropic-beta": "claude-code-20250219"}
STREAM_MODES = pytest.mark.parametrize("stream", [True, False], ids=["stream", "non_stream"])


@dataclass(frozen=True)
class Agent:
    fixture: str
    path: str
    wire: str  # "anthropic" | "responses" | "chat"
    call: tuple[str, dict]  # what tools_calls.yaml makes the model call
    history_call: str  # the fixture's earlier call, as the prompt must render it
    history_result_label: str  # the header the fixture's tool result must sit under


AGENTS = [
    Agent(
        "claude-code-turn2.json",
        "/v1/messages?beta=true",
        "anthropic",
        ("Bash", {"command": "ls -la", "description": "List the files"}),
        '```json action\n{"tool": "Agent", "parameters": {"location":"Paris","unit":"c"}}\n```',
        "[Tool result: Agent #1 (error)]",
    ),
    Agent(
        "codex-turn2.json",
        "/v1/responses",
        "responses",
        ("exec_command", {"cmd": "ls -la"}),
        '```json action\n{"tool": "exec_command", "parameters": {"location":"Paris","unit":"c"}}\n```',
        "[Tool result: exec_command #1]",
    ),
    Agent(
        "qwen-code-turn2.json",
        "/v1/chat/completions",
        "chat",
        ("glob", {"pattern": "**/*.py"}),
        '```json action\n{"tool": "agent", "parameters": {"location":"Paris","unit":"c"}}\n```',
        "[Tool result: agent #1]",
    ),
]


tools_proxy = scenario_proxy("tools_calls", ONE_INSTANCE, per="sim_dialect")
emulation_off_proxy = scenario_proxy("tools_calls", {**ONE_INSTANCE, "tools": {"emulation": "off"}}, per="sim_dialect")


def load(agent: Agent) -> dict:
    return json.loads((CLIENTS / agent.fixture).read_text())


def history_result_text(agent: Agent, body: dict) -> str:
    if agent.wire == "anthropic":
        return body["messages"][-1]["content"][0]["content"]
    if agent.wire == "responses":
        return body["input"][-1]["output"]
    return "".join(part["text"] for part in body["messages"][-1]["content"])


def post(proxy: Proxy, agent: Agent, body: dict) -> httpx.Response:
    headers = ANTHROPIC_HEADERS if agent.wire == "anthropic" else {"Authorization": "Bearer unused"}
    return httpx.post(proxy.url + agent.path, json=body, headers=headers, timeout=30)


def calls_and_text(agent: Agent, response: httpx.Response, stream: bool) -> tuple[list[tuple[str, dict]], list[str]]:
    """The tool calls and every piece of visible text, read from the raw wire format."""
    if stream:
        return _streamed_calls_and_text(agent.wire, sse_events(response))
    body = response.json()
    if agent.wire == "anthropic":
        blocks = body["content"]
        calls = [(block["name"], block["input"]) for block in blocks if block["type"] == "tool_use"]
        return calls, [block["text"] for block in blocks if block["type"] == "text"]
    if agent.wire == "responses":
        items = body["output"]
        calls = [(i["name"], json.loads(i["arguments"])) for i in items if i["type"] == "function_call"]
        return calls, [part["text"] for i in items if i["type"] == "message" for part in i["content"]]
    message = body["choices"][0]["message"]
    calls = [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in message.get("tool_calls") or []]
    return calls, [message["content"] or ""]


def _streamed_calls_and_text(wire: str, events: list[tuple[str, object]]) -> tuple[list[tuple[str, dict]], list[str]]:
    payloads = [data for _, data in events if isinstance(data, dict)]
    if wire == "anthropic":
        return _anthropic_stream(payloads)
    if wire == "responses":
        assert payloads[-1]["type"] == "response.completed"
        done = [p["item"] for p in payloads if p["type"] == "response.output_item.done"]
        calls = [(item["name"], json.loads(item["arguments"])) for item in done if item["type"] == "function_call"]
        return calls, [p["delta"] for p in payloads if p["type"] == "response.output_text.delta"]
    return _chat_stream([p["choices"][0]["delta"] for p in payloads if p.get("choices")])


def _anthropic_stream(payloads: list[dict]) -> tuple[list[tuple[str, dict]], list[str]]:
    starts = [p for p in payloads if p["type"] == "content_block_start" and p["content_block"]["type"] == "tool_use"]
    deltas = [p for p in payloads if p["type"] == "content_block_delta"]
    calls = []
    for start in starts:
        fragments = [d["delta"]["partial_json"] for d in deltas if d["index"] == start["index"]]
        calls.append((start["content_block"]["name"], json.loads("".join(fragments))))
    return calls, [d["delta"]["text"] for d in deltas if d["delta"]["type"] == "text_delta"]


def _chat_stream(deltas: list[dict]) -> tuple[list[tuple[str, dict]], list[str]]:
    names: dict[int, str] = {}
    arguments: dict[int, str] = {}
    for call in (call for delta in deltas for call in delta.get("tool_calls") or []):
        if "id" in call:
            names[call["index"]] = call["function"]["name"]
        arguments[call["index"]] = arguments.get(call["index"], "") + call["function"].get("arguments", "")
    calls = [(names[index], json.loads(arguments[index])) for index in sorted(names)]
    return calls, [delta.get("content") or "" for delta in deltas]


@STREAM_MODES
@pytest.mark.parametrize("agent", AGENTS, ids=[a.fixture.removesuffix("-turn2.json") for a in AGENTS])
def test_agent_turn_with_tool_history_gets_its_call_back_in_one_upstream_request(tools_proxy, agent: Agent, stream):
    body = load(agent) | {"stream": stream}
    watch = SimWatch(tools_proxy)
    response = post(tools_proxy, agent, body)
    assert response.status_code == 200, response.text
    calls, texts = calls_and_text(agent, response, stream)
    assert calls == [agent.call]
    assert_no_leak(*texts)
    [ask] = watch.asks()
    assert ask["isReply"] is False
    [question] = watch.questions()
    result_block = f"{agent.history_result_label}\n{history_result_text(agent, body)}"
    assert agent.history_call in question
    assert result_block in question
    assert question.index(agent.history_call) < question.index(result_block)


@pytest.mark.parametrize("agent", AGENTS, ids=[a.fixture.removesuffix("-turn2.json") for a in AGENTS])
def test_emulation_off_rejects_declared_tools_with_a_400_in_the_wire_format(emulation_off_proxy, agent: Agent):
    watch = SimWatch(emulation_off_proxy)
    response = post(emulation_off_proxy, agent, load(agent))
    assert response.status_code == 400
    body = response.json()
    if agent.wire == "anthropic":
        assert body["type"] == "error"
        error = body["error"]
    else:
        error = body["error"]
        assert error["param"] == "tools"
    assert error["type"] == "invalid_request_error"
    assert "tools.emulation" in error["message"]
    assert watch.asks() == []


def test_emulation_off_still_answers_requests_without_tools(emulation_off_proxy):
    response = httpx.post(
        emulation_off_proxy.url + "/v1/chat/completions",
        json={"model": "auto", "messages": [{"role": "user", "content": "TC-WELL-FORMED"}]},
        timeout=30,
    )
    assert response.status_code == 200
    assert "get_weather" in response.json()["choices"][0]["message"]["content"]  # no tools: the block is plain text
