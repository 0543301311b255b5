"""OpenAI /v1/responses requests → Conversation (the store behind `previous_response_id` is the caller's).

Choices made where the spec leaves room (Codex evolves fast, so this side is lenient):
- Unknown input item types and content part types are ignored; `reasoning` items are dropped.
- `input_file` parts become "[file omitted]" (a tool output may carry one; a 400 would end the
  agent session for good); `input_image` parts are kept for docs/features.md §6a.
- Unknown tool types (`namespace`, `web_search`, …) are ignored and listed in
  `ResponsesOptions.ignored_tool_types` so that the handler can log them.
- With `previous_response_id`, the stored messages (that response's input and output) come first;
  `instructions` are not carried over, as OpenAI documents.
- `text.format` json_object / json_schema adds a one-line instruction to `conv.system`.
- Settings Lingma cannot apply (sampling, reasoning, verbosity) are type-checked as the Open
  Responses spec types them and reported back in the Response object, not applied. Reasoning
  effort and summary take any string, so that values newer than the spec still pass.
- Tool and function names follow OpenAI's rule (1 to 64 of [a-zA-Z0-9_-]); call ids must be
  non-empty; every input item needs its content (or output) and every content part its type.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import bad_request
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
    param_at,
    require_body,
    required,
)

FILE_PLACEHOLDER = "[file omitted]"
# OpenAI rejects a smaller budget, and the Open Responses spec sets the same minimum.
MIN_OUTPUT_TOKENS = 16
_MAX_KEY_LENGTH = 64  # prompt_cache_key, safety_identifier, metadata keys
_VERBOSITIES = ("low", "medium", "high")
_FUNCTION_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_MAX_METADATA_PAIRS = 16
_MAX_METADATA_VALUE_LENGTH = 512


@dataclass(slots=True)
class ResponsesOptions:
    """Request fields echoed in the Response object or steering storage, outside the conversation."""

    store: bool = True
    previous_response_id: str | None = None
    instructions: str | None = None
    tools: list[dict] = field(default_factory=list)  # the function tools, as the Response echoes them
    reasoning: dict | None = None
    text: dict = field(default_factory=lambda: {"format": {"type": "text"}})
    metadata: dict = field(default_factory=dict)
    ignored_tool_types: list[str] = field(default_factory=list)
    # Request settings the Response object reports back; Lingma has no sampling controls, so these
    # say what the client asked for (or the API's default), not how Lingma sampled.
    echo: dict = field(default_factory=lambda: dict(ECHO_DEFAULTS))


ECHO_DEFAULTS: dict = {
    "top_p": 1.0,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
    "top_logprobs": 0,
    "max_tool_calls": None,
    "safety_identifier": None,
    "prompt_cache_key": None,
}


def decode_responses_request(
    body: Any, stored: Callable[[str], list[Message] | None]
) -> tuple[Conversation, ResponsesOptions]:
    """`stored` looks up the conversation through a previous response (the caller owns the store)."""
    body = require_body(body)
    model = as_str(required(body, "model", ""), "model")
    previous_id = opt_str(body, "previous_response_id", "")
    messages: list[Message] = []
    if previous_id is not None:
        previous = stored(previous_id)
        if previous is None:
            raise bad_request(
                f"Previous response with id '{previous_id}' not found.",
                "previous_response_id",
                "previous_response_not_found",
            )
        messages = previous
    if body.get("input") is None and not messages:
        raise missing("input")
    _decode_input(body.get("input"), messages)
    if not messages:
        raise invalid_value("input", "expected at least one input item.")
    tools, echoed_tools, ignored_tool_types = _decode_tools(body)
    instructions = opt_str(body, "instructions", "")
    format_instruction, text_report = _decode_text(body)
    options = ResponsesOptions(
        store=opt_bool(body, "store", "", True),
        previous_response_id=previous_id,
        instructions=instructions,
        tools=echoed_tools,
        reasoning=_decode_reasoning(body),
        text=text_report,
        metadata=_decode_metadata(body),
        ignored_tool_types=ignored_tool_types,
        echo=_decode_echo(body),
    )
    conv = Conversation(
        model=model,
        messages=link_tool_names(messages),
        system=join_text([instructions or "", format_instruction]),
        tools=tools,
        tool_choice=_decode_tool_choice(body.get("tool_choice"), tools),
        parallel_tool_calls=opt_bool(body, "parallel_tool_calls", "", True),
        max_tokens=opt_int(body, "max_output_tokens", "", minimum=MIN_OUTPUT_TOKENS),
        temperature=opt_number(body, "temperature", "", minimum=0, maximum=2),
        stream=opt_bool(body, "stream", "", False),
        affinity_key=opt_str(body, "prompt_cache_key", "") or opt_str(body, "user", ""),
    )
    return conv, options


def _decode_metadata(body: dict) -> dict:
    """Up to 16 string pairs, as OpenAI takes them; they are echoed in the Response object."""
    metadata = opt_object(body, "metadata", "")
    if len(metadata) > _MAX_METADATA_PAIRS:
        raise invalid_value("metadata", f"expected at most {_MAX_METADATA_PAIRS} pairs, but got {len(metadata)}.")
    for key in metadata:
        if len(key) > _MAX_KEY_LENGTH:
            raise invalid_value("metadata", f"keys are at most {_MAX_KEY_LENGTH} characters long.")
        opt_str(metadata, key, "metadata", max_length=_MAX_METADATA_VALUE_LENGTH)
    return metadata


def _decode_echo(body: dict) -> dict:
    """The settings in ECHO_DEFAULTS, checked as the spec types them; absent ones keep their default."""
    read = {
        "top_p": opt_number(body, "top_p", "", minimum=0, maximum=1),
        "presence_penalty": opt_number(body, "presence_penalty", "", minimum=-2, maximum=2),
        "frequency_penalty": opt_number(body, "frequency_penalty", "", minimum=-2, maximum=2),
        "top_logprobs": opt_int(body, "top_logprobs", "", minimum=0, maximum=20),
        "max_tool_calls": opt_int(body, "max_tool_calls", "", minimum=1),
        "safety_identifier": opt_str(body, "safety_identifier", "", max_length=_MAX_KEY_LENGTH),
        "prompt_cache_key": opt_str(body, "prompt_cache_key", "", max_length=_MAX_KEY_LENGTH),
    }
    return ECHO_DEFAULTS | {key: value for key, value in read.items() if value is not None}


def _decode_input(value: Any, messages: list[Message]) -> None:
    """Append the messages of `input` (a string or a list of items) to `messages`."""
    if value is None:
        return
    if isinstance(value, str):
        messages.append(Message(role="user", text=value))
        return
    for index, item in enumerate(as_list(value, "input")):
        path = f"input[{index}]"
        item = as_object(item, path)
        kind = opt_str(item, "type", path) or "message"
        if kind == "message":
            messages.append(_message_item(item, path))
        elif kind == "function_call":
            _append_function_call(item, path, messages)
        elif kind == "function_call_output":
            call_id = _call_id(item, path)
            text, images = _content(required(item, "output", path), param_at(path, "output"))
            messages.append(Message(role="tool", text=text, tool_call_id=call_id, images=images))
        # `reasoning` items (the model's own earlier thinking) and unknown item types are dropped.


def _message_item(item: dict, path: str) -> Message:
    role = as_str(required(item, "role", path), param_at(path, "role"))
    if role not in ("user", "assistant", "system", "developer"):
        raise invalid_value(param_at(path, "role"), f"unsupported role '{role}'.")
    text, images = _content(required(item, "content", path), param_at(path, "content"))
    return Message(role="system" if role == "developer" else role, text=text, images=images)


def _append_function_call(item: dict, path: str, messages: list[Message]) -> None:
    """A call the client echoes back joins the assistant message right before it, if any."""
    call = ToolUse(
        id=_call_id(item, path),
        name=_function_name(item, path),
        arguments=arguments_text(item.get("arguments"), param_at(path, "arguments")),
    )
    if messages and messages[-1].role == "assistant":
        messages[-1].tool_calls.append(call)
    else:
        messages.append(Message(role="assistant", tool_calls=[call]))


def _content(value: Any, param: str) -> tuple[str, list[Image]]:
    if isinstance(value, str):
        return value, []
    texts: list[str] = []
    images: list[Image] = []
    for index, part in enumerate(as_list(value, param)):
        path = param_at(param, index)
        part = as_object(part, path)
        kind = as_str(required(part, "type", path), param_at(path, "type"))
        if kind in ("input_text", "output_text"):
            texts.append(as_str(required(part, "text", path), param_at(path, "text")))
        elif kind == "refusal":
            texts.append(as_str(required(part, "refusal", path), param_at(path, "refusal")))
        elif kind == "input_image":
            url = part.get("image_url")  # a file_id image has no bytes here: it can only be a placeholder
            images.append(image_from_url(url) if isinstance(url, str) else Image())
        elif kind == "input_file":
            texts.append(FILE_PLACEHOLDER)
    return join_text(texts), images


def _decode_tools(body: dict) -> tuple[list[ToolSpec], list[dict], list[str]]:
    """The declared function tools, their echo for the Response object, and the ignored types."""
    tools: list[ToolSpec] = []
    echoed: list[dict] = []
    ignored: list[str] = []
    for index, raw in enumerate(opt_list(body, "tools", "")):
        path = f"tools[{index}]"
        raw = as_object(raw, path)
        kind = as_str(required(raw, "type", path), param_at(path, "type"))
        if kind != "function":
            ignored.append(kind)
            continue
        name = _function_name(raw, path)
        spec = ToolSpec(
            name=name,
            description=opt_str(raw, "description", path) or "",
            parameters=opt_object(raw, "parameters", path),
        )
        tools.append(spec)
        opt_bool(raw, "strict", path, False)  # checked, then echoed as sent (null when absent)
        echoed.append(
            {
                "type": "function",
                "name": name,
                "description": spec.description,
                "parameters": spec.parameters,
                "strict": raw.get("strict"),
            }
        )
    return tools, echoed, ignored


def _call_id(item: dict, path: str) -> str:
    call_id = as_str(required(item, "call_id", path), param_at(path, "call_id"))
    if not call_id:
        raise invalid_value(param_at(path, "call_id"), "expected a non-empty string.")
    return call_id


def _function_name(obj: dict, path: str) -> str:
    """A function name as OpenAI takes it: 1 to 64 letters, digits, '_' or '-'."""
    name = as_str(required(obj, "name", path), param_at(path, "name"))
    if not _FUNCTION_NAME.fullmatch(name):
        raise invalid_value(param_at(path, "name"), "expected 1 to 64 letters, digits, '_' or '-'.")
    return name


def _decode_tool_choice(value: Any, tools: list[ToolSpec]) -> ToolChoice:
    if value is None:
        return ToolChoice()
    if isinstance(value, str):
        return mode_tool_choice(value, tools)
    choice = as_object(value, "tool_choice")
    if choice.get("type") != "function":
        raise invalid_value("tool_choice.type", "only function tools can be chosen on this server.")
    return named_tool_choice(as_str(required(choice, "name", "tool_choice"), "tool_choice.name"), tools, "tool_choice")


def _decode_text(body: dict) -> tuple[str, dict]:
    """`text`: the JSON-mode instruction for conv.system, and the `text` the Response reports.

    The report echoes the json_schema format as sent (the spec requires its `schema` object, even
    when empty), and a verbosity only when it is one the spec knows (Lingma applies none).
    """
    text = opt_object(body, "text", "")
    text_format = opt_object(text, "format", "text")
    kind = opt_str(text_format, "type", "text.format") or "text"
    verbosity = opt_str(text, "verbosity", "text")
    report: dict = {"format": {"type": "text"}} | ({"verbosity": verbosity} if verbosity in _VERBOSITIES else {})
    if kind == "text":
        return "", report
    if kind == "json_object":
        return json_output_instruction(None), report | {"format": {"type": "json_object"}}
    if kind != "json_schema":
        raise invalid_value("text.format.type", f"unsupported text format '{kind}'.")
    name = as_str(required(text_format, "name", "text.format"), "text.format.name")
    schema = opt_object(text_format, "schema", "text.format")
    strict = opt_bool(text_format, "strict", "text.format", False)
    description = opt_str(text_format, "description", "text.format")
    report["format"] = {
        "type": "json_schema",
        "name": name,
        "description": description,
        "schema": schema,
        "strict": strict,
    }
    return json_output_instruction(schema or None), report


def _decode_reasoning(body: dict) -> dict | None:
    """The reasoning settings as sent (Lingma applies none); any string is taken for newer values."""
    reasoning = opt_object(body, "reasoning", "")
    opt_str(reasoning, "effort", "reasoning")
    opt_str(reasoning, "summary", "reasoning")
    return reasoning or None
