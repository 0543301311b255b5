"""The tool contract rendered into the prompt, and the one action-block format (docs/features.md §6).

Lingma's `questionText` has no tools field, so the model is told to answer with fenced action blocks;
`tools/parser.py` turns them back into calls. History calls are rendered with `render_tool_call`, so
the transcript looks exactly like the model's own output.
"""

from __future__ import annotations

from ..model import ToolChoice, ToolSpec
from .jsontext import compact_json, loads_lenient

ACTION_INFO = "json action"
FENCE = "```"
FORMAT_EXAMPLE = f'{FENCE}{ACTION_INFO}\n{{"tool": "<name>", "parameters": {{...}}}}\n{FENCE}'


def render_tool_call(name: str, arguments_json: str) -> str:
    """One action block, as the model is asked to write it; arguments are re-serialised compactly."""
    try:
        arguments = loads_lenient(arguments_json) if arguments_json.strip() else {}
    except ValueError:
        arguments = arguments_json  # keep what the client sent rather than invent arguments
    body = f'{{"tool": {compact_json(name)}, "parameters": {compact_json(arguments)}}}'
    return f"{FENCE}{ACTION_INFO}\n{body}\n{FENCE}"


def render_tool_contract(tools: list[ToolSpec], choice: ToolChoice, parallel: bool) -> str:
    """The tool section of the prompt; empty when there are no tools or the choice is `none`."""
    if not tools or choice.mode == "none":
        return ""
    rules = [
        '- "tool" is one of the tool names below; "parameters" is a JSON object matching that tool\'s schema.',
        "- " + _parallel_rule(parallel),
        f"- Nothing may follow the last block: end your reply right after its closing {FENCE}.",
        "- Use exactly this format: no other fence label, no <tool_call> tags, no call described in prose.",
        "- Each call's result comes back in the next message, marked [Tool result: <name> #<n>].",
        "- " + _policy_rule(choice),
    ]
    parts = [
        "# Tools\n\nYou can call the tools listed below. To call a tool, reply with an action block "
        "in exactly this format:\n\n" + FORMAT_EXAMPLE,
        "\n".join(rules),
        "## Available tools",
    ]
    parts.extend(_render_tool(tool) for tool in tools)
    return "\n\n".join(parts)


def render_tool_schema(tool: ToolSpec) -> str:
    """The tool's parameter schema as compact JSON (the `$schema` URI is noise to the model)."""
    schema = {key: value for key, value in tool.parameters.items() if key != "$schema"}
    return compact_json(schema) if schema else "{}"


def _render_tool(tool: ToolSpec) -> str:
    lines = [f"### {tool.name}"]
    if tool.description.strip():
        lines.append(tool.description.strip())
    lines.append("Parameters (JSON schema): " + render_tool_schema(tool))
    return "\n".join(lines)


def _parallel_rule(parallel: bool) -> str:
    if parallel:
        return "One block per call. To make several independent calls at once, write several blocks one after another."
    return "Call at most one tool per reply: write a single block, then wait for its result."


def _policy_rule(choice: ToolChoice) -> str:
    if choice.mode == "required":
        return "You must call at least one tool in this reply."
    if choice.mode == "named":
        return f'You must call the tool "{choice.name}" in this reply, and no other tool.'
    return "Call a tool when it helps; otherwise answer in plain text, without any action block."
