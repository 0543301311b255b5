"""One renderer for all three APIs: a Conversation becomes Lingma's single `questionText`.

`chat/ask` has no system or tools field (docs/protocol.md §5), so the system prompt, the tool
contract and the transcript are rendered into one string, with a role marker before every turn:

    [System]
    <system prompt, then system/developer messages that lead the history>

    <tool contract (tools/contract.py), when tools are declared and tool_choice is not none>

    [User]
    <text>

    [Assistant]
    <text, then each call as the action block the model itself would write>

    [Tool result: Bash #1 (error)]
    <the result, verbatim>

    [Assistant]

A conversation that is a single user message with no system prompt and no tools is sent as its bare
text: that is how Lingma's own clients ask.

Session reuse (docs/features.md §3), the recipe for sessions.py:
  1. `start = delta_start(conv)`; when it is not None, the key is a hash of the API key and
     `render_prefix_for_key(conv, start)`. A hit is sent `render_turn(conv, start)` with isReply.
  2. A miss (or start None) sends `render_prompt(conv)` in a new session.
  3. After a successful turn, store the session under a hash of the API key and
     `render_prefix_after_reply(conv, answer_text, calls)`: the next request's step 1 computes the
     same text when the client echoes this reply back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from .events import ToolCall
from .model import Conversation, Image, Message, ToolUse
from .tools.contract import render_tool_call, render_tool_contract
from .tools.jsontext import compact_json, loads_lenient

SYSTEM_MARKER = "[System]"
USER_MARKER = "[User]"
ASSISTANT_MARKER = "[Assistant]"
IMAGE_PLACEHOLDER = "[image omitted]"
IMAGE_ATTACHED = "[image attached]"  # the image itself travels beside the text (agent dialect, §9)
_KEY_VERSION = 1  # bump when the key text changes shape, so old entries simply miss

_CallIndex = dict[str, tuple[int, str]]  # tool-call id -> (1-based order in the conversation, tool name)


def render_prompt(conv: Conversation, attach_images: bool = False) -> str:
    """The full question text for a new upstream session.

    With `attach_images`, the newest turn's images are marked as attached rather than omitted: the
    caller sends them as prompt parts."""
    attached = _newest_turn(conv) if attach_images else _NOTHING_ATTACHED
    lead = _leading_system_count(conv.messages)
    system = _join_paragraphs([conv.system, *(message.text for message in conv.messages[:lead])])
    contract = _contract(conv)
    messages = conv.messages[lead:]
    if not system and not contract and len(messages) == 1 and messages[0].role == "user":
        return _bare(messages[0], attached)
    header = _join_paragraphs([system, contract])
    blocks = [f"{SYSTEM_MARKER}\n{header}"] if header else []
    return _transcript(blocks, messages, _index_calls(conv.messages), attached)


def render_turn(conv: Conversation, start: int, attach_images: bool = False) -> str:
    """The delta for a reused session: messages[start:] only, without system prompt or contract."""
    attached = _newest_turn(conv) if attach_images else _NOTHING_ATTACHED
    messages = conv.messages[start:]
    if len(messages) == 1 and messages[0].role == "user" and _is_plain_chat(conv):
        return _bare(messages[0], attached)  # the session began with a bare question: keep asking that way
    return _transcript([], messages, _index_calls(conv.messages), attached)


def newest_turn_images(conv: Conversation) -> list[Image]:
    """The images of the newest turn's user messages: the only ones the agent dialect can forward
    (docs/features.md §6a). The newest turn is everything after the last assistant message, so an image
    the user sent before a run of tool calls is history by the time the tool results come back."""
    return [image for message in _newest_user_messages(conv) for image in message.images]


def delta_start(conv: Conversation) -> int | None:
    """Where a reused session's delta begins: just after the last assistant message.

    None when there is no assistant message, or nothing after it (an assistant prefill): such a
    request cannot continue a stored session.
    """
    for index in range(len(conv.messages) - 1, -1, -1):
        if conv.messages[index].role == "assistant":
            return index + 1 if index + 1 < len(conv.messages) else None
    return None


def render_prefix_for_key(conv: Conversation, end: int) -> str:
    """Canonical text of what a session's meaning depends on, for the session-cache key.

    Covers the model, the system prompt, the tools (name, description, schema), tool_choice and
    parallel_tool_calls, and messages[:end]. It is the same whichever API the conversation came
    from: leading system messages are folded into the system prompt (OpenAI sends the system prompt
    as a message, Anthropic as a field), tool-call ids are replaced by their order in the
    conversation (call_… vs toolu_…), arguments are re-serialised with sorted keys, and runs of
    whitespace collapse (clients re-join text blocks differently). The API key is not in it: the
    caller hashes it in.
    """
    messages = conv.messages[:end]
    lead = _leading_system_count(messages)
    system = _join_paragraphs([conv.system, *(message.text for message in messages[:lead])])
    calls = _index_calls(conv.messages)
    tools = [
        [tool.name, _squash(tool.description), compact_json(tool.parameters, sort_keys=True)] for tool in conv.tools
    ]
    choice = [conv.tool_choice.mode, conv.tool_choice.name] if conv.tools else None
    parallel = conv.parallel_tool_calls if conv.tools else None
    canonical = [
        _KEY_VERSION,
        conv.model,
        _squash(system),
        tools,
        choice,
        parallel,
        [_key_message(message, calls) for message in messages[lead:]],
    ]
    return compact_json(canonical)


def render_prefix_after_reply(conv: Conversation, reply_text: str, calls: Sequence[ToolCall]) -> str:
    """The key text to store after a successful turn: the conversation plus the assistant reply."""
    reply = Message(
        role="assistant",
        text=reply_text,
        tool_calls=[ToolUse(id=call.id, name=call.name, arguments=call.arguments) for call in calls],
    )
    extended = replace(conv, messages=[*conv.messages, reply])
    return render_prefix_for_key(extended, len(extended.messages))


# --- rendering ------------------------------------------------------------------------------


def _contract(conv: Conversation) -> str:
    return render_tool_contract(conv.tools, conv.tool_choice, conv.parallel_tool_calls)


_NOTHING_ATTACHED: frozenset[int] = frozenset()


def _newest_user_messages(conv: Conversation) -> list[Message]:
    start = next((i + 1 for i in range(len(conv.messages) - 1, -1, -1) if conv.messages[i].role == "assistant"), 0)
    return [message for message in conv.messages[start:] if message.role == "user"]


def _newest_turn(conv: Conversation) -> frozenset[int]:
    """Identities of the newest turn's user messages (a Message is unhashable; they live as long as conv)."""
    return frozenset(id(message) for message in _newest_user_messages(conv))


