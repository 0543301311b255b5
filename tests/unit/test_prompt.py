"""Rendering a Conversation into one question text, the delta for a reused session, and the key text."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from lingma_proxy.events import ToolCall
from lingma_proxy.model import Conversation, Image, Message, ToolChoice, ToolSpec, ToolUse
from lingma_proxy.prompt import (
    delta_start,
    render_prefix_after_reply,
    render_prefix_for_key,
    render_prompt,
    render_turn,
)
from lingma_proxy.tools.parser import ActionBlockParser

pytestmark = pytest.mark.timeout(60)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "clients"


# --- minimal decoders of the recorded bodies (the real ones live in lingma_proxy/wire) ------------


def _texts(content) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    return "\n".join(part["text"] for part in content if part.get("type") in ("text", "input_text", "output_text"))


def _images(content) -> list[Image]:
    return [] if isinstance(content, (str, type(None))) else [Image() for part in content if part.get("type") == "image"]


def decode_anthropic(body: dict) -> Conversation:
    messages = []
    for item in body["messages"]:
        content = item["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if item["role"] == "assistant":
            calls = [ToolUse(b["id"], b["name"], json.dumps(b["input"])) for b in blocks if b["type"] == "tool_use"]
            messages.append(Message("assistant", _texts(blocks), tool_calls=calls))
            continue
        for block in blocks:
            if block["type"] == "tool_result":
                result = block.get("content")
                is_error = bool(block.get("is_error"))
                messages.append(
                    Message("tool", _texts(result), tool_call_id=block["tool_use_id"], is_error=is_error, images=_images(result))
                )
        if _texts(blocks) or _images(blocks):
            messages.append(Message(item["role"], _texts(blocks), images=_images(blocks)))
    tools = [ToolSpec(t["name"], t.get("description", ""), t.get("input_schema", {})) for t in body["tools"]]
    return Conversation(model=body["model"], messages=messages, system=_texts(body.get("system")), tools=tools)


def decode_chat(body: dict) -> Conversation:
    messages = []
    for item in body["messages"]:
        if item["role"] == "tool":
            messages.append(Message("tool", _texts(item["content"]), tool_call_id=item["tool_call_id"]))
            continue
        calls = [
            ToolUse(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in item.get("tool_calls") or []
        ]
        messages.append(Message(item["role"], _texts(item["content"]), tool_calls=calls))
    functions = [tool["function"] for tool in body["tools"]]
    tools = [ToolSpec(f["name"], f.get("description", ""), f.get("parameters", {})) for f in functions]
    return Conversation(model=body["model"], messages=messages, tools=tools)


def decode_responses(body: dict) -> Conversation:
    messages: list[Message] = []
    for item in body["input"]:
        if item["type"] == "message":
            role = "system" if item["role"] in ("developer", "system") else item["role"]
            messages.append(Message(role, _texts(item["content"])))
        elif item["type"] == "function_call":
            if not messages or messages[-1].role != "assistant":
                messages.append(Message("assistant"))
            messages[-1].tool_calls.append(ToolUse(item["call_id"], item["name"], item["arguments"]))
        elif item["type"] == "function_call_output":
            messages.append(Message("tool", item["output"], tool_call_id=item["call_id"]))
    functions = [tool for tool in body["tools"] if tool["type"] == "function"]
    tools = [ToolSpec(f["name"], f.get("description", ""), f.get("parameters", {})) for f in functions]
    choice = ToolChoice(body.get("tool_choice", "auto"))
    return Conversation(model=body["model"], messages=messages, tools=tools, tool_choice=choice)


FIXTURE_DECODERS = {
    "claude-code": decode_anthropic,
    "codex": decode_responses,
    "qwen-code": decode_chat,
}


def load_fixture(client: str, turn: int) -> tuple[dict, Conversation]:
    body = json.loads((FIXTURES / f"{client}-turn{turn}.json").read_text())
    return body, FIXTURE_DECODERS[client](body)


def reparse(text: str, tools: list[ToolSpec]) -> list[tuple[str, dict]]:
    parser = ActionBlockParser(tools)
    events = parser.feed(text) + parser.close()
    return [(event.name, json.loads(event.arguments)) for event in events if isinstance(event, ToolCall)]


# --- the recorded agent conversations --------------------------------------------------------


@pytest.mark.parametrize("client", sorted(FIXTURE_DECODERS))
def test_fixture_turn2_renders_system_contract_history_and_cue(client):
    body, conv = load_fixture(client, 2)
    prompt = render_prompt(conv)
    assert prompt.startswith("[System]\n")
    assert prompt.endswith("\n\n[Assistant]\n")
    for tool in conv.tools:
        assert f"### {tool.name}\n" in prompt
    call = next(message.tool_calls[0] for message in conv.messages if message.tool_calls)
    assert f'{{"tool": "{call.name}", "parameters": {{"location":"Paris","unit":"c"}}}}' in prompt
    result = next(message for message in conv.messages if message.role == "tool")
    header = f"[Tool result: {call.name} #1{' (error)' if result.is_error else ''}]\n"
    assert header + result.text in prompt
    assert "toolu_" not in prompt and "call_01A2b3C4d5" not in prompt
    assert len(prompt) > 20_000  # the whole agent prompt, tool descriptions included


def test_claude_code_system_message_inside_messages_keeps_its_place():
    body, conv = load_fixture("claude-code", 2)
    prompt = render_prompt(conv)
    user_text = "Please read notes.txt and summarise it."
    inner_system = body["messages"][1]["content"]
    assert prompt.index(user_text) < prompt.index("[System]\n" + inner_system) < prompt.index("[Assistant]\nLet me check that file.")


def test_codex_developer_items_open_the_prompt_with_the_contract():
    body, conv = load_fixture("codex", 1)
    prompt = render_prompt(conv)
    first_developer = body["input"][0]["content"][0]["text"]
    assert prompt.startswith("[System]\n" + first_developer)
    assert prompt.index(first_developer) < prompt.index("# Tools") < prompt.index("[User]\n")
    assert "web_search" not in prompt and "multi_agent_v1" not in prompt


@pytest.mark.parametrize("client", sorted(FIXTURE_DECODERS))
def test_fixture_history_calls_reparse_to_the_same_calls(client):
    _, conv = load_fixture(client, 2)
    expected = [(call.name, json.loads(call.arguments)) for message in conv.messages for call in message.tool_calls]
    # Names only: the recorded arguments are placeholders that the real schemas would reject.
    assert reparse(render_prompt(conv), [ToolSpec(tool.name) for tool in conv.tools]) == expected


@pytest.mark.parametrize("client", sorted(FIXTURE_DECODERS))
def test_fixture_turn2_delta_is_the_tool_result_only(client):
    _, conv = load_fixture(client, 2)
    start = delta_start(conv)
    delta = render_turn(conv, start)
    assert delta.startswith("[Tool result: ")
    assert "# Tools" not in delta and "[System]" not in delta
    assert delta.endswith("\n\n[Assistant]\n")


@pytest.mark.parametrize("client", sorted(FIXTURE_DECODERS))
def test_stored_key_after_turn1_matches_the_key_of_turn2(client):
    """The reply the client echoes back in turn 2 must find the session stored after turn 1."""
    _, turn1 = load_fixture(client, 1)
    _, turn2 = load_fixture(client, 2)
    start = delta_start(turn2)
    reply = turn2.messages[start - 1]
    calls = [ToolCall(f"call_proxy_{index}", call.name, call.arguments) for index, call in enumerate(reply.tool_calls)]
    assert render_prefix_after_reply(turn1, reply.text, calls) == render_prefix_for_key(turn2, start)


# --- rendering details -----------------------------------------------------------------------

BASH = ToolSpec("Bash", "Run a command", {"type": "object", "properties": {"command": {"type": "string"}}})


def agent_conversation(**overrides) -> Conversation:
    conv = Conversation(
        model="qwen3-coder",
        system="You are a coding agent.",
        tools=[BASH],
        messages=[
            Message("user", "List the files.", images=[Image(), Image()]),
            Message("assistant", "Let me look.", tool_calls=[ToolUse("toolu_abc", "Bash", '{"command": "ls"}')]),
            Message("tool", "a.txt\nb.txt\n", tool_call_id="toolu_abc", is_error=True),
            Message("user", "Thanks, now count them."),
        ],
    )
    return replace(conv, **overrides)


def test_full_prompt_layout():
    prompt = render_prompt(agent_conversation())
    assert prompt.startswith("[System]\nYou are a coding agent.\n\n# Tools\n")
    tail = prompt[prompt.index("[User]") :]
    assert tail == (
        "[User]\nList the files.\n\n[image omitted]\n\n[image omitted]\n\n"
        "[Assistant]\nLet me look.\n\n"
        '```json action\n{"tool": "Bash", "parameters": {"command":"ls"}}\n```\n\n'
        "[Tool result: Bash #1 (error)]\na.txt\nb.txt\n\n\n"
        "[User]\nThanks, now count them.\n\n"
        "[Assistant]\n"
    )


def test_contract_is_omitted_for_choice_none_but_history_calls_still_render():
    for conv in (agent_conversation(tool_choice=ToolChoice("none")), agent_conversation(tools=[])):
        prompt = render_prompt(conv)
        assert "# Tools" not in prompt
        assert '```json action\n{"tool": "Bash", "parameters": {"command":"ls"}}\n```' in prompt
        assert "[Tool result: Bash #1 (error)]" in prompt


def test_a_lone_question_is_sent_bare():
    conv = Conversation(model="m", messages=[Message("user", "What is 2+2?")])
    assert render_prompt(conv) == "What is 2+2?"
    chat = Conversation(model="m", messages=[Message("user", "Hi"), Message("assistant", "Hello!"), Message("user", "Bye")])
    assert render_turn(chat, delta_start(chat)) == "Bye"
    assert render_prompt(chat) == "[User]\nHi\n\n[Assistant]\nHello!\n\n[User]\nBye\n\n[Assistant]\n"


def test_system_messages_in_the_middle_keep_their_place():
    conv = Conversation(
        model="m",
        messages=[Message("system", "Lead."), Message("user", "Q1"), Message("system", "Mid."), Message("user", "Q2")],
    )
    assert render_prompt(conv) == "[System]\nLead.\n\n[User]\nQ1\n\n[System]\nMid.\n\n[User]\nQ2\n\n[Assistant]\n"


def test_assistant_prefill_is_continued_not_answered_again():
    conv = Conversation(model="m", messages=[Message("user", "Say hi"), Message("assistant", "Hi")])
    assert render_prompt(conv) == "[User]\nSay hi\n\n[Assistant]\nHi"
    assert delta_start(conv) is None


def test_tool_results_are_numbered_by_call_order_and_keep_their_text():
    calls = [ToolUse("c1", "Bash", '{"command": "a"}'), ToolUse("c2", "Bash", '{"command": "b"}')]
    conv = Conversation(
        model="m",
        messages=[
            Message("user", "go"),
            Message("assistant", "", tool_calls=calls),
            Message("tool", "  second  ", tool_call_id="c2"),
            Message("tool", "", tool_call_id="c1", images=[Image()]),
            Message("tool", "orphan", tool_call_id="zzz", tool_name="Read"),
        ],
    )
    delta = render_turn(conv, delta_start(conv))
    assert delta == (
        "[Tool result: Bash #2]\n  second  \n\n"
        "[Tool result: Bash #1]\n\n[image omitted]\n\n"
        "[Tool result: Read]\norphan\n\n"
        "[Assistant]\n"
    )


def test_agent_size_request_renders_once_and_deterministically():
    _, conv = load_fixture("claude-code", 2)
    big = replace(conv, messages=conv.messages * 40)
    first = render_prompt(big)
    assert first == render_prompt(big)
    assert len(first) > 300_000


# --- the session key -------------------------------------------------------------------------


def test_key_is_the_same_whatever_api_the_conversation_came_from():
    anthropic = Conversation(
        model="qwen",
        system="Be terse.",
        tools=[BASH],
        messages=[
            Message("user", "List files."),
            Message("assistant", "Sure.", tool_calls=[ToolUse("toolu_01XyZ", "Bash", '{"command": "ls", "flags": [1, 2]}')]),
            Message("tool", "a.txt", tool_call_id="toolu_01XyZ"),
            Message("user", "Count them."),
        ],
    )
    openai = Conversation(
        model="qwen",
        tools=[BASH],
        messages=[
            Message("system", "Be terse."),
            Message("user", "List files.\n"),
            Message("assistant", "Sure.", tool_calls=[ToolUse("call_9f8e7d", "Bash", '{"flags":[1,2],"command":"ls"}')]),
            Message("tool", "a.txt", tool_call_id="call_9f8e7d", tool_name="Bash"),
            Message("user", "Count them."),
        ],
    )
    assert delta_start(anthropic) == 2 and delta_start(openai) == 3
    assert render_prefix_for_key(anthropic, 2) == render_prefix_for_key(openai, 3)


@pytest.mark.parametrize(
    "change",
    [
        {"system": "Be verbose."},
        {"tools": []},
        {"tools": [replace(BASH, description="Run another command")]},
        {"tool_choice": ToolChoice("required")},
        {"parallel_tool_calls": False},
        {"model": "other-model"},
    ],
    ids=["system", "no tools", "tool description", "tool_choice", "parallel", "model"],
)
def test_key_changes_with_what_the_session_depends_on(change):
    conv = agent_conversation()
    start = delta_start(conv)
    assert render_prefix_for_key(replace(conv, **change), start) != render_prefix_for_key(conv, start)


def test_key_changes_with_history_but_not_with_the_new_turn():
    conv = agent_conversation()
    start = delta_start(conv)
    edited = replace(conv, messages=[replace(conv.messages[0], text="List all files."), *conv.messages[1:]])
    assert render_prefix_for_key(edited, start) != render_prefix_for_key(conv, start)
    newer = replace(conv, messages=[*conv.messages[:-1], Message("user", "Something else entirely.")])
    assert render_prefix_for_key(newer, start) == render_prefix_for_key(conv, start)
