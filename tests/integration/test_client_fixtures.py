"""The six recorded agent request bodies (Claude Code, Codex, Qwen Code), POSTed as the agents send them.

Each must give 200 and a well-formed body or stream, in exactly one upstream ask whose question is
the rendered request: the scenario echoes every question, so the reply shows what reached Lingma.
"""

from __future__ import annotations

import json
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from .conftest import scenario_proxy

pytestmark = pytest.mark.timeout(60)

CLIENTS = Path(__file__).resolve().parents[1] / "fixtures" / "clients"
API_KEY = "fixture-key"

# fixture → (path, auth headers)
ENDPOINTS = {
    "claude-code": (
        "/v1/messages?beta=true",
        {
            "x-api-key": API_KEY,
            "anthropic-version": "2023-06-01",
            "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
        },
    ),
    "codex": ("/v1/responses", {"Authorization": f"Bearer {API_KEY}"}),
    "qwen-code": ("/v1/chat/completions", {"Authorization": f"Bearer {API_KEY}"}),
}
FIXTURES = sorted(path.stem for path in CLIENTS.glob("*.json"))


fixtures_proxy = scenario_proxy("api_client_fixtures", {"auth": {"api_keys": [API_KEY]}}, per="sim_dialect")


def parse_sse(text: str) -> list[tuple[str | None, str]]:
    """(event name, data) per event; comment-only frames (keep-alives) are skipped."""
    events = []
    for frame in text.replace("\r\n", "\n").split("\n\n"):
        name, data = None, []
        for line in frame.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if data:
            events.append((name, "\n".join(data)))
    return events


def declared_tool_names(kind: str, body: dict) -> list[str]:
    tools = body.get("tools", [])
    if kind == "qwen-code":
        return [tool["function"]["name"] for tool in tools]
    if kind == "codex":
        return [tool["name"] for tool in tools if tool.get("type") == "function"]
    return [tool["name"] for tool in tools if tool.get("type", "custom") == "custom"]


# ---- stream checks: each returns the text and tool-call arguments the stream delivered -----------


def anthropic_stream_output(events: list[tuple[str | None, str]]) -> str:
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert "error" not in names
    payloads = [json.loads(data) for _, data in events]
    assert all(p["type"] == name for (name, _), p in zip(events, payloads, strict=False))
    out, open_index, next_index = [], None, 0
    for payload in payloads[1:-2]:
        if payload["type"] == "ping":
            continue
        if payload["type"] == "content_block_start":
            assert open_index is None and payload["index"] == next_index
            open_index, next_index = payload["index"], next_index + 1
        elif payload["type"] == "content_block_delta":
            assert payload["index"] == open_index
            delta = payload["delta"]
            out.append(delta.get("text") or delta.get("partial_json") or "")
        else:
            assert payload["type"] == "content_block_stop" and payload["index"] == open_index
            open_index = None
    assert open_index is None, "every block is closed by content_block_stop"
    assert payloads[-2]["delta"]["stop_reason"] in ("end_turn", "tool_use", "max_tokens")
    return "".join(out)


def responses_stream_output(events: list[tuple[str | None, str]]) -> str:
    payloads = [json.loads(data) for _, data in events]
    assert all(name == p["type"] for (name, _), p in zip(events, payloads, strict=False))
    types = [p["type"] for p in payloads]
    assert types[:2] == ["response.created", "response.in_progress"] and types[-1] == "response.completed"
    assert [p["sequence_number"] for p in payloads] == list(range(len(payloads)))
    added = [p["output_index"] for p in payloads if p["type"] == "response.output_item.added"]
    done = [p["output_index"] for p in payloads if p["type"] == "response.output_item.done"]
    assert added and added == done
    assert payloads[-1]["response"]["status"] == "completed"
    openai.types.responses.Response.model_validate(payloads[-1]["response"])
    return "".join(p["delta"] for p in payloads if p["type"] in (
        "response.output_text.delta", "response.function_call_arguments.delta"))


