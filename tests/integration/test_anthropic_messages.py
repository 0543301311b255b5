"""/v1/messages, count_tokens and /v1/models through the official anthropic SDK, against the real server + simulator."""

from __future__ import annotations

import anthropic
import httpx
import pytest

from harness.proxy import Proxy

from .conftest import scenario_proxy

pytestmark = pytest.mark.timeout(60)

API_KEY = "anthropic-test-key"
CHUNKED_REPLY = "Anthropic text streams in several chunks, one after another."
CHAT_THINK = "REASONING-CHAT: first the question, then the answer."
CHAT_THINK_REPLY = "Visible answer after chat thinking."
INLINE_THINK = "REASONING-INLINE: weighing the options."
INLINE_THINK_REPLY = "Visible answer after inline thinking."
BUDGETED_REPLY = "A reply of a modest, known number of tokens, streamed in small pieces."


messages_proxy = scenario_proxy("api_anthropic", {"auth": {"api_keys": [API_KEY]}}, per="sim_dialect")


@pytest.fixture(scope="module")
def client(messages_proxy: Proxy) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=messages_proxy.url, api_key=API_KEY, max_retries=0, timeout=30)


def ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_the_simulator_speaks_the_dialect_of_this_run(messages_proxy, sim_dialect):
    """One proxy per dialect (conftest.scenario_proxy): a proxy kept from the first dialect would fail here."""
    assert messages_proxy.sim_status()["dialect"] == sim_dialect


def test_stream_helper_yields_text_parts_and_a_final_message(client):
    with client.messages.stream(model="auto", max_tokens=1024, messages=ask("several chunks please")) as stream:
        parts = list(stream.text_stream)
        message = stream.get_final_message()
    assert len(parts) >= 2
    assert "".join(parts) == CHUNKED_REPLY
    assert message.stop_reason == "end_turn"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == CHUNKED_REPLY
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0


def test_create_with_x_api_key_and_with_bearer(messages_proxy):
    """anthropic-python 2.x sends `api_key` and `auth_token` as Bearer; Claude Code and LiteLLM send x-api-key."""
    common = dict(base_url=messages_proxy.url, max_retries=0, timeout=30)
    by_header = anthropic.Anthropic(api_key=None, default_headers={"x-api-key": API_KEY}, **common)
    by_api_key = anthropic.Anthropic(api_key=API_KEY, **common)
    by_token = anthropic.Anthropic(api_key=None, auth_token=API_KEY, **common)
    for sdk, header in ((by_header, "x-api-key"), (by_api_key, "authorization"), (by_token, "authorization")):
        raw = sdk.messages.with_raw_response.create(
            model="auto", max_tokens=1024, messages=ask("several chunks please")
        )
        sent = {name.lower() for name in raw.http_request.headers}
        assert header in sent and ({"x-api-key", "authorization"} - {header}).isdisjoint(sent)
        message = raw.parse()
        assert message.type == "message" and message.role == "assistant"
        assert message.content[0].text == CHUNKED_REPLY


def test_beta_query_path_works_in_both_modes(messages_proxy):
    body = {"model": "auto", "max_tokens": 1024, "messages": ask("several chunks please")}
    headers = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
    url = f"{messages_proxy.url}/v1/messages?beta=true"
    plain = httpx.post(url, json=body, headers=headers, timeout=30)
    assert plain.status_code == 200
    assert plain.json()["content"][0]["text"] == CHUNKED_REPLY
    streamed = httpx.post(url, json=body | {"stream": True}, headers=headers, timeout=30)
    assert streamed.status_code == 200
    assert streamed.headers["content-type"].startswith("text/event-stream")
    names = [line[len("event: "):] for line in streamed.text.splitlines() if line.startswith("event: ")]
    assert names[0] == "message_start" and names[-1] == "message_stop"


def test_new_version_and_odd_beta_headers_are_not_rejected(messages_proxy):
    sdk = anthropic.Anthropic(
        base_url=messages_proxy.url,
        api_key=API_KEY,
        max_retries=0,
        timeout=30,
        default_headers={"anthropic-version": "2026-10-21", "anthropic-beta": "odd-feature-2099-01-01,another-one"},
    )
    message = sdk.messages.create(model="auto", max_tokens=1024, messages=ask("several chunks please"))
    assert message.content[0].text == CHUNKED_REPLY


def test_strict_fields_usage_cache_zeros_and_citations_null(messages_proxy):
    response = httpx.post(
        f"{messages_proxy.url}/v1/messages",
        json={"model": "auto", "max_tokens": 1024, "messages": ask("several chunks please")},
        headers={"x-api-key": API_KEY, "anthropic-version": "2023-06-01"},
        timeout=30,
    )
    body = response.json()
    assert body["usage"]["cache_creation_input_tokens"] == 0
    assert body["usage"]["cache_read_input_tokens"] == 0
    assert body["usage"]["input_tokens"] > 0
    [block] = body["content"]
    assert "citations" in block and block["citations"] is None
    assert body["stop_sequence"] is None


