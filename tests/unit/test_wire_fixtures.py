"""The six recorded agent request bodies decode, in stream and non-stream mode (fixtures README)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lingma_proxy.response_store import ResponseStore
from lingma_proxy.wire.anthropic import decode_messages_request
from lingma_proxy.wire.openai_chat import decode_chat_request
from lingma_proxy.wire.responses import decode_responses_request

pytestmark = pytest.mark.timeout(60)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "clients"


def _load(name: str, stream: bool) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text()) | {"stream": stream}


@pytest.mark.parametrize("stream", [True, False])
def test_claude_code_turns(stream):
    first = decode_messages_request(_load("claude-code-turn1", stream))
    assert first.stream is stream and first.max_tokens == 128000
    assert len(first.tools) == 12 and first.system.count("\n\n") == 2
    assert [m.role for m in first.messages] == ["user", "system"]
    assert first.affinity_key and first.thinking is False  # adaptive, but display "omitted"
    second = decode_messages_request(_load("claude-code-turn2", stream))
    assert [m.role for m in second.messages] == ["user", "system", "assistant", "tool"]
    call = second.messages[2].tool_calls[0]
    assert (call.id, call.name, json.loads(call.arguments)) == ("toolu_01A2b3C4d5", "Agent", {"location": "Paris", "unit": "c"})
    result = second.messages[3]
    assert (result.tool_call_id, result.tool_name, result.is_error) == ("toolu_01A2b3C4d5", "Agent", True)


@pytest.mark.parametrize("stream", [True, False])
def test_codex_turns(stream):
    first, options = decode_responses_request(_load("codex-turn1", stream), ResponseStore().get)
    assert first.stream is stream and first.system == ""
    assert [m.role for m in first.messages] == ["system", "system", "user", "user"]
    assert len(first.tools) == 7 and options.ignored_tool_types == ["namespace", "web_search"]
    assert options.store is False and first.affinity_key == "01a20f19-1fe3-7910-a2bf-550c849cf9f5"
    second, _ = decode_responses_request(_load("codex-turn2", stream), ResponseStore().get)
    assert [m.role for m in second.messages] == ["system", "system", "user", "user", "assistant", "tool"]
    call = second.messages[4].tool_calls[0]
    assert (call.id, call.name) == ("call_01A2b3C4d5", "exec_command")
    assert second.messages[5].tool_call_id == "call_01A2b3C4d5" and second.messages[5].tool_name == "exec_command"


@pytest.mark.parametrize("stream", [True, False])
def test_qwen_code_turns(stream):
    first, options = decode_chat_request(_load("qwen-code-turn1", stream))
    assert first.stream is stream and options.include_usage is True
    assert len(first.tools) == 10 and first.max_tokens == 16384
    second, _ = decode_chat_request(_load("qwen-code-turn2", stream))
    assert [m.role for m in second.messages] == ["system", "user", "assistant", "tool"]
    assert second.messages[2].text == "" and second.messages[2].tool_calls[0].name == "agent"
    assert second.messages[3].tool_name == "agent"
