"""One corrective follow-up when a forced tool call is missing or invalid (docs/features.md §6).

Under `auto`, prose is a valid answer and is never repaired. Under `required` or a named tool, the
caller sends `repair_prompt(...)` as a reply in the same upstream session, before any tool bytes reach
the client; when the repaired answer still has no valid call, `fallback_text(...)` is the answer.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..events import ToolCall
from ..model import ToolChoice, ToolSpec
from .accept import RejectedBlock
from .contract import FORMAT_EXAMPLE, render_tool_schema


def needs_repair(choice: ToolChoice, calls: Sequence[ToolCall], rejected: Sequence[RejectedBlock]) -> bool:
    """True when a forced call is missing: no valid call, or (named) a call to another tool.

    `rejected` does not decide by itself: one valid call satisfies `required` even when the model
    also wrote a broken block, which is simply dropped.
    """
    if choice.mode == "required":
        return not calls
    if choice.mode == "named":
        return not calls or any(call.name != choice.name for call in calls)
    return False


def repair_prompt(
    choice: ToolChoice,
    tools: Sequence[ToolSpec],
    rejected: Sequence[RejectedBlock],
    calls: Sequence[ToolCall] = (),
) -> str:
    """The follow-up text: what was wrong, then the exact format and the allowed tool names."""
    problems = _problems(choice, rejected, calls)
    allowed = [choice.name] if choice.mode == "named" and choice.name else [tool.name for tool in tools]
    concerned = {choice.name} if choice.mode == "named" else {block.tool for block in rejected}
    schemas = [
        f"{tool.name}: {render_tool_schema(tool)}" for tool in tools if tool.name in concerned and tool.name in allowed
    ]
    requirement = (
        f'You must call the tool "{choice.name}".'
        if choice.mode == "named"
        else "You must call at least one tool."
    )
    lines = [
        "Your previous reply did not contain a valid tool call:",
        *(f"- {problem}" for problem in problems),
        "",
        f"{requirement} Reply again with only the action block(s), in exactly this format, "
        "and nothing after the last block:",
        "",
        FORMAT_EXAMPLE,
        "",
        "Allowed tool names: " + ", ".join(allowed),
    ]
    if schemas:
        lines += ["", "Parameter schemas:", *schemas]
    return "\n".join(lines)


def fallback_text(rejected: Sequence[RejectedBlock]) -> str:
    """The answer when the repair failed too: says why, rather than returning nothing."""
    if not rejected:
        return "The model did not produce a valid tool call: it answered without calling a tool."
    return "The model did not produce a valid tool call: " + "; ".join(_describe(block) for block in rejected) + "."


def _problems(choice: ToolChoice, rejected: Sequence[RejectedBlock], calls: Sequence[ToolCall]) -> list[str]:
    problems = [_describe(block) for block in rejected]
    if choice.mode == "named":
        wrong = [call.name for call in calls if call.name != choice.name]
        problems += [f'you called "{name}", but "{choice.name}" is required' for name in wrong]
    return problems or ["no tool call: the reply had no action block"]


def _describe(block: RejectedBlock) -> str:
    if block.reason == "unknown tool":
        return f'unknown tool "{block.tool}"'
    if block.tool:
        return f'{block.reason} (tool "{block.tool}")'
    return block.reason
