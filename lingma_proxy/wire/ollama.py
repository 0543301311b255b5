"""Ollama /api/chat and /api/generate requests → Conversation.

Choices made where Ollama's API leaves room or Lingma cannot follow it:
- `model` may be `name:tag`; the handler looks up the whole name first, then the name without its tag
  (model_names), since every Lingma model has just one version.
- Ollama's tool calls carry no id. History calls get `call_<message>_<call>` unless the client echoes
  the `id` this proxy sent; a tool result is linked by `tool_call_id` when given, else by `tool_name`,
  else to the next unanswered call of the assistant message before it.
- `format` ("json" or a JSON schema) adds a one-line instruction to `conv.system`, as OpenAI's
  `response_format` does: Lingma has no constrained decoding.
- `think` (a boolean, or "low"/"medium"/"high") asks to see the reasoning in `thinking`.
- Of `options`, `num_predict` (> 0; -1 and -2 mean no limit) and `stop` are applied. `num_ctx` is
  checked but not applied: the model's context window is fixed by Lingma, and the prompt is never cut
  to fit a smaller one (clients send small defaults such as 2048). Sampling options are ignored, as
  Ollama ignores options a model does not use.
- Images are base64 strings (a `data:` URL is accepted too); the media type is read from the bytes.
- /api/generate: `raw` sends the prompt verbatim, without `system`. `suffix` (fill-in-the-middle) is a
  400: Lingma's chat models take no suffix. `template` and `context` are ignored; `keep_alive` too.
"""

from __future__ import annotations

import base64
import binascii
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
    missing,
    opt_bool,
    opt_int,
    opt_list,
    opt_object,
    opt_str,
    opt_str_list,
    param_at,
    require_body,
    required,
)
from .openai_chat import decode_function_tools

_THINK_LEVELS = ("low", "medium", "high")
# The first base64 characters of each image format's magic bytes.
_MAGIC = (("iVBORw0KGgo", "image/png"), ("/9j/", "image/jpeg"), ("R0lGOD", "image/gif"), ("UklGR", "image/webp"))


def model_names(requested: str) -> list[str]:
    """The names to look up, best first: as sent, then without a `:tag` (`qwen3-coder:latest`)."""
    base, colon, tag = requested.rpartition(":")
    if colon and base and "/" not in tag:  # a colon before a slash is a registry's port, not a tag
        return [requested, base]
    return [requested]


def requested_model(body: dict) -> str:
    """`model`, or `name` as older clients send it to /api/show."""
    value = body.get("model") if body.get("model") is not None else body.get("name")
    if value is None:
        raise missing("model")
    name = as_str(value, "model")
    if not name:
        raise invalid_value("model", "expected a model name.")
    return name


def decode_chat_request(body: Any) -> Conversation:
    body = require_body(body)
    raw_messages = as_list(required(body, "messages", ""), "messages")
    if not raw_messages:
        raise invalid_value("messages", "expected a non-empty array.")
    return _conversation(body, _messages(raw_messages), _format_instruction(body), decode_function_tools(body))


def decode_generate_request(body: Any) -> Conversation:
    body = require_body(body)
    if opt_str(body, "suffix", ""):
        raise invalid_value(
            "suffix",
            "fill-in-the-middle is not supported: Lingma's chat models take no suffix. "
            "Leave it empty and put the code after the cursor in the prompt.",
        )
    prompt = opt_str(body, "prompt", "") or ""
    images = _images(body, "")
    if not prompt and not images:
        raise invalid_value("prompt", "expected a non-empty prompt.")
    system = opt_str(body, "system", "") or ""
    opt_str(body, "template", "")  # type-checked, then ignored: Lingma applies its own template
    raw = opt_bool(body, "raw", "", False)
    instruction = join_text(["" if raw else system, _format_instruction(body)])
    conv = _conversation(body, [Message(role="user", text=prompt, images=images)], instruction, [])
    conv.tool_choice = ToolChoice(mode="none")  # no tools here, so Lingma's own tool calls are declined
    return conv


