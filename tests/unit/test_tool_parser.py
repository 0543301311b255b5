"""The incremental action-block parser: tolerated shapes, streaming, and what is never a call."""

from __future__ import annotations

import json
import random

import pytest

from lingma_proxy.events import TextDelta, ToolCall
from lingma_proxy.model import ToolSpec
from lingma_proxy.tools.parser import ActionBlockParser

pytestmark = pytest.mark.timeout(60)

TOOLS = [
    ToolSpec(
        "Bash",
        "Run a shell command",
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}},
            "required": ["command"],
            "additionalProperties": False,
        },
    ),
    ToolSpec(
        "Read",
        "Read a file",
        {
            "type": "object",
            "properties": {"file_path": {"type": "string"}, "limit": {"type": "integer"}},
            "required": ["file_path"],
        },
    ),
    ToolSpec("get_goal", "No parameters"),
]

LS = ("Bash", {"command": "ls"})
CANONICAL = '```json action\n{"tool": "Bash", "parameters": {"command": "ls"}}\n```'


def run(reply: str, chunk: int | None = None, tools=TOOLS, **kwargs):
    """Feed `reply` in chunks of `chunk` characters (None: at once); returns events and the parser."""
    parser = ActionBlockParser(tools, **kwargs)
    size = chunk or max(len(reply), 1)
    events = []
    for start in range(0, len(reply), size):
        events += parser.feed(reply[start : start + size])
    events += parser.close()
    return events, parser


def text_of(events) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


def calls_of(events) -> list[tuple[str, dict]]:
    return [(event.name, json.loads(event.arguments)) for event in events if isinstance(event, ToolCall)]


# (case id, reply, expected calls, expected text)
TOLERATED = [
    ("canonical", "Sure.\n\n" + CANONICAL, [LS], "Sure."),
    ("json fence without action", '```json\n{"tool": "Bash", "parameters": {"command": "ls"}}\n```', [LS], ""),
    ("bare fence", '```\n{"tool": "Bash", "parameters": {"command": "ls"}}\n```', [LS], ""),
    ("action label only", '```action\n{"tool": "Bash", "parameters": {"command": "ls"}}\n```', [LS], ""),
    ("label case and spacing", '```JSON  Action\n{"tool": "Bash", "parameters": {"command": "ls"}}\n```', [LS], ""),
    ("qwen tool_call tag", '<tool_call>\n{"name": "Bash", "arguments": {"command": "ls"}}\n</tool_call>', [LS], ""),
    ("name/arguments keys", '```json action\n{"name": "Bash", "arguments": {"command": "ls"}}\n```', [LS], ""),
    ("function/input keys", '```json action\n{"function": "Bash", "input": {"command": "ls"}}\n```', [LS], ""),
    (
        "openai function object",
        '```json\n{"type": "function", "id": "x", "function": {"name": "Bash", "arguments": "{\\"command\\": \\"ls\\"}"}}\n```',
        [LS],
        "",
    ),
    ("arguments as JSON string", '```json action\n{"tool": "Bash", "parameters": "{\\"command\\": \\"ls\\"}"}\n```', [LS], ""),
    ("trailing commas", '```json action\n{"tool": "Bash", "parameters": {"command": "ls",},}\n```', [LS], ""),
    ("single-line fence", 'Running it. ```json action {"tool": "Bash", "parameters": {"command": "ls"}}```', [LS], "Running it."),
    ("chatter after block", "I will look.\n" + CANONICAL + "\nThen I report.", [LS], "I will look.\nThen I report."),
    ("CRLF", '```json action\r\n{"tool": "Bash", "parameters": {"command": "ls"}}\r\n```\r\n', [LS], ""),
    ("indented fence", '  ```json\n  {"tool": "Bash", "parameters": {"command": "ls"}}\n  ```', [LS], ""),
    ("tag inside fence", '```\n<tool_call>\n{"name": "Bash", "arguments": {"command": "ls"}}\n</tool_call>\n```', [LS], ""),
    ("tag inline with chatter", 'Ok <tool_call>{"name": "Bash", "arguments": {"command": "ls"}}</tool_call> done', [LS], "Ok done"),
    (
        "qwen3-coder xml call",
        "<tool_call>\n<function=Read>\n<parameter=file_path>\nnotes.txt\n</parameter>\n"
        "<parameter=limit>\n20\n</parameter>\n</function>\n</tool_call>",
        [("Read", {"file_path": "notes.txt", "limit": 20})],
        "",
    ),
    (
        "backticks inside a JSON string",
        '```json action\n{"tool": "Bash", "parameters": {"command": "printf \'```\\\\n```\'"}}\n```',
        [("Bash", {"command": "printf '```\\n```'"})],
        "",
    ),
    (
        "tag-like text inside a JSON string",
        '```json action\n{"tool": "Bash", "parameters": {"command": "echo \'<tool_call>\' <function=x>"}}\n```',
        [("Bash", {"command": "echo '<tool_call>' <function=x>"})],
        "",
    ),
    ("no parameters", '```json action\n{"tool": "get_goal"}\n```', [("get_goal", {})], ""),
    ("empty arguments string", '<tool_call>{"name": "get_goal", "arguments": ""}</tool_call>', [("get_goal", {})], ""),
    (
        "parallel blocks",
        CANONICAL + "\n\n" + '```json action\n{"tool": "Read", "parameters": {"file_path": "a.txt"}}\n```',
        [LS, ("Read", {"file_path": "a.txt"})],
        "",
    ),
    (
        "array of calls in one block",
        '```json action\n[{"tool": "Bash", "parameters": {"command": "ls"}}, {"tool": "get_goal", "parameters": {}}]\n```',
        [LS, ("get_goal", {})],
        "",
    ),
    (
        "non-ascii arguments",
        '```json action\n{"tool": "Bash", "parameters": {"command": "echo 你好"}}\n```',
        [("Bash", {"command": "echo 你好"})],
        "",
    ),
]

