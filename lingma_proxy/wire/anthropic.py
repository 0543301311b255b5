"""Anthropic /v1/messages requests → Conversation.

Choices made where the spec leaves room:
- `tool_result` blocks become their own tool Messages, placed before the rest of that user turn.
- `thinking` / `redacted_thinking` blocks are dropped: they are the model's own reasoning.
- `document` blocks become "[document omitted]": Claude Code's Read tool returns PDFs as documents
  inside tool results, and a 400 would break the agent session for good. Other unknown block types
  (server tool results, search results, …) are ignored.
- `thinking` enabled/adaptive sets `conv.thinking`, except with `"display": "omitted"`, by which
  the client says it does not want to see the reasoning.
- Server tools (a `type` other than "custom") are ignored, as are `cache_control`,
  `defer_loading`, `context_management`, `output_config` and other unknown fields.
- `top_p` and `top_k`, which Lingma cannot apply, are type-checked as Anthropic checks them, then
  ignored. Thinking types newer than this proxy read as "no thinking"; system blocks other than
  text are ignored. Custom tools follow Anthropic's rules: a name of 1 to 128 [a-zA-Z0-9_-] and an
  object `input_schema`.
"""

from __future__ import annotations

import re
from typing import Any

from ..model import Conversation, Image, Message, ToolChoice, ToolSpec, ToolUse
from .fields import (
    as_list,
    as_object,
    as_str,
    invalid_value,
    join_text,
    link_tool_names,
    missing,
    named_tool_choice,
    opt_bool,
    opt_int,
    opt_list,
    opt_number,
    opt_object,
    opt_str,
    opt_str_list,
    param_at,
    require_body,
    required,
)
from .sse import dumps

DOCUMENT_PLACEHOLDER = "[document omitted]"
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,128}")
MAX_TOKENS_LIMIT = 1_000_000


def decode_messages_request(body: Any) -> Conversation:
    body = require_body(body)
    model = as_str(required(body, "model", ""), "model")
    max_tokens = opt_int(body, "max_tokens", "", minimum=1, maximum=MAX_TOKENS_LIMIT)
    if max_tokens is None:
        raise missing("max_tokens")
    raw_messages = as_list(required(body, "messages", ""), "messages")
    if not raw_messages:
        raise invalid_value("messages", "expected a non-empty array.")
    messages: list[Message] = []
    for index, raw in enumerate(raw_messages):
        messages.extend(_decode_message(raw, f"messages[{index}]"))
    tools = _decode_tools(body)
    tool_choice, parallel_tool_calls = _decode_tool_choice(body.get("tool_choice"), tools)
    opt_number(body, "top_p", "", minimum=0, maximum=1)
    opt_int(body, "top_k", "", minimum=0)
    return Conversation(
        model=model,
        messages=link_tool_names(messages),
        system=_decode_system(body.get("system")),
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=parallel_tool_calls,
        max_tokens=max_tokens,
        stop=opt_str_list(body, "stop_sequences", "", single=False),
        temperature=opt_number(body, "temperature", "", minimum=0, maximum=1),
        stream=opt_bool(body, "stream", "", False),
        thinking=_wants_thinking(body),
        affinity_key=opt_str(opt_object(body, "metadata", ""), "user_id", "metadata"),
    )


def _decode_message(raw: Any, path: str) -> list[Message]:
    """One API message; a user turn with tool results yields the tool Messages first."""
    raw = as_object(raw, path)
    role = as_str(required(raw, "role", path), param_at(path, "role"))
    if role not in ("user", "assistant", "system"):
        raise invalid_value(param_at(path, "role"), f"unsupported role '{role}'.")
    content = required(raw, "content", path)
    if isinstance(content, str):
        return [Message(role=role, text=content)]
    content_path = param_at(path, "content")
    texts: list[str] = []
    images: list[Image] = []
    calls: list[ToolUse] = []
    results: list[Message] = []
    for index, block in enumerate(as_list(content, content_path)):
        block_path = param_at(content_path, index)
        block = as_object(block, block_path)
        kind = as_str(required(block, "type", block_path), param_at(block_path, "type"))
        if kind == "tool_use":
            _require_role(role, "assistant", kind, block_path)
            calls.append(_tool_use(block, block_path))
        elif kind == "tool_result":
            _require_role(role, "user", kind, block_path)
            results.append(_tool_result(block, block_path))
        else:
            _read_block(kind, block, block_path, texts, images)
    if role == "assistant":
        return [Message(role="assistant", text=join_text(texts), tool_calls=calls, images=images)]
    if texts or images or not results:
        results.append(Message(role=role, text=join_text(texts), images=images))
    return results


def _read_block(kind: str, block: dict, path: str, texts: list[str], images: list[Image]) -> None:
    """Collect a content block's text into `texts` and its image into `images`."""
    if kind == "text":
        texts.append(as_str(required(block, "text", path), param_at(path, "text")))
    elif kind == "image":
        images.append(_image(block.get("source")))
    elif kind == "document":
        texts.append(DOCUMENT_PLACEHOLDER)