def _conversation(body: dict, messages: list[Message], system: str, tools: list[ToolSpec]) -> Conversation:
    options = opt_object(body, "options", "")
    num_predict = opt_int(options, "num_predict", "options", minimum=-2)
    opt_int(options, "num_ctx", "options", minimum=1)  # type-checked, not applied (see the module doc)
    return Conversation(
        model=requested_model(body),
        messages=messages,
        system=system,
        tools=tools,
        max_tokens=num_predict if num_predict is not None and num_predict > 0 else None,
        stop=opt_str_list(options, "stop", "options"),
        stream=opt_bool(body, "stream", "", True),  # Ollama streams unless told not to
        thinking=_wants_thinking(body.get("think")),
    )


def _wants_thinking(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if value in _THINK_LEVELS:
        return True
    raise invalid_value("think", "expected a boolean or one of 'low', 'medium', 'high'.")


def _format_instruction(body: dict) -> str:
    value = body.get("format")
    if value is None or value == "":
        return ""
    if value == "json":
        return json_output_instruction(None)
    if isinstance(value, dict):
        return json_output_instruction(value)
    raise invalid_value("format", "expected \"json\" or a JSON schema object.")


def _messages(raw_messages: list) -> list[Message]:
    messages: list[Message] = []
    unanswered: list[ToolUse] = []  # calls of the newest assistant message still without a result
    for index, raw in enumerate(raw_messages):
        path = f"messages[{index}]"
        raw = as_object(raw, path)
        role = as_str(required(raw, "role", path), param_at(path, "role"))
        text = opt_str(raw, "content", path) or ""
        images = _images(raw, path)
        if role in ("system", "user"):
            messages.append(Message(role=role, text=text, images=images))
        elif role == "assistant":
            unanswered = _history_calls(raw, path, index)
            messages.append(Message(role="assistant", text=text, tool_calls=list(unanswered), images=images))
        elif role == "tool":
            name = opt_str(raw, "tool_name", path)
            call = _answered_call(unanswered, opt_str(raw, "tool_call_id", path), name)
            messages.append(
                Message(
                    role="tool",
                    text=text,
                    tool_call_id=call.id if call else None,
                    tool_name=call.name if call else name,
                    images=images,
                )
            )
        else:
            raise invalid_value(
                param_at(path, "role"), f"unsupported role '{role}'; expected system, user, assistant or tool."
            )
    return messages


def _history_calls(raw: dict, path: str, index: int) -> list[ToolUse]:
    calls: list[ToolUse] = []
    for call_index, call in enumerate(opt_list(raw, "tool_calls", path)):
        call_path = param_at(param_at(path, "tool_calls"), call_index)
        call = as_object(call, call_path)
        function_path = param_at(call_path, "function")
        function = as_object(required(call, "function", call_path), function_path)
        calls.append(
            ToolUse(
                id=opt_str(call, "id", call_path) or f"call_{index}_{call_index}",
                name=as_str(required(function, "name", function_path), param_at(function_path, "name")),
                arguments=arguments_text(function.get("arguments"), param_at(function_path, "arguments")),
            )
        )
    return calls


def _answered_call(unanswered: list[ToolUse], call_id: str | None, name: str | None) -> ToolUse | None:
    """The call a tool result answers: by id, else by name, else (no name given) the next one in order."""
    candidates = (
        [call for call in unanswered if call.id == call_id]
        or [call for call in unanswered if call.name == name]
        or ([] if name else unanswered)
    )
    if not candidates:
        return None
    call = candidates[0]
    unanswered.remove(call)
    return call


def _images(raw: dict, path: str) -> list[Image]:
    images: list[Image] = []
    for index, value in enumerate(opt_list(raw, "images", path)):
        param = param_at(param_at(path, "images"), index)
        text = as_str(value, param)
        image = image_from_url(text) if text.startswith("data:") else Image(data=text)
        try:
            valid = bool(image.data) and bool(base64.b64decode(image.data, validate=True))
        except (binascii.Error, ValueError):
            valid = False
        if not valid:
            raise invalid_value(param, "expected an image as a non-empty base64 string.")
        images.append(Image(media_type=image.media_type or _media_type(image.data), data=image.data))
    return images


def _media_type(data: str) -> str:
    """Ollama sends bare base64; Lingma wants a MIME type, which the magic bytes give."""
    return next((media for prefix, media in _MAGIC if data.startswith(prefix)), "")