PLAIN_TEXT = [
    ("json sample in prose", 'Example:\n```json\n{"name": "Bob", "age": 3}\n```\nDone.'),
    ("json array sample", "Numbers:\n```json\n[1, 2, 3]\n```\n"),
    ("json with call-like first key only", '```json\n{"name": "Bob"}\n```'),
    ("python block", "Code:\n```python\nprint('```')\n```\nAfter."),
    ("inline code and html", "Use `ls` or ``cat``; a < b and <b>bold</b> <tool>x</tool>"),
    ("four backticks", "````\nnested\n````"),
    ("mid-line bare fence", 'text ```{"tool": "Bash", "parameters": {"command": "ls"}}``` end'),
    ("unclosed python block", "```python\nx = 1\n"),
    ("prose mentioning the tag", "Qwen wraps calls in <tool_call> tags, closed by </tool_call>."),
    ("prose mentioning an unclosed tag", "Never write <tool_call> yourself."),
]


@pytest.mark.parametrize("chunk", [1, 3, 7, None])
@pytest.mark.parametrize("case_id, reply, calls, text", TOLERATED, ids=[case[0] for case in TOLERATED])
def test_tolerated_shapes_become_calls(case_id, reply, calls, text, chunk):
    events, parser = run(reply, chunk)
    assert calls_of(events) == calls
    assert text_of(events) == text
    assert parser.rejected == []
    assert [call.name for call in parser.calls] == [name for name, _ in calls]


@pytest.mark.parametrize("chunk", [1, 3, 7, None])
@pytest.mark.parametrize("case_id, reply", PLAIN_TEXT, ids=[case[0] for case in PLAIN_TEXT])
def test_text_that_is_not_a_call_is_released_unchanged(case_id, reply, chunk):
    events, parser = run(reply, chunk)
    assert text_of(events) == reply
    assert parser.calls == [] and parser.rejected == []


