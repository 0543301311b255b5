"""Reading tool calls out of one block body, in every shape the models actually write (docs/features.md §6).

Accepted shapes (the canonical one first):
  {"tool": N, "parameters": {...}}            the contract's format
  {"name": N, "arguments": {...} | "<json>"}  Qwen / OpenAI style, arguments possibly a JSON string
  {"function": {"name": N, "arguments": ...}} OpenAI tool_calls item (with "type"/"id" keys)
  {"function": N, "input": {...}}             any name key with any arguments key
  [call, call, ...]                           several calls in one block
  <tool_call>...</tool_call> segments         possibly wrapped in a fence
  <function=N><parameter=K>V</parameter>      Qwen3-Coder's XML call format (tools/xml_calls.py)
  N<arg_key>K</arg_key><arg_value>V</arg_value> GLM's format, inside <tool_call> (tools/xml_calls.py)
The other families' own blocks are told apart and read in `tools/families.py`.
"""

from __future__ import annotations

import re

from ..model import ToolSpec
from .call_request import CallRequest, NotACall
from .jsontext import loads_lenient
from .xml_calls import GLM_CALL, read_function, read_glm

NAME_KEYS = ("tool", "name", "function", "tool_name")
ARGUMENT_KEYS = ("parameters", "arguments", "input", "args")
_IGNORED_KEYS = frozenset(("type", "id", "call_id"))
CALL_KEYS = frozenset(NAME_KEYS) | frozenset(ARGUMENT_KEYS) | _IGNORED_KEYS  # keys a call object may have

_TAG_SEGMENT = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.DOTALL)
_INNER_FENCE = re.compile(r"\A```[^\n{]*\n?(.*?)\n?```\Z", re.DOTALL)


def read_calls(body: str, tools: dict[str, ToolSpec]) -> list[CallRequest]:
    """The calls in a block body; raises NotACall when it holds no call object at all."""
    text = _unwrap_fence(body.strip())
    if text.startswith("<tool_call>"):
        segments = [segment.strip() for segment in _TAG_SEGMENT.findall(text)]
        return [call for segment in segments for call in _read_segment(segment, tools)]
    return _read_segment(text, tools)


def _read_segment(text: str, tools: dict[str, ToolSpec]) -> list[CallRequest]:
    text = _unwrap_fence(text)
    if text.startswith("<function="):
        return [read_function(text, tools)]
    if GLM_CALL.match(text):
        return [read_glm(text, tools)]
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
    arguments = arguments_object(holder[argument_key] if argument_key else None)
    return CallRequest(name=name, arguments=arguments, explicit_arguments=argument_key is not None)


def arguments_object(raw: object) -> dict:
    """A call's arguments as an object: a JSON object, its text, or nothing at all."""
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
