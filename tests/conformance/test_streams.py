"""Streamed answers, event by event, against the event schemas of the vendor specs.

schemathesis sends no streaming requests (see test_schemathesis.py), so this covers them: a text
reply, a tool call and a reply with reasoning on each API, every event validated against the
schema the spec gives for its type. Anthropic `ping` events (allowed at any point, docs/clients.md) have
no schema in the spec and are only checked for their shape.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from harness.proxy import Proxy

from .conftest import API_KEY
from .vendor_specs import CHAT, MESSAGES, RESPONSES, Api, event_errors

pytestmark = [pytest.mark.conformance, pytest.mark.timeout(60)]

TEXT = "Say hello in exactly 3 words."
WEATHER = "What is the weather in San Francisco?"  # scenario.yaml answers with a get_weather call
REASONING = "What is 15 * 37? Show your reasoning."  # scenario.yaml thinks before answering
LOCATION_SCHEMA = {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}


def chat_body(prompt: str) -> dict:
    body: dict = {"model": "auto", "stream": True, "stream_options": {"include_usage": True}}
    body["messages"] = [{"role": "user", "content": prompt}]
    if prompt == WEATHER:
        body["tools"] = [{"type": "function", "function": {"name": "get_weather", "parameters": LOCATION_SCHEMA}}]
        body["tool_choice"] = "required"
    return body


def responses_body(prompt: str) -> dict:
    body: dict = {"model": "auto", "stream": True, "input": prompt, "reasoning": {"summary": "auto"}}
    if prompt == WEATHER:
        body["tools"] = [{"type": "function", "name": "get_weather", "parameters": LOCATION_SCHEMA}]
        body["tool_choice"] = "required"
    return body


def messages_body(prompt: str) -> dict:
    body: dict = {"model": "auto", "stream": True, "max_tokens": 1024}
    body["messages"] = [{"role": "user", "content": prompt}]
    if prompt == WEATHER:
        body["tools"] = [{"name": "get_weather", "input_schema": LOCATION_SCHEMA}]
        body["tool_choice"] = {"type": "any"}
    if prompt == REASONING:
        body["thinking"] = {"type": "enabled", "budget_tokens": 1024}
    return body


ENDPOINTS: dict[str, tuple[Api, str, Callable[[str], dict]]] = {
    "chat": (CHAT, "/v1/chat/completions", chat_body),
    "responses": (RESPONSES, "/v1/responses", responses_body),
    "messages": (MESSAGES, "/v1/messages", messages_body),
}
# A marker of what each prompt must produce, per API, so that no case passes on a plain reply.
EXPECTED_MARK = {
    ("chat", WEATHER): '"tool_calls"',
    ("chat", REASONING): '"reasoning_content"',
    ("responses", WEATHER): '"type":"function_call"',
    ("responses", REASONING): "response.reasoning_summary_text.delta",
    ("messages", WEATHER): '"type":"tool_use"',
    ("messages", REASONING): '"type":"thinking_delta"',
}


def read_events(proxy: Proxy, path: str, body: dict) -> list[tuple[str, str]]:
    """(event name, data) of every SSE event; the name is "" when the event has none."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.stream("POST", proxy.url + path, json=body, headers=headers, timeout=30) as response:
        assert response.status_code == 200, response.read().decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        text = response.read().decode()
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if lines:
            name = next((line[6:].strip() for line in lines if line.startswith("event:")), "")
            data = "\n".join(line[5:].lstrip() for line in lines if line.startswith("data:"))
            events.append((name, data))
    return events


def spec_violations(api: Api, events: list[tuple[str, str]]) -> list[str]:
    violations = []
    for index, (name, data) in enumerate(events):
        if data == "[DONE]" and api is CHAT:
            continue
        payload = json.loads(data)
        if api is MESSAGES and name == "ping":
            violations += [] if payload == {"type": "ping"} else [f"#{index} ping: {payload}"]
            continue
        if name and name != payload.get("type"):
            violations.append(f"#{index}: event name {name!r} differs from its type {payload.get('type')!r}")
        violations += [f"#{index} {name or 'chunk'}: {error}" for error in event_errors(api, payload.get("type", ""), payload)]
    return violations


@pytest.mark.parametrize("prompt", [TEXT, WEATHER, REASONING], ids=["text", "tool-call", "reasoning"])
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_streamed_events_match_the_spec(proxy: Proxy, endpoint: str, prompt: str) -> None:
    api, path, build = ENDPOINTS[endpoint]
    events = read_events(proxy, path, build(prompt))
    assert len(events) >= 3
    mark = EXPECTED_MARK.get((endpoint, prompt))
    assert mark is None or any(mark in name or mark in data for name, data in events), f"no {mark} in the stream"
    assert spec_violations(api, events) == []