def test_a_fence_closing_a_code_block_is_not_taken_for_an_opening_one():
    reply = "```python\nprint(1)\n```\nNow:\n" + CANONICAL
    for chunk in (1, 3, None):
        events, _ = run(reply, chunk)
        assert calls_of(events) == [LS]
        assert text_of(events) == "```python\nprint(1)\n```\nNow:"


REJECTED = [
    ("unknown tool", '```json action\n{"tool": "Delete", "parameters": {"path": "/"}}\n```', "unknown tool", "Delete"),
    ("unknown tool in json fence", '```json\n{"name": "Delete", "arguments": {}}\n```', "unknown tool", "Delete"),
    ("unknown tool in tag", '<tool_call>{"name": "Delete", "arguments": {}}</tool_call>', "unknown tool", "Delete"),
    ("missing required", '```json action\n{"tool": "Bash", "parameters": {}}\n```', "invalid arguments: ", "Bash"),
    ("wrong type", '```json action\n{"tool": "Read", "parameters": {"file_path": 3}}\n```', "invalid arguments: ", "Read"),
    ("extra property", '```json action\n{"tool": "Bash", "parameters": {"command": "ls", "x": 1}}\n```', "invalid arguments: ", "Bash"),
    ("unparseable JSON", '```json action\n{"tool": "Bash", "parameters": {"command": ls}}\n```', "invalid JSON", None),
    ("not a call object", '```json action\n{"hello": "world"}\n```', "not a tool call object", None),
    ("broken JSON in tag", '<tool_call>{"name": "Bash", "arguments": {</tool_call>', "invalid JSON", None),
    ("unterminated action block", 'Sure.\n```json action\n{"tool": "Bash", "parameters": {"command": "ls"}}\n', "unterminated", None),
    ("unterminated tag", '<tool_call>{"name": "Bash", "arguments": {"command": "ls"}}', "unterminated", None),
]


@pytest.mark.parametrize("chunk", [1, 3, 7, None])
@pytest.mark.parametrize("case_id, reply, reason, tool", REJECTED, ids=[case[0] for case in REJECTED])
def test_invalid_blocks_are_rejected_and_kept_out_of_the_text(case_id, reply, reason, tool, chunk):
    events, parser = run(reply, chunk)
    assert calls_of(events) == []
    assert [block.reason[: len(reason)] for block in parser.rejected] == [reason]
    assert parser.rejected[0].tool == tool
    assert parser.rejected[0].raw.strip() in reply
    assert "```" not in text_of(events) and "tool_call" not in text_of(events)


def test_schema_message_names_the_problem():
    _, parser = run('```json action\n{"tool": "Bash", "parameters": {}}\n```')
    assert parser.rejected[0].reason == "invalid arguments: 'command' is a required property"


def test_one_bad_block_does_not_drop_a_good_one():
    reply = CANONICAL + '\n```json action\n{"tool": "Nope", "parameters": {}}\n```'
    events, parser = run(reply, 3)
    assert calls_of(events) == [LS]
    assert [block.tool for block in parser.rejected] == ["Nope"]


def test_text_before_a_block_streams_before_the_block_completes():
    parser = ActionBlockParser(TOOLS)
    first = parser.feed('Let me list the files. ```json action\n{"tool": "Bash", "parameters": {"command": "ls"}}\n')
    assert text_of(first) == "Let me list the files."
    assert calls_of(first) == []
    second = parser.feed("```") + parser.close()
    assert calls_of(second) == [LS]
    assert text_of(second) == ""


def test_only_possible_openers_are_held_back():
    parser = ActionBlockParser(TOOLS)
    assert text_of(parser.feed("see `")) == "see"
    assert text_of(parser.feed("code` and <")) == " `code` and"
    assert text_of(parser.feed("b> end")) == " <b> end"
    assert parser.close() == []


def test_json_shown_to_the_user_streams_before_its_fence_closes():
    parser = ActionBlockParser(TOOLS)
    early = parser.feed('Config:\n```json\n{"port": 8080,\n')
    assert text_of(early) == 'Config:\n```json\n{"port": 8080,'
    rest = parser.feed(' "host": "x"}\n```\n') + parser.close()
    assert text_of(early + rest) == 'Config:\n```json\n{"port": 8080,\n "host": "x"}\n```\n'


