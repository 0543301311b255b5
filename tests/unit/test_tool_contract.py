"""The tool contract, argument validation and the repair of a missing forced call."""

from __future__ import annotations

import json

import pytest

from lingma_proxy.events import ToolCall
from lingma_proxy.model import ToolChoice, ToolSpec
from lingma_proxy.tools.accept import RejectedBlock
from lingma_proxy.tools.contract import render_tool_call, render_tool_contract
from lingma_proxy.tools.parser import ActionBlockParser
from lingma_proxy.tools.repair import fallback_text, needs_repair, repair_prompt
from lingma_proxy.tools.schema import validate_arguments

pytestmark = pytest.mark.timeout(60)

BASH = ToolSpec(
    "Bash",
    "Run a shell command.",
    {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"command": {"type": "string"}},
        "required": ["command"],
        "additionalProperties": False,
    },
)
READ = ToolSpec("Read", "Read a file.", {"type": "object", "properties": {"file_path": {"type": "string"}}})
TOOLS = [BASH, READ]


# --- contract -------------------------------------------------------------------------------


def test_contract_lists_every_tool_with_description_and_compact_schema():
    text = render_tool_contract(TOOLS, ToolChoice("auto"), parallel=True)
    assert "### Bash\nRun a shell command." in text
    assert '{"type":"object","properties":{"command":{"type":"string"}},"required":["command"]' in text
    assert "$schema" not in text
    assert "### Read" in text


def test_contract_states_the_exact_format():
    text = render_tool_contract(TOOLS, ToolChoice("auto"), parallel=True)
    assert '```json action\n{"tool": "<name>", "parameters": {...}}\n```' in text
    assert "Nothing may follow the last block" in text


@pytest.mark.parametrize(
    "choice, expected",
    [
        (ToolChoice("auto"), "otherwise answer in plain text"),
        (ToolChoice("required"), "You must call at least one tool"),
        (ToolChoice("named", "Read"), 'You must call the tool "Read"'),
    ],
)
def test_contract_states_the_choice_policy(choice, expected):
    assert expected in render_tool_contract(TOOLS, choice, parallel=True)


def test_contract_is_empty_for_choice_none_or_no_tools():
    assert render_tool_contract(TOOLS, ToolChoice("none"), parallel=True) == ""
    assert render_tool_contract([], ToolChoice("auto"), parallel=True) == ""


def test_contract_allows_several_blocks_only_when_parallel():
    assert "several blocks" in render_tool_contract(TOOLS, ToolChoice("auto"), parallel=True)
    single = render_tool_contract(TOOLS, ToolChoice("auto"), parallel=False)
    assert "several blocks" not in single and "at most one tool" in single


def test_history_call_is_rendered_in_the_contract_format():
    assert render_tool_call("Bash", '{"command": "ls -la"}') == (
        '```json action\n{"tool": "Bash", "parameters": {"command":"ls -la"}}\n```'
    )
    assert render_tool_call("get_goal", "") == '```json action\n{"tool": "get_goal", "parameters": {}}\n```'


@pytest.mark.parametrize(
    "name, arguments",
    [
        ("Bash", '{"command": "cat <<EOF\\n```\\nx\\nEOF", "timeout": 5}'),
        ("Read", '{"file_path": "文档/说明.md"}'),
        ("Read", "{}"),
    ],
)
def test_rendered_history_call_reparses_to_the_same_call(name, arguments):
    tools = [ToolSpec("Bash"), ToolSpec("Read")]
    parser = ActionBlockParser(tools)
    events = parser.feed(render_tool_call(name, arguments)) + parser.close()
    assert [(event.name, json.loads(event.arguments)) for event in events] == [(name, json.loads(arguments))]


# --- schema ---------------------------------------------------------------------------------


def test_valid_arguments_pass():
    assert validate_arguments(BASH, {"command": "ls"}) is None


def test_invalid_arguments_name_the_problem_and_its_path():
    assert validate_arguments(BASH, {}) == "'command' is a required property"
    nested = ToolSpec("T", parameters={"type": "object", "properties": {"a": {"type": "array", "items": {"type": "integer"}}}})
    assert validate_arguments(nested, {"a": [1, "x"]}) == "a/1: 'x' is not of type 'integer'"


def test_draft7_schema_and_unknown_keywords_are_honoured():
    tool = ToolSpec(
        "T",
        parameters={
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "x-vendor-extension": True,
            "properties": {"n": {"type": "integer", "minimum": 1}},
        },
    )
    assert validate_arguments(tool, {"n": 2}) is None
    assert "less than the minimum" in validate_arguments(tool, {"n": 0})


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": {"type": "not-a-type"}}},
        {"type": "object", "properties": {"a": {"type": "string", "pattern": "[("}}},
        {"$ref": "https://example.invalid/schema.json"},
    ],
    ids=["bad type", "bad regex", "unresolvable remote ref"],
)
def test_a_broken_schema_means_no_validation(schema):
    assert validate_arguments(ToolSpec("T", parameters=schema), {"a": 1}) is None


def test_no_schema_means_no_validation():
    assert validate_arguments(ToolSpec("T"), {"anything": [1, 2]}) is None


# --- repair ---------------------------------------------------------------------------------

CALL_BASH = ToolCall(id="call_1", name="Bash", arguments='{"command":"ls"}')
UNKNOWN = RejectedBlock(raw='```json action\n{"tool": "Delete"}\n```', reason="unknown tool", tool="Delete")
INVALID = RejectedBlock(raw="...", reason="invalid arguments: 'command' is a required property", tool="Bash")


@pytest.mark.parametrize(
    "choice, calls, rejected, expected",
    [
        (ToolChoice("auto"), [], [], False),
        (ToolChoice("auto"), [], [UNKNOWN], False),
        (ToolChoice("none"), [], [], False),
        (ToolChoice("required"), [], [], True),
        (ToolChoice("required"), [], [INVALID], True),
        (ToolChoice("required"), [CALL_BASH], [UNKNOWN], False),
        (ToolChoice("named", "Bash"), [CALL_BASH], [], False),
        (ToolChoice("named", "Read"), [CALL_BASH], [], True),
        (ToolChoice("named", "Read"), [], [], True),
    ],
)
def test_needs_repair(choice, calls, rejected, expected):
    assert needs_repair(choice, calls, rejected) is expected


def test_repair_prompt_says_no_call_was_made_and_restates_the_format():
    text = repair_prompt(ToolChoice("required"), TOOLS, [])
    assert "no tool call" in text
    assert '```json action\n{"tool": "<name>", "parameters": {...}}\n```' in text
    assert "Allowed tool names: Bash, Read" in text
    assert "You must call at least one tool" in text


def test_repair_prompt_names_the_unknown_tool_and_the_schema_error():
    text = repair_prompt(ToolChoice("required"), TOOLS, [UNKNOWN, INVALID])
    assert 'unknown tool "Delete"' in text
    assert "invalid arguments: 'command' is a required property" in text
    assert 'Bash: {"type":"object"' in text  # the schema of the tool whose arguments failed


def test_repair_prompt_for_a_named_tool_allows_only_that_tool():
    text = repair_prompt(ToolChoice("named", "Read"), TOOLS, [], calls=[CALL_BASH])
    assert 'you called "Bash", but "Read" is required' in text
    assert "Allowed tool names: Read" in text
    assert 'You must call the tool "Read"' in text


def test_fallback_text_explains_the_failure():
    assert fallback_text([]).startswith("The model did not produce a valid tool call")
    text = fallback_text([UNKNOWN, INVALID])
    assert 'unknown tool "Delete"' in text and "'command' is a required property" in text
