"""OpenAI /v1/chat/completions requests → Conversation.

Choices made where the spec leaves room:
- `input_audio` and `file` content parts are a 400 (nothing upstream could read them); unknown
  part types too, as OpenAI does. `image_url` parts are kept for docs/features.md §6a.
- `response_format` json_object / json_schema adds a one-line instruction to `conv.system`.
- A legacy assistant `function_call` gets the id `legacy_call_<message index>`, and a later
  `role: "function"` result is linked to the newest such call of the same name.
- Sampling settings Lingma cannot apply (top_p, penalties, seed, logprobs) are type-checked as
  OpenAI checks them, then ignored. Fields of features Lingma lacks (audio, predicted outputs,
  web search, logit_bias, the legacy `functions`) are ignored unchecked, as are tool types and
  history tool calls other than "function", so that newer clients are never turned away.
- Tool-call arguments in the history may be omitted or sent as an object (fields.arguments_text).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..model import Conversation, Image, Message, ToolChoice, ToolSpec, ToolUse, image_from_url
from .fields import (
    arguments_text,
    as_list,
    as_object,
    as_str,
    invalid_value,
    join_text,
    json_output_instruction,
    link_tool_names,
    missing,
    mode_tool_choice,
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

_MAX_STOP_SEQUENCES = 4


@dataclass(slots=True)
class ChatOptions:
    """Request fields that shape the response but are not part of the conversation."""

    include_usage: bool = False


def decode_chat_request(body: Any) -> tuple[Conversation, ChatOptions]:
    body = require_body(body)
    model = as_str(required(body, "model", ""), "model")
    if opt_int(body, "n", "", minimum=1) not in (None, 1):
        raise invalid_value("n", "only n=1 is supported.")
    raw_messages = as_list(required(body, "messages", ""), "messages")
    if not raw_messages:
        raise invalid_value("messages", "expected a non-empty array.")
    messages = _decode_messages(raw_messages)
    tools = decode_function_tools(body)
    _check_unused_settings(body)
    legacy_max_tokens = opt_int(body, "max_tokens", "", minimum=1)
    max_tokens = opt_int(body, "max_completion_tokens", "", minimum=1)
    conv = Conversation(
        model=model,
        messages=link_tool_names(messages),
        system=_response_format_instruction(body),
        tools=tools,
        tool_choice=_decode_tool_choice(body.get("tool_choice"), tools),
        parallel_tool_calls=opt_bool(body, "parallel_tool_calls", "", True),
        max_tokens=legacy_max_tokens if max_tokens is None else max_tokens,
        stop=opt_str_list(body, "stop", "", min_items=1, max_items=_MAX_STOP_SEQUENCES),
        temperature=opt_number(body, "temperature", "", minimum=0, maximum=2),
        stream=opt_bool(body, "stream", "", False),
        affinity_key=opt_str(body, "user", ""),
    )
    stream_options = opt_object(body, "stream_options", "")
    return conv, ChatOptions(include_usage=opt_bool(stream_options, "include_usage", "stream_options", False))


def _check_unused_settings(body: dict) -> None:
    opt_number(body, "top_p", "", minimum=0, maximum=1)
    opt_number(body, "frequency_penalty", "", minimum=-2, maximum=2)
    opt_number(body, "presence_penalty", "", minimum=-2, maximum=2)
    opt_int(body, "seed", "", minimum=-(2**63), maximum=2**63)  # the spec's bounds, as it writes them
    opt_bool(body, "logprobs", "", False)
    opt_int(body, "top_logprobs", "", minimum=0, maximum=20)


def _decode_messages(raw_messages: list) -> list[Message]:
    messages: list[Message] = []
    for index, raw in enumerate(raw_messages):
        path = f"messages[{index}]"
        raw = as_object(raw, path)
        role = as_str(required(raw, "role", path), param_at(path, "role"))
        opt_str(raw, "name", path)
        if role in ("system", "developer", "user"):
            if raw.get("content") is None:
                raise missing(param_at(path, "content"))
            text, images = _content(raw["content"], param_at(path, "content"))
            messages.append(Message(role="user" if role == "user" else "system", text=text, images=images))
        elif role == "assistant":
            messages.append(_assistant(raw, path, index))
        elif role == "tool":
            call_id = as_str(required(raw, "tool_call_id", path), param_at(path, "tool_call_id"))
            text, images = _content(required(raw, "content", path), param_at(path, "content"))
            messages.append(Message(role="tool", text=text, tool_call_id=call_id, images=images))
        elif role == "function":
            name = as_str(required(raw, "name", path), param_at(path, "name"))
            if "content" not in raw:  # null is allowed: a function that returned nothing
                raise missing(param_at(path, "content"))
            text, images = _content(raw["content"], param_at(path, "content"))
            call_id = _newest_call_id(messages, name)
            messages.append(Message(role="tool", text=text, tool_call_id=call_id, tool_name=name, images=images))
        else:
            raise invalid_value(param_at(path, "role"), f"unsupported role '{role}'.")
    return messages


def _content(value: Any, param: str) -> tuple[str, list[Image]]:
    """Text and images of a string or a list of content parts."""
    if value is None:
        return "", []
    if isinstance(value, str):
        return value, []
    if not as_list(value, param):
        raise invalid_value(param, "expected a string or a non-empty array of content parts.")
    texts: list[str] = []
    images: list[Image] = []
    for index, part in enumerate(value):
        path = param_at(param, index)
        part = as_object(part, path)
        kind = as_str(required(part, "type", path), param_at(path, "type"))
        if kind in ("text", "refusal"):
            texts.append(as_str(required(part, kind, path), param_at(path, kind)))
        elif kind == "image_url":
            images.append(_image(part))
        elif kind in ("input_audio", "file"):
            raise invalid_value(param_at(path, "type"), f"'{kind}' content is not supported by this server.")
        else:
            raise invalid_value(param_at(path, "type"), f"unsupported content part type '{kind}'.")
    return join_text(texts), images


def _image(part: dict) -> Image:
    """`{"image_url": {"url": ...}}`, or leniently the bare URL string some clients send."""
    value = part.get("image_url")
    url = value.get("url") if isinstance(value, dict) else value
    return image_from_url(url) if isinstance(url, str) else Image()


def _assistant(raw: dict, path: str, index: int) -> Message:
    text, images = _content(raw.get("content"), param_at(path, "content"))
    opt_str(raw, "refusal", path)
    calls: list[ToolUse] = []
    for call_index, call in enumerate(opt_list(raw, "tool_calls", path)):
        call_path = param_at(param_at(path, "tool_calls"), call_index)
        call = as_object(call, call_path)
        if (opt_str(call, "type", call_path) or "function") != "function":
            continue
        function_path = param_at(call_path, "function")
        function = as_object(required(call, "function", call_path), function_path)
        calls.append(
            ToolUse(
                id=as_str(required(call, "id", call_path), param_at(call_path, "id")),
                name=as_str(required(function, "name", function_path), param_at(function_path, "name")),
                arguments=arguments_text(function.get("arguments"), param_at(function_path, "arguments")),
            )
        )
    if raw.get("function_call") is not None:
        legacy_path = param_at(path, "function_call")
        legacy = as_object(raw["function_call"], legacy_path)
        name = as_str(required(legacy, "name", legacy_path), param_at(legacy_path, "name"))
        arguments = arguments_text(legacy.get("arguments"), param_at(legacy_path, "arguments"))
        calls.append(ToolUse(id=f"legacy_call_{index}", name=name, arguments=arguments))
    return Message(role="assistant", text=text, tool_calls=calls, images=images)


def _newest_call_id(messages: list[Message], name: str) -> str | None:
    for message in reversed(messages):
        for call in reversed(message.tool_calls):
            if call.name == name:
                return call.id
    return None


def decode_function_tools(body: dict) -> list[ToolSpec]:
    """`tools` of function definitions, in the shape OpenAI chat and Ollama share."""
    tools: list[ToolSpec] = []
    for index, raw in enumerate(opt_list(body, "tools", "")):
        path = f"tools[{index}]"
        raw = as_object(raw, path)
        if (opt_str(raw, "type", path) or "function") != "function":
            continue
        function_path = param_at(path, "function")
        function = as_object(required(raw, "function", path), function_path)
        name = as_str(required(function, "name", function_path), param_at(function_path, "name"))
        if not name:
            raise invalid_value(param_at(function_path, "name"), "expected a non-empty string.")
        tools.append(
            ToolSpec(
                name=name,
                description=opt_str(function, "description", function_path) or "",
                parameters=opt_object(function, "parameters", function_path),
            )
        )
    return tools


def _decode_tool_choice(value: Any, tools: list[ToolSpec]) -> ToolChoice:
    if value is None:
        return ToolChoice()
    if isinstance(value, str):
        return mode_tool_choice(value, tools)
    choice = as_object(value, "tool_choice")
    if choice.get("type") != "function":
        raise invalid_value("tool_choice.type", "expected 'function'.")
    function = as_object(required(choice, "function", "tool_choice"), "tool_choice.function")
    name = as_str(required(function, "name", "tool_choice.function"), "tool_choice.function.name")
    return named_tool_choice(name, tools, "tool_choice")


def _response_format_instruction(body: dict) -> str:
    if body.get("response_format") is None:
        return ""
    response_format = as_object(body["response_format"], "response_format")
    kind = as_str(required(response_format, "type", "response_format"), "response_format.type")
    if kind == "text":
        return ""
    if kind == "json_object":
        return json_output_instruction(None)
    if kind == "json_schema":
        path = "response_format.json_schema"
        spec = as_object(required(response_format, "json_schema", "response_format"), path)
        as_str(required(spec, "name", path), param_at(path, "name"))
        opt_str(spec, "description", path)
        opt_bool(spec, "strict", path, False)
        return json_output_instruction(opt_object(spec, "schema", path) or None)
    raise invalid_value("response_format.type", f"unsupported response format '{kind}'.")