def test_close_releases_a_partial_fence_as_text():
    events, parser = run("Almost ``")
    assert text_of(events) == "Almost ``"
    events, parser = run("Almost <tool_ca")
    assert text_of(events) == "Almost <tool_ca"
    events, parser = run('```json\n{"tool": "Bash", "parameters": {"command": "ls"}}\n')
    assert text_of(events) == '```json\n{"tool": "Bash", "parameters": {"command": "ls"}}\n'
    assert parser.calls == []


def test_call_ids_are_unique_and_use_the_prefix():
    reply = CANONICAL + "\n" + CANONICAL
    events, _ = run(reply, id_prefix="toolu_")
    ids = [event.id for event in events if isinstance(event, ToolCall)]
    assert len(ids) == 2 and len(set(ids)) == 2
    assert all(call_id.startswith("toolu_") and len(call_id) > len("toolu_") + 8 for call_id in ids)
    other, _ = run(reply)
    assert not set(ids) & {event.id for event in other if isinstance(event, ToolCall)}


def test_arguments_are_compact_json_objects():
    events, _ = run('```json action\n{"tool": "Read", "parameters": {"file_path": "a/b.txt",  "limit": 5}}\n```')
    assert events[0].arguments == '{"file_path":"a/b.txt","limit":5}'


def test_events_keep_their_order():
    reply = "One.\n" + CANONICAL + "\nTwo.\n" + '```json action\n{"tool": "get_goal"}\n```'
    events, _ = run(reply, 7)
    kinds = [type(event).__name__ for event in events]
    kinds = [kind for index, kind in enumerate(kinds) if index == 0 or kinds[index - 1] != kind]
    assert kinds == ["TextDelta", "ToolCall", "TextDelta", "ToolCall"]
    assert text_of(events) == "One.\nTwo."


def test_block_text_never_reaches_text_deltas():
    reply = "Intro\n" + "\n".join(case[1] for case in TOLERATED) + "\nOutro"
    for chunk in (1, 5, None):
        events, parser = run(reply, chunk)
        text = text_of(events)
        assert "tool_call" not in text and '"parameters"' not in text and "```" not in text
        assert text.startswith("Intro") and text.endswith("Outro")
        assert len(parser.calls) == sum(len(case[2]) for case in TOLERATED)


def test_large_reply_in_small_chunks():
    prose = ("Some prose with `code`, a < b, and <em>tags</em>.\n" * 10_000)[:500_000]
    content = "x" * 200_000 + "```inside```"
    block = "```json action\n" + json.dumps({"tool": "Bash", "parameters": {"command": content}}) + "\n```"
    events, parser = run(prose + block + "\n" + prose, 3)
    assert text_of(events) == prose.rstrip() + "\n" + prose
    assert calls_of(events) == [("Bash", {"command": content})]


def test_large_reply_in_one_chunk_with_many_stop_characters():
    prose = "a<b `c` d\n" * 50_000
    events, parser = run(prose + CANONICAL)
    assert text_of(events) == prose.rstrip()
    assert calls_of(events) == [LS]


def test_random_mixtures_give_the_same_result_for_every_chunking():
    """A seeded fuzz over all the cases above: chunk boundaries must never change the outcome."""
    pieces = [case[1] for case in TOLERATED + PLAIN_TEXT + REJECTED if "unterminated" not in case[0]]
    pieces += ["`", "``", "```", "````", "<", "<tool", "</tool_call>", "\n", "\r\n", "  ", "{", '"', "\\", "```json\n"]
    rng = random.Random(20240611)
    for _ in range(300):
        reply = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 6)))
        outcomes = set()
        for chunk in (None, 1, 2, 5):
            events, parser = run(reply, chunk)
            outcomes.add((text_of(events), repr(calls_of(events)), tuple(block.reason for block in parser.rejected)))
        assert len(outcomes) == 1, reply