def _image_markers(message: Message, attached: frozenset[int]) -> list[str]:
    return [IMAGE_ATTACHED if id(message) in attached else IMAGE_PLACEHOLDER] * len(message.images)


def _transcript(blocks: list[str], messages: Sequence[Message], calls: _CallIndex, attached: frozenset[int]) -> str:
    for message in messages:
        block = _render_message(message, calls, attached)
        if block is not None:
            blocks.append(block)
    if messages and messages[-1].role == "assistant":
        return "\n\n".join(blocks)  # a prefill: the model continues the assistant's own text
    blocks.append(f"{ASSISTANT_MARKER}\n")
    return "\n\n".join(blocks)


def _render_message(message: Message, calls: _CallIndex, attached: frozenset[int]) -> str | None:
    if message.role == "tool":
        return _render_tool_result(message, calls)
    parts = [message.text.strip()] if message.text.strip() else []
    parts += [render_tool_call(call.name, call.arguments) for call in message.tool_calls]
    parts += _image_markers(message, attached)
    if not parts:
        return None
    marker = {"system": SYSTEM_MARKER, "user": USER_MARKER, "assistant": ASSISTANT_MARKER}[message.role]
    return marker + "\n" + "\n\n".join(parts)


def _render_tool_result(message: Message, calls: _CallIndex) -> str:
    order, name = calls.get(message.tool_call_id or "", (None, message.tool_name or "unknown tool"))
    label = f"{name} #{order}" if order is not None else name
    if message.is_error:
        label += " (error)"
    body = "\n".join([message.text, *_image_markers(message, _NOTHING_ATTACHED)]) if message.images else message.text
    return f"[Tool result: {label}]\n{body if body else '(no output)'}"


def _bare(message: Message, attached: frozenset[int]) -> str:
    return "\n".join([message.text, *_image_markers(message, attached)]) if message.images else message.text


def _is_plain_chat(conv: Conversation) -> bool:
    if conv.system.strip() or _contract(conv):
        return False
    return all(message.role in ("user", "assistant") and not message.tool_calls for message in conv.messages)


def _leading_system_count(messages: Sequence[Message]) -> int:
    count = 0
    while count < len(messages) and messages[count].role == "system":
        count += 1
    return count


def _index_calls(messages: Sequence[Message]) -> _CallIndex:
    calls: _CallIndex = {}
    order = 0
    for message in messages:
        for call in message.tool_calls:
            order += 1
            calls.setdefault(call.id, (order, call.name))
    return calls


def _join_paragraphs(texts: Sequence[str]) -> str:
    return "\n\n".join(text.strip() for text in texts if text.strip())


# --- session key ----------------------------------------------------------------------------


def _key_message(message: Message, calls: _CallIndex) -> list:
    order = calls.get(message.tool_call_id, (None,))[0] if message.role == "tool" else None
    own_calls = [[calls[call.id][0], call.name, _canonical_arguments(call.arguments)] for call in message.tool_calls]
    return [message.role, _squash(message.text), own_calls, order, message.is_error, len(message.images)]


def _canonical_arguments(arguments: str) -> str:
    try:
        return compact_json(loads_lenient(arguments) if arguments.strip() else {}, sort_keys=True)
    except ValueError:
        return arguments.strip()


def _squash(text: str) -> str:
    return " ".join(text.split())
