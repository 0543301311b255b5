"""Reading tool calls out of one block body, in every shape the models actually write (docs/features.md §6).

Accepted shapes (the canonical one first):
  {"tool": N, "parameters": {...}}            the contract's format
  {"name": N, "arguments": {...} | "<json>"}  Qwen / OpenAI style, arguments possibly a JSON string
  {"function": {"name": N, "arguments": ...}} OpenAI tool_calls item (with "type"/"id" keys)
  {"function": N, "input": {...}}             any name key with any arguments key
  [call, call, ...]                           several calls in one block
  <tool_call>...</tool_call> segments         possibly wrapped in a fence
  <function=N><parameter=K>V</parameter>      Qwen3-Coder's XML call format
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..wire.conversation import ToolSpec
from .jsontext import loads_lenient

NAME_KEYS = ("tool", "name", "function", "tool_name")
ARGUMENT_KEYS = ("parameters", "arguments", "input", "args")
_IGNORED_KEYS = frozenset(("type", "id", "call_id"))
CALL_KEYS = frozenset(NAME_KEYS) | frozenset(ARGUMENT_KEYS) | _IGNORED_KEYS  # keys a call object may have

_TAG_SEGMENT = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.DOTALL)
_XML_FUNCTION = re.compile(r"<function=([^>\s]+)\s*>")
_XML_PARAMETER = re.compile(r"<parameter=([^>\s]+)\s*>\n?(.*?)\n?</parameter>", re.DOTALL)
_INNER_FENCE = re.compile(r"\A```[^\n{]*\n?(.*?)\n?```\Z", re.DOTALL)


class NotACall(ValueError):
    """The body is not a tool call object; the message says why."""


@dataclass(slots=True)
class CallRequest:
    """A call as the model wrote it, before the tool name and arguments are checked."""

    name: str
    arguments: dict
    explicit_arguments: bool  # an arguments key was present (a bare {"name": ...} may be prose JSON)


def read_calls(body: str, tools: dict[str, ToolSpec]) -> list[CallRequest]:
    """The calls in a block body; raises NotACall when it holds no call object at all."""
    text = _unwrap_fence(body.strip())
    if text.startswith("<tool_call>"):
        segments = [segment.strip() for segment in _TAG_SEGMENT.findall(text)]
        return [call for segment in segments for call in _read_segment(segment, tools)]
    return _read_segment(text, tools)


def _read_segment(text: str, tools: dict[str, ToolSpec]) -> list[CallRequest]:
    text = _unwrap_fence(text)
    if _XML_FUNCTION.match(text):
        return [_read_xml_call(text, tools)]
    try:
        value = loads_lenient(text)
    except ValueError as error:
        raise NotACall(f"invalid JSON: {error}") from None
    objects = value if isinstance(value, list) else [value]
    if not objects:
        raise NotACall("not a tool call object")
    return [_call_from_object(item) for item in objects]


def _unwrap_fence(text: str) -> str:
    match = _INNER_FENCE.match(text)
    return match.group(1).strip() if match else text


def _call_from_object(value: object) -> CallRequest:
    if not isinstance(value, dict):
        raise NotACall("not a tool call object")
    unknown = set(value) - CALL_KEYS
    if unknown:
        raise NotACall(f"not a tool call object (unexpected key {sorted(unknown)[0]!r})")
    holder = value
    if isinstance(value.get("function"), dict):  # OpenAI's {"type": "function", "function": {...}}
        holder = {**value, **value["function"]}
        holder.pop("function")
    name = next((holder[key] for key in NAME_KEYS if isinstance(holder.get(key), str)), None)
    if not name:
        raise NotACall("not a tool call object (no tool name)")
    argument_key = next((key for key in ARGUMENT_KEYS if key in holder), None)
    arguments = _arguments_object(holder[argument_key] if argument_key else None)
    return CallRequest(name=name, arguments=arguments, explicit_arguments=argument_key is not None)


def _arguments_object(raw: object) -> dict:
    if raw is None:
        return {}
    if isinstance(raw, str):
        if not raw.strip():
            return {}
        try:
            raw = loads_lenient(raw)
        except ValueError as error:
            raise NotACall(f"invalid JSON in arguments: {error}") from None
    if not isinstance(raw, dict):
        raise NotACall("arguments are not a JSON object")
    return raw


def _read_xml_call(text: str, tools: dict[str, ToolSpec]) -> CallRequest:
    name = _XML_FUNCTION.search(text).group(1)
    tool = tools.get(name)
    properties = (tool.parameters.get("properties") or {}) if tool else {}
    arguments = {
        key: _xml_value(value, properties.get(key) or {}) for key, value in _XML_PARAMETER.findall(text)
    }
    return CallRequest(name=name, arguments=arguments, explicit_arguments=True)


def _xml_value(raw: str, schema: object) -> object:
    """XML parameters are text; a non-string property gets its JSON value when the text is JSON."""
    if isinstance(schema, dict) and schema.get("type") == "string":
        return raw
    try:
        return loads_lenient(raw)
    except ValueError:
        return raw