def test_stop_sequences_end_the_reply_with_stop_sequence(client):
    request = dict(model="auto", max_tokens=1024, messages=ask("stop at the marker"), stop_sequences=["XYZ"])
    plain = client.messages.create(**request)
    with client.messages.stream(**request) as stream:
        streamed = stream.get_final_message()
    for message in (plain, streamed):
        assert message.stop_reason == "stop_sequence"
        assert message.stop_sequence == "XYZ"
        assert message.content[0].text == "Before the marker "


def test_small_max_tokens_ends_with_max_tokens_and_stops_upstream(client, messages_proxy):
    before = messages_proxy.sim_status()
    message = client.messages.create(model="auto", max_tokens=3, messages=ask("long reply please"))
    assert message.stop_reason == "max_tokens"
    assert "last sentence" not in message.content[0].text
    after = messages_proxy.sim_status()
    assert len(after["stops"]) == len(before["stops"]) + 1
    assert after["stops"][-1] == after["asks"][-1]["requestId"]


def test_a_reply_within_max_tokens_ends_with_end_turn(client):
    """The budget counts the reply's tokens, not the sum of each small chunk's own count."""
    full = client.messages.create(model="auto", max_tokens=1024, messages=ask("budgeted reply please"))
    assert full.content[0].text == BUDGETED_REPLY
    roomy = client.messages.create(
        model="auto", max_tokens=full.usage.output_tokens + 1, messages=ask("budgeted reply please")
    )
    assert roomy.content[0].text == BUDGETED_REPLY
    assert roomy.stop_reason == "end_turn"


@pytest.mark.parametrize(
    "thinking", [{"type": "enabled", "budget_tokens": 1024}, {"type": "adaptive"}], ids=["enabled", "adaptive"]
)
def test_thinking_enabled_gives_a_signed_thinking_block_before_the_text(client, thinking):
    request = dict(model="auto", max_tokens=2048, thinking=thinking, messages=ask("think in chat style"))
    with client.messages.stream(**request) as stream:
        events = list(stream)
        streamed = stream.get_final_message()
    plain = client.messages.create(**request)
    for message in (streamed, plain):
        assert [block.type for block in message.content] == ["thinking", "text"]
        assert message.content[0].thinking.strip() == CHAT_THINK
        assert message.content[0].signature
        assert message.content[1].text == CHAT_THINK_REPLY
    deltas = [e.delta.type for e in events if e.type == "content_block_delta"]
    assert deltas.index("signature_delta") < deltas.index("text_delta")
    assert max(i for i, t in enumerate(deltas) if t == "thinking_delta") < deltas.index("signature_delta")


@pytest.mark.parametrize(
    ("question", "reply"),
    [("think in chat style", CHAT_THINK_REPLY), ("think inline style", INLINE_THINK_REPLY)],
    ids=["chat_think", "inline"],
)
def test_without_thinking_the_reasoning_is_dropped(client, question, reply):
    with client.messages.stream(model="auto", max_tokens=1024, messages=ask(question)) as stream:
        streamed = stream.get_final_message()
    plain = client.messages.create(model="auto", max_tokens=1024, messages=ask(question))
    for message in (streamed, plain):
        assert [block.type for block in message.content] == ["text"]
        assert message.content[0].text.strip() == reply
        assert "REASONING" not in message.content[0].text


def test_count_tokens_is_exact_and_matches_a_real_request(client, sim_dialect):
    body = dict(
        model="auto",
        system=[{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        tools=[{
            "name": "get_weather",
            "description": "Weather for a city.",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        }],
        messages=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18 C, sunny"},
                {"type": "text", "text": "several chunks please"},
            ]},
        ],
    )
    counted = client.messages.count_tokens(**body).input_tokens
    assert counted > 50  # system + tool contract + transcript, not a character estimate of one message
    assert client.messages.count_tokens(**body).input_tokens == counted
    message = client.messages.create(max_tokens=1024, **body)
    if sim_dialect == "classic":
        assert message.usage.input_tokens == counted
    else:  # the agent dialect reports its own context size, which wins when lingma.context_usage is on
        assert message.usage.input_tokens > 0 and message.usage.input_tokens != counted


def test_models_in_anthropic_shape(client, messages_proxy):
    page = client.models.list()
    ids = [model.id for model in page.data]
    assert "auto" in ids
    assert all(model.type == "model" and model.display_name for model in page.data)
    raw = httpx.get(
        f"{messages_proxy.url}/v1/models", headers={"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}, timeout=10
    ).json()
    assert raw["has_more"] is False
    assert raw["first_id"] == ids[0] and raw["last_id"] == ids[-1]
    assert "object" not in raw


@pytest.mark.timeout(60)
def test_ping_keepalive_while_the_first_token_is_slow_SLOW_11s(messages_proxy):
    """Deliberately slow (~11 s): the first token comes after the 10 s Anthropic keepalive interval."""
    body = {"model": "auto", "max_tokens": 1024, "stream": True, "messages": ask("slow first token")}
    headers = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
    with httpx.stream("POST", f"{messages_proxy.url}/v1/messages", json=body, headers=headers, timeout=40) as response:
        assert response.status_code == 200
        names = [line[len("event: "):] for line in response.iter_lines() if line.startswith("event: ")]
    assert "ping" in names
    assert names.index("ping") < names.index("content_block_delta")
    assert names[-1] == "message_stop"
