"""Where the proxy deliberately accepts requests the vendor specs forbid, and why.

schemathesis' negative_data_rejection check expects a 4xx for every schema-violating request. The
proxy rejects every violation in a part of the request it acts on, and is lenient elsewhere on
purpose (README "Conformance"). An accepted negative case is tolerated only when the leniencies
below, applied to its body, leave a request the spec accepts; otherwise it is a bug. Each leniency
mirrors what a decoder in lingma_proxy/wire/ reads, so a change there must be mirrored here.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .vendor_specs import CHAT, MESSAGES, RESPONSES, Api, request_is_valid

# Accepted negative cases tolerated in this run, by API name (conftest prints them).
TOLERATED: Counter[str] = Counter()


@dataclass(frozen=True)
class Leniency:
    reason: str  # the README's wording of this deviation
    relax: Callable[[dict], bool]  # edits a copy of the body; True when it changed something


def is_tolerated(api: Api, body: Any) -> bool:
    """Whether the documented leniencies, applied to this spec-violating body, make it valid."""
    if not isinstance(body, dict):
        return False
    # Dropping nulls can also remove a null the spec allows in a required member (a function
    # message's `content`), so the leniencies are also tried without NULL_IS_ABSENT.
    for leniencies in (LENIENCIES[api.operation_id], LENIENCIES[api.operation_id][1:]):
        relaxed = copy.deepcopy(body)
        changed = [leniency.relax(relaxed) for leniency in leniencies]
        if any(changed) and request_is_valid(api, relaxed):
            return True
    return False


# ---- every API ----------------------------------------------------------------------------------


def _drop_nulls(node: Any) -> bool:
    """Remove null-valued object members, at any depth."""
    if isinstance(node, list):
        return any([_drop_nulls(child) for child in node])
    if not isinstance(node, dict):
        return False
    nulls = [key for key, value in node.items() if value is None]
    for key in nulls:
        del node[key]
    return any([_drop_nulls(child) for child in node.values()]) or bool(nulls)


NULL_IS_ABSENT = Leniency(
    "An explicit null reads as 'not given' for every optional field, so that a client that spells "
    "out its unset options is answered.",
    _drop_nulls,
)


def _keep(obj: dict, keys: tuple[str, ...]) -> dict:
    return {key: obj[key] for key in keys if key in obj}


def _is_history_arguments(value: Any) -> bool:
    """Tool-call arguments the decoders turn into JSON text: missing (None) or an object."""
    return value is None or isinstance(value, dict)


def _of_other_type(item: Any, accepted: tuple[str | None, ...]) -> bool:
    return isinstance(item, dict) and isinstance(item.get("type"), str) and item["type"] not in accepted


# ---- OpenAI chat (wire/openai_chat.py) ----------------------------------------------------------

_CHAT_UNREAD = (
    "audio", "modalities", "prediction", "web_search_options", "logit_bias", "functions", "function_call",
    "metadata", "service_tier", "store", "reasoning_effort", "verbosity", "prompt_cache_key", "safety_identifier",
)


def _chat_as_read(body: dict) -> bool:
    before = copy.deepcopy(body)
    for key in _CHAT_UNREAD:
        body.pop(key, None)
    if isinstance(body.get("tools"), list):
        body["tools"] = [tool for tool in body["tools"] if not _of_other_type(tool, ("function",))]
    for message in body.get("messages") if isinstance(body.get("messages"), list) else []:
        if not isinstance(message, dict):
            continue
        message.pop("audio", None)  # a reference to earlier audio output: nothing to read
        if isinstance(message.get("tool_calls"), list):
            message["tool_calls"] = [c for c in message["tool_calls"] if not _of_other_type(c, ("function",))]
        calls = [call for call in message.get("tool_calls") or [] if isinstance(call, dict)]
        for call in calls:
            call.setdefault("type", "function")
        for function in [call.get("function") for call in calls] + [message.get("function_call")]:
            if isinstance(function, dict) and _is_history_arguments(function.get("arguments")):
                function["arguments"] = "{}"
    return body != before


CHAT_AS_READ = Leniency(
    "Chat: fields of features Lingma lacks (audio, modalities, predicted outputs, web search, "
    "logit_bias, the legacy functions, metadata, store, service_tier, reasoning_effort, verbosity, "
    "prompt_cache_key, safety_identifier) are accepted unread; tools and history tool calls of a "
    "type other than \"function\" are ignored; a history tool call may omit its type and its "
    "arguments or send the arguments as an object; an assistant `audio` reference is ignored.",
    _chat_as_read,
)


# ---- OpenAI Responses (wire/responses.py) -------------------------------------------------------

_RESPONSES_UNREAD = ("include", "stream_options", "background", "truncation", "service_tier")
_RESPONSES_ITEM_READ = {
    "message": ("type", "role", "content"),
    "function_call": ("type", "call_id", "name", "arguments"),
    "function_call_output": ("type", "call_id", "output"),
}
_RESPONSES_STAND_INS = {  # parts the decoder only counts, or replaces by a placeholder
    "input_image": {"type": "input_image", "image_url": "data:,"},
    "input_file": {"type": "input_file", "file_data": ""},
}


def _responses_part(part: Any) -> Any:
    """A content part as the decoder reads it; None for the types it ignores."""
    if not isinstance(part, dict) or not isinstance(part.get("type"), str):
        return part
    kind = part["type"]
    if kind in _RESPONSES_STAND_INS:
        return _RESPONSES_STAND_INS[kind]
    if kind == "output_text":  # the annotations and logprobs of earlier output are not read
        return _keep(part, ("type", "text")) | {"annotations": []}
    return _keep(part, ("type", "text", "refusal")) if kind in ("input_text", "refusal") else None


def _responses_item(item: dict) -> dict:
    kind = item.get("type", "message")
    read = _keep(item, _RESPONSES_ITEM_READ[kind]) | {"type": kind}
    parts = "content" if kind == "message" else "output"
    if isinstance(read.get(parts), list):
        read[parts] = [part for part in map(_responses_part, read[parts]) if part is not None]
    if isinstance(read.get("call_id"), str) and read["call_id"]:
        read["call_id"] = "call_0"  # call ids are opaque here: any non-empty string is taken
    if kind == "function_call" and _is_history_arguments(read.get("arguments")):
        read["arguments"] = "{}"
    return read


def _responses_as_read(body: dict) -> bool:
    before = copy.deepcopy(body)
    for key in _RESPONSES_UNREAD:
        body.pop(key, None)
    if isinstance(body.get("tools"), list):
        body["tools"] = [tool for tool in body["tools"] if not _of_other_type(tool, ("function",))]
    if isinstance(body.get("input"), list):
        items = [item for item in body["input"] if not _of_other_type(item, tuple(_RESPONSES_ITEM_READ))]
        body["input"] = [_responses_item(item) if isinstance(item, dict) else item for item in items]
    for holder, keys in ((body.get("reasoning"), ("effort", "summary")), (body.get("text"), ("verbosity",))):
        for key in keys if isinstance(holder, dict) else ():
            if isinstance(holder.get(key), str):
                del holder[key]
    return body != before


RESPONSES_AS_READ = Leniency(
    "Responses, read as Codex needs (docs/clients.md): unknown tool types, reasoning items, item "
    "references and unknown item and content types are ignored, as are item ids, status and phase "
    "and the annotations of earlier output; an item without a type is a message; call ids are "
    "opaque; history arguments may be omitted or an object; images are kept (forwarded only through "
    "the agent dialect) and files become a "
    "placeholder; include, stream_options, background, truncation and service_tier are accepted "
    "unread (the answer always comes synchronously, untruncated, from the one tier); reasoning "
    "effort and summary and text verbosity take any string, so that values newer than the spec "
    "pass (OpenAI's \"minimal\" effort already is), and an unknown one is reported as null.",
    _responses_as_read,
)


# ---- Anthropic Messages (wire/anthropic.py) -----------------------------------------------------

_ANTHROPIC_READ = (
    "model", "messages", "max_tokens", "system", "tools", "tool_choice", "stop_sequences",
    "temperature", "top_p", "top_k", "stream", "thinking", "metadata",
)
_ANTHROPIC_STAND_INS = {  # blocks the decoder only counts, or replaces by a placeholder
    "image": {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": ""}},
    "document": {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": ""}},
}


def _anthropic_block(block: Any) -> Any:
    """A content block as the decoder reads it; None for the types it ignores."""
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        return block
    kind = block["type"]
    if kind in _ANTHROPIC_STAND_INS:
        return _ANTHROPIC_STAND_INS[kind]
    if kind == "text":
        text = _keep(block, ("type", "text"))
        return text | {"text": " "} if text.get("text") == "" else text  # empty text is taken
    if kind == "tool_use":
        used = _keep(block, ("type", "id", "name", "input"))
        used["input"] = used.get("input", {})
        if isinstance(used.get("id"), str):
            used["id"] = "toolu_0"  # tool ids are opaque here
        return used
    if kind == "tool_result":
        result = _keep(block, ("type", "tool_use_id", "content", "is_error"))
        if isinstance(result.get("tool_use_id"), str):
            result["tool_use_id"] = "toolu_0"
        if isinstance(result.get("content"), list):
            result["content"] = [inner for inner in map(_anthropic_block, result["content"]) if inner is not None]
        return result
    return None


def _anthropic_as_read(body: dict) -> bool:
    before = copy.deepcopy(body)
    for key in [key for key in body if key not in _ANTHROPIC_READ]:
        del body[key]
    if isinstance(body.get("system"), list):  # system blocks other than text are ignored
        blocks = [_anthropic_block(block) for block in body["system"]]
        body["system"] = [b for b in blocks if b is not None and not _of_other_type(b, ("text",))]
    if isinstance(body.get("tools"), list):  # server tools (typed, not "custom") are ignored
        tools = [tool for tool in body["tools"] if not _of_other_type(tool, ("custom",))]
        body["tools"] = [_keep(t, ("type", "name", "description", "input_schema")) if isinstance(t, dict) else t for t in tools]
    if isinstance(body.get("tool_choice"), dict):
        body["tool_choice"] = _keep(body["tool_choice"], ("type", "name", "disable_parallel_tool_use"))
    if isinstance(body.get("metadata"), dict):  # Claude Code's user_id is a JSON string of any length
        body["metadata"] = {k: v[:512] if isinstance(v, str) else v for k, v in _keep(body["metadata"], ("user_id",)).items()}
    if isinstance(body.get("thinking"), dict) and isinstance(body["thinking"].get("type"), str):
        body["thinking"] = {"type": "disabled"}  # only the type is read, and newer types are taken
    for message in body.get("messages") if isinstance(body.get("messages"), list) else []:
        if isinstance(message, dict):
            for key in [key for key in message if key not in ("role", "content")]:
                del message[key]
            if isinstance(message.get("content"), list):
                message["content"] = [b for b in map(_anthropic_block, message["content"]) if b is not None]
    return body != before


ANTHROPIC_AS_READ = Leniency(
    "Anthropic: requests are read for text, tool calls and results, tools and their choice, the "
    "sampling and thinking switches and metadata.user_id; everything else (cache_control, "
    "citations, server tools and their results, thinking blocks, output_config, "
    "context_management, service_tier, other system block types, newer thinking types) is "
    "accepted unread, as Claude Code's requests need (docs/clients.md). Tool ids are opaque; images are "
    "kept (forwarded only through the agent dialect) and documents become a placeholder; an empty text "
    "block is taken as empty text.",
    _anthropic_as_read,
)

LENIENCIES: dict[str, list[Leniency]] = {
    CHAT.operation_id: [NULL_IS_ABSENT, CHAT_AS_READ],
    RESPONSES.operation_id: [NULL_IS_ABSENT, RESPONSES_AS_READ],
    MESSAGES.operation_id: [NULL_IS_ABSENT, ANTHROPIC_AS_READ],
}
