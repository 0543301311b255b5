"""/v1/responses (and /responses) through the official openai SDK, against the real server + simulator."""

from __future__ import annotations

import openai
import pytest

from harness.proxy import Proxy

from .conftest import scenario_proxy

pytestmark = pytest.mark.timeout(60)

CHUNKED_REPLY = "Responses stream in several chunks, one after another."
TEXT_ITEM_EVENTS = [
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
]


responses_proxy = scenario_proxy("api_responses", per="sim_dialect")


@pytest.fixture(scope="module")
def client(responses_proxy: Proxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{responses_proxy.url}/v1", api_key="unused", max_retries=0, timeout=30)


def collapse_repeats(types: list[str]) -> list[str]:
    return [t for i, t in enumerate(types) if i == 0 or types[i - 1] != t]


def test_stream_helper_sends_the_full_event_sequence_and_a_final_response(client):
    with client.responses.stream(model="auto", input="several chunks please") as stream:
        events = list(stream)
        response = stream.get_final_response()
    types = [event.type for event in events]
    expected = ["response.created", "response.in_progress", *TEXT_ITEM_EVENTS, "response.completed"]
    assert collapse_repeats(types) == expected
    assert types.count("response.output_text.delta") >= 2
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert response.status == "completed"
    assert response.output_text == CHUNKED_REPLY
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens


def test_non_stream_create_returns_a_complete_response_object(client):
    response = client.responses.create(model="auto", input="several chunks please")
    assert response.object == "response"
    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.model == "auto"
    assert response.created_at > 0
    assert response.error is None
    [item] = response.output
    assert item.type == "message" and item.role == "assistant" and item.status == "completed"
    assert response.output_text == CHUNKED_REPLY
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0


def test_input_items_with_every_role_reach_upstream_in_order(client):
    def item(item_id: str, role: str, part: str, text: str) -> dict:
        return {"type": "message", "id": item_id, "role": role, "content": [{"type": part, "text": text}]}

    items = [
        item("msg_dev", "developer", "input_text", "DEV-RULE"),
        item("msg_sys", "system", "input_text", "SYS-RULE"),
        item("msg_u1", "user", "input_text", "USER-ONE"),
        item("msg_a1", "assistant", "output_text", "ASSIST-ONE"),
        {"role": "user", "content": "ECHO-RESP USER-TWO"},  # the SDK's short form, without type or id
    ]
    prompt = client.responses.create(model="auto", input=items).output_text  # the echo rule returns the prompt
    positions = [prompt.index(marker) for marker in ("DEV-RULE", "SYS-RULE", "USER-ONE", "ASSIST-ONE", "USER-TWO")]
    assert positions == sorted(positions)
    assert prompt.index("[System]") < positions[0]
    assert positions[1] < prompt.index("[User]") < positions[2]
    assert positions[2] < prompt.index("[Assistant]") < positions[3]


def test_string_input_with_instructions_puts_them_in_the_system_part(client):
    response = client.responses.create(model="auto", instructions="INSTRUCTIONS-TEXT", input="ECHO-RESP plain string")
    prompt = response.output_text
    assert prompt.index("[System]") < prompt.index("INSTRUCTIONS-TEXT") < prompt.index("ECHO-RESP plain string")
    assert response.instructions == "INSTRUCTIONS-TEXT"


def test_previous_response_id_continues_the_conversation(client):
    first = client.responses.create(model="auto", input="Hello, my name is Zed.")
    second = client.responses.create(model="auto", input="What is my name?", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    assert second.output_text == "Your name is Zed."
    third = client.responses.create(model="auto", input="ECHO-RESP show the history", previous_response_id=second.id)
    assert third.status == "completed"


def test_unknown_previous_response_id_is_a_400(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="auto", input="hi", previous_response_id="resp_doesnotexist")
    error = caught.value.body
    assert error["param"] == "previous_response_id"
    assert "resp_doesnotexist" in error["message"]
    assert caught.value.response.json()["error"]["type"] == "invalid_request_error"


def test_a_response_created_with_store_false_cannot_be_continued(client):
    unstored = client.responses.create(model="auto", input="do not keep this", store=False)
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="auto", input="and then?", previous_response_id=unstored.id)


def test_unknown_tool_types_are_ignored(client, responses_proxy):
    tools = [
        {"type": "web_search"},
        {"type": "namespace", "name": "mcp", "description": "a group", "tools": []},
        {"type": "function", "name": "lookup", "description": "Look a word up.", "strict": False,
         "parameters": {"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]}},
    ]
    response = client.responses.create(model="auto", input="several chunks please", tools=tools)
    assert response.status == "completed"
    assert response.output_text == CHUNKED_REPLY
    assert [tool.type for tool in response.tools] == ["function"]
    assert "web_search" in responses_proxy.log_text()


def test_reasoning_becomes_a_reasoning_item_before_the_message(client):
    response = client.responses.create(model="auto", input="think in chat style")
    assert [item.type for item in response.output] == ["reasoning", "message"]
    assert "REASONING-RESP" in response.output[0].summary[0].text
    assert response.output_text == "Answer after reasoning."


def test_mid_stream_upstream_failure_is_response_failed(client):
    with client.responses.stream(model="auto", input="fail midway") as stream:
        events = list(stream)
        with pytest.raises(RuntimeError, match="response.completed"):
            stream.get_final_response()
    types = [event.type for event in events]
    assert types[-1] == "response.failed"
    assert "response.completed" not in types
    assert "response.output_text.delta" in types  # the failure struck after text went out
    failed = events[-1].response
    assert failed.status == "failed"
    assert failed.error is not None and failed.error.message
    assert client.responses.create(model="auto", input="several chunks please").output_text == CHUNKED_REPLY


def test_responses_route_without_v1_prefix(responses_proxy):
    bare = openai.OpenAI(base_url=responses_proxy.url, api_key="unused", max_retries=0, timeout=30)
    assert bare.responses.create(model="auto", input="several chunks please").output_text == CHUNKED_REPLY
    with bare.responses.stream(model="auto", input="several chunks please") as stream:
        assert stream.get_final_response().output_text == CHUNKED_REPLY