def _image(source: Any) -> Image:
    """`{"type": "base64", "media_type", "data"}` or `{"type": "url", "url"}`; anything else is a placeholder."""
    if not isinstance(source, dict):
        return Image()
    if source.get("type") == "base64" and isinstance(source.get("data"), str):
        return Image(media_type=str(source.get("media_type") or ""), data=source["data"])
    if source.get("type") == "url" and isinstance(source.get("url"), str):
        return Image(url=source["url"])
    return Image()


def _require_role(role: str, expected: str, kind: str, path: str) -> None:
    if role != expected:
        raise invalid_value(param_at(path, "type"), f"'{kind}' blocks belong in {expected} messages.")


def _tool_use(block: dict, path: str) -> ToolUse:
    arguments = block.get("input")
    return ToolUse(
        id=as_str(required(block, "id", path), param_at(path, "id")),
        name=as_str(required(block, "name", path), param_at(path, "name")),
        arguments=dumps({} if arguments is None else as_object(arguments, param_at(path, "input"))),
    )


def _tool_result(block: dict, path: str) -> Message:
    call_id = as_str(required(block, "tool_use_id", path), param_at(path, "tool_use_id"))
    content = block.get("content")
    content_path = param_at(path, "content")
    texts: list[str] = []
    images: list[Image] = []
    if isinstance(content, str):
        texts.append(content)
    elif content is not None:
        for index, inner in enumerate(as_list(content, content_path)):
            inner_path = param_at(content_path, index)
            inner = as_object(inner, inner_path)
            kind = as_str(required(inner, "type", inner_path), param_at(inner_path, "type"))
            _read_block(kind, inner, inner_path, texts, images)
    return Message(
        role="tool",
        text=join_text(texts),
        tool_call_id=call_id,
        is_error=opt_bool(block, "is_error", path, False),
        images=images,
    )


def _decode_system(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    texts: list[str] = []
    for index, block in enumerate(as_list(value, "system")):
        path = param_at("system", index)
        block = as_object(block, path)
        if as_str(required(block, "type", path), param_at(path, "type")) == "text":
            texts.append(as_str(required(block, "text", path), param_at(path, "text")))
    return join_text(texts)


def _decode_tools(body: dict) -> list[ToolSpec]:
    tools: list[ToolSpec] = []
    for index, raw in enumerate(opt_list(body, "tools", "")):
        path = f"tools[{index}]"
        raw = as_object(raw, path)
        if opt_str(raw, "type", path) not in (None, "custom"):
            continue
        name = as_str(required(raw, "name", path), param_at(path, "name"))
        if not _TOOL_NAME.fullmatch(name):
            raise invalid_value(param_at(path, "name"), "expected 1 to 128 letters, digits, '_' or '-'.")
        tools.append(
            ToolSpec(
                name=name,
                description=opt_str(raw, "description", path) or "",
                parameters=_input_schema(raw, path),
            )
        )
    return tools


def _input_schema(tool: dict, path: str) -> dict:
    """The tool's JSON schema, whose top level Anthropic requires to describe an object."""
    schema = as_object(required(tool, "input_schema", path), param_at(path, "input_schema"))
    path = param_at(path, "input_schema")
    if schema.get("type") != "object":
        raise invalid_value(param_at(path, "type"), "expected 'object'.")
    opt_object(schema, "properties", path)
    opt_str_list(schema, "required", path, single=False)
    return schema


def _decode_tool_choice(value: Any, tools: list[ToolSpec]) -> tuple[ToolChoice, bool]:
    """The choice, and whether parallel calls are allowed (`disable_parallel_tool_use`)."""
    if value is None:
        return ToolChoice(), True
    choice = as_object(value, "tool_choice")
    kind = as_str(required(choice, "type", "tool_choice"), "tool_choice.type")
    parallel = not opt_bool(choice, "disable_parallel_tool_use", "tool_choice", False)
    if kind in ("auto", "none"):
        return ToolChoice(mode=kind), parallel
    if kind == "any":
        if not tools:
            raise invalid_value("tool_choice", "'any' needs at least one tool in 'tools'.")
        return ToolChoice(mode="required"), parallel
    if kind == "tool":
        name = as_str(required(choice, "name", "tool_choice"), "tool_choice.name")
        return named_tool_choice(name, tools, "tool_choice.name"), parallel
    raise invalid_value("tool_choice.type", "expected 'auto', 'any', 'tool' or 'none'.")


def _wants_thinking(body: dict) -> bool:
    """Whether to show reasoning; thinking types newer than this proxy read as "no"."""
    if body.get("thinking") is None:
        return False
    thinking = as_object(body["thinking"], "thinking")
    kind = as_str(required(thinking, "type", "thinking"), "thinking.type")
    return kind in ("enabled", "adaptive") and opt_str(thinking, "display", "thinking") != "omitted"
