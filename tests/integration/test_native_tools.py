"""Lingma's own tool calls (`tool/invoke`): declined by default, handed to the client when allow-listed.

Each test runs on the plugin binary's two dialects and on QoderCN (conftest `sim_runtime`): the plugin binary
takes a call's result through tool/invokeResult, QoderCN in the reply to its tool/invoke (docs/protocol.md §6)."""

from __future__ import annotations

import json

import openai
import pytest

pytestmark = pytest.mark.usefixtures("sim_runtime")

SCENARIO = """
rules:
  - match: "read the notes"
    native_tool: {name: read_file, parameters: {path: notes.txt}}
    reply: "Read it."
"""


@pytest.fixture
def scenario(tmp_path):
    path = tmp_path / "native.yaml"
    path.write_text(SCENARIO)
    return str(path)


def _client(proxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="x", max_retries=0)


def _results_went_back(proxy, sim_runtime: str, how: str | None = None) -> None:
    """One result reached the simulator, the way its runtime takes it (or `how`)."""
    how = how or ("reply" if sim_runtime == "qodercn" else "invoke_result")
    other = "invoke_result" if how == "reply" else "reply"
    status = proxy.sim_status()
    assert status["tool_results"] == {how: 1, other: 0}
    assert status["unacked_timeouts"] == 0, "every tool/invoke got its reply in time"


def test_a_native_call_is_declined_when_forwarding_is_off(make_proxy, scenario, sim_runtime):
    proxy = make_proxy({"lingma": {"simulator": {"scenario": scenario}}})
    reply = _client(proxy).chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "please read the notes"}]
    )
    message = reply.choices[0].message
    assert not message.tool_calls
    assert "Tool result: error: native tool read_file is not enabled" in message.content
    _results_went_back(proxy, sim_runtime)


@pytest.mark.parametrize("stream", [False, True], ids=["non_stream", "stream"])
def test_an_allowlisted_native_call_round_trips_through_the_client(make_proxy, scenario, stream, sim_runtime):
    proxy = make_proxy(
        {
            "lingma": {"simulator": {"scenario": scenario}},
            "tools": {"forward_native": True, "allowlist": ["read_file"]},
        }
    )
    client = _client(proxy)
    history = [{"role": "user", "content": "please read the notes"}]
    if stream:
        with client.chat.completions.stream(model="auto", messages=history) as events:
            first = events.get_final_completion()
    else:
        first = client.chat.completions.create(model="auto", messages=history)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert call.function.name == "read_file"
    assert json.loads(call.function.arguments) == {"path": "notes.txt"}
    assert proxy.health()["in_flight"] == 1, "the parked upstream chat keeps its slot"

    history += [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "buy milk"},
    ]
    second = client.chat.completions.create(model="auto", messages=history)
    assert "Tool result: buy milk" in second.choices[0].message.content
    assert proxy.sim_status()["ask_count"] == 1, "the same upstream chat continued; nothing was re-asked"
    assert proxy.health()["in_flight"] == 0
    _results_went_back(proxy, sim_runtime)


def test_an_allowlisted_native_call_round_trips_through_an_anthropic_client(make_proxy, scenario):
    import anthropic

    proxy = make_proxy(
        {
            "lingma": {"simulator": {"scenario": scenario}},
            "tools": {"forward_native": True, "allowlist": ["read_file"]},
        }
    )
    client = anthropic.Anthropic(base_url=proxy.url, api_key="x", max_retries=0)
    history = [{"role": "user", "content": "please read the notes"}]
    first = client.messages.create(model="auto", max_tokens=500, messages=history)
    assert first.stop_reason == "tool_use"
    [call] = [block for block in first.content if block.type == "tool_use"]
    assert call.id.startswith("toolu_") and call.input == {"path": "notes.txt"}
    history += [
        {"role": "assistant", "content": [block.model_dump() for block in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "buy bread"}]},
    ]
    second = client.messages.create(model="auto", max_tokens=500, messages=history)
    assert "Tool result: buy bread" in second.content[0].text
    assert proxy.sim_status()["ask_count"] == 1


def test_a_parked_call_whose_result_never_comes_is_failed_back_and_frees_its_slot(make_proxy, scenario, sim_runtime):
    import time

    proxy = make_proxy(
        {
            "lingma": {"simulator": {"scenario": scenario}, "rpc_timeout": 1.5},
            "tools": {"forward_native": True, "allowlist": ["read_file"]},
        }
    )
    first = _client(proxy).chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "please read the notes"}]
    )
    assert first.choices[0].finish_reason == "tool_calls"
    deadline = time.monotonic() + 15
    while proxy.health()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proxy.health()["in_flight"] == 0
    assert proxy.sim_status()["active_chats"] == 0
    _results_went_back(proxy, sim_runtime)


@pytest.mark.parametrize("mode", ["reply", "invoke_result"])
def test_tools_native_result_forces_one_way_for_every_runtime(make_proxy, scenario, mode):
    proxy = make_proxy(
        {
            "lingma": {"simulator": {"scenario": scenario}},
            "tools": {"forward_native": True, "allowlist": ["read_file"], "native_result": mode},
        }
    )
    client = _client(proxy)
    history = [{"role": "user", "content": "please read the notes"}]
    [call] = client.chat.completions.create(model="auto", messages=history).choices[0].message.tool_calls
    history += [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "water the plants"},
    ]
    second = client.chat.completions.create(model="auto", messages=history)
    assert "Tool result: water the plants" in second.choices[0].message.content
    _results_went_back(proxy, "", how=mode)