def chat_stream_output(events: list[tuple[str | None, str]], include_usage: bool) -> str:
    assert all(name is None for name, _ in events)
    assert events[-1][1] == "[DONE]"
    chunks = [json.loads(data) for _, data in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    if include_usage:
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] > 0
        chunks = chunks[:-1]
    assert all(c["choices"][0]["index"] == 0 for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "tool_calls", "length")
    for chunk in chunks:
        openai.types.chat.ChatCompletionChunk.model_validate(chunk)
    out = []
    for chunk in chunks:
        delta = chunk["choices"][0]["delta"]
        out.append(delta.get("content") or "")
        out.extend(call["function"].get("arguments", "") for call in delta.get("tool_calls") or [])
    return "".join(out)


# ---- non-stream checks ----------------------------------------------------------------------------


def body_output(kind: str, body: dict) -> str:
    if kind == "claude-code":
        message = anthropic.types.Message.model_validate(body)
        assert message.stop_reason in ("end_turn", "tool_use", "max_tokens")
        return "".join(block.text if block.type == "text" else json.dumps(block.input) for block in message.content)
    if kind == "codex":
        response = openai.types.responses.Response.model_validate(body)
        assert response.status == "completed"
        return response.output_text + "".join(getattr(item, "arguments", "") for item in response.output)
    completion = openai.types.chat.ChatCompletion.model_validate(body)
    message = completion.choices[0].message
    assert completion.usage.prompt_tokens > 0
    return (message.content or "") + "".join(call.function.arguments for call in message.tool_calls or [])


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "non-stream"])
@pytest.mark.parametrize("fixture", FIXTURES)
def test_recorded_client_request_is_served_in_one_upstream_ask(fixtures_proxy, fixture, stream):
    kind = fixture.rsplit("-turn", 1)[0]
    path, headers = ENDPOINTS[kind]
    body = json.loads((CLIENTS / f"{fixture}.json").read_text()) | {"stream": stream}
    before = fixtures_proxy.sim_status()["ask_count"]

    response = httpx.post(f"{fixtures_proxy.url}{path}", json=body, headers=headers, timeout=30)

    assert response.status_code == 200, response.text[:2000]
    if stream:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(response.text)
        if kind == "claude-code":
            output = anthropic_stream_output(events)
        elif kind == "codex":
            output = responses_stream_output(events)
        else:
            output = chat_stream_output(events, body.get("stream_options", {}).get("include_usage", False))
    else:
        assert response.headers["content-type"].startswith("application/json")
        output = body_output(kind, response.json())

    status = fixtures_proxy.sim_status()
    assert status["ask_count"] == before + 1
    question_head = status["asks"][-1]["question_head"]
    assert output.startswith(question_head)  # the echo rule: the reply is the question, verbatim
    for name in declared_tool_names(kind, body):
        assert f"### {name}\n" in output, f"tool {name} missing from the question sent upstream"


@pytest.mark.parametrize("kind", sorted(ENDPOINTS))
def test_a_string_cut_in_the_middle_of_an_emoji_is_served(fixtures_proxy, kind):
    """Agents truncate long tool output by UTF-16 length; JSON.stringify then escapes a lone surrogate."""
    path, headers = ENDPOINTS[kind]
    text = "output cut mid-emoji: \U0001F600\ud83d"
    if kind == "claude-code":
        body = {"model": "auto", "max_tokens": 256, "messages": [{"role": "user", "content": text}]}
    elif kind == "codex":
        body = {"model": "auto", "input": text}
    else:
        body = {"model": "auto", "messages": [{"role": "user", "content": text}]}
    raw = json.dumps(body)  # ensure_ascii: the lone surrogate goes out as the escape \ud83d
    assert "\\ud83d" in raw

    response = httpx.post(f"{fixtures_proxy.url}{path}", content=raw.encode(), headers=headers, timeout=30)

    assert response.status_code == 200, response.text[:500]
    assert "output cut mid-emoji: \U0001F600\ufffd" in body_output(kind, response.json())
