"""Typed reads of request JSON for the decoders: every failure is an ApiError naming its param.

A param is a path such as `messages[2].content`; `path` arguments are the path of the object read
from ("" for the body itself). In Python a bool is an int, so numeric reads reject bools explicitly.
"""

from __future__ import annotations

from typing import Any

from ..errors import ApiError, bad_request
from ..model import Message, ToolChoice, ToolSpec
from .sse import dumps

_JSON_TYPE_NAMES = {
    type(None): "null",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "an array",
    dict: "an object",
}


def param_at(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def invalid_type(param: str, expected: str, value: Any) -> ApiError:
    got = _JSON_TYPE_NAMES.get(type(value), "an unsupported value")
    return bad_request(f"Invalid type for '{param}': expected {expected}, but got {got} instead.", param)


def invalid_value(param: str, message: str) -> ApiError:
    return bad_request(f"Invalid value for '{param}': {message}", param)


def missing(param: str) -> ApiError:
    return bad_request(f"Missing required parameter: '{param}'.", param)


def require_body(body: Any) -> dict:
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body


def replace_lone_surrogates(body: dict, raw: bytes) -> None:
    """Make every string and key in `body`, parsed from the JSON text `raw`, encodable as UTF-8, in place.

    JSON may escape a lone surrogate (`"\\ud83d"`): agents cut long tool outputs in the middle of
    an emoji, and JSON.stringify escapes the half it keeps. Python reads it into a str that cannot
    be encoded as UTF-8, so the upstream frame (or the reply echoing it) would fail with a 500.
    Each lone surrogate becomes U+FFFD, as a UTF-8 decoder would read it. Iterative, because
    the body can nest as deep as the JSON parser allows. Only a \\uD800–\\uDFFF escape in `raw` can
    make a lone surrogate (strict UTF-8 decoding of the text cannot), so without one there is no walk.
    """
    if b"\\ud" not in raw and b"\\uD" not in raw:
        return
    stack: list[dict | list] = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, dict) and not all(_encodable(key) for key in node):
            fixed = {_well_formed(key): value for key, value in node.items()}
            node.clear()
            node.update(fixed)
        for key, value in list(node.items() if isinstance(node, dict) else enumerate(node)):
            if isinstance(value, str):
                if not _encodable(value):
                    node[key] = _well_formed(value)
            elif isinstance(value, (dict, list)):
                stack.append(value)


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _well_formed(text: str) -> str:
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def as_object(value: Any, param: str) -> dict:
    if not isinstance(value, dict):
        raise invalid_type(param, "an object", value)
    return value


def as_list(value: Any, param: str) -> list:
    if not isinstance(value, list):
        raise invalid_type(param, "an array", value)
    return value


def as_str(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise invalid_type(param, "a string", value)
    return value


def required(obj: dict, key: str, path: str) -> Any:
    if obj.get(key) is None:
        raise missing(param_at(path, key))
    return obj[key]


def opt_object(obj: dict, key: str, path: str) -> dict:
    """An optional object; absent or null reads as {}."""
    value = obj.get(key)
    return {} if value is None else as_object(value, param_at(path, key))


def opt_list(obj: dict, key: str, path: str) -> list:
    value = obj.get(key)
    return [] if value is None else as_list(value, param_at(path, key))


def opt_str(obj: dict, key: str, path: str, *, max_length: int | None = None) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    text = as_str(value, param_at(path, key))
    if max_length is not None and len(text) > max_length:
        raise invalid_value(param_at(path, key), f"expected at most {max_length} characters, but got {len(text)}.")
    return text


def opt_bool(obj: dict, key: str, path: str, default: bool) -> bool:
    value = obj.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid_type(param_at(path, key), "a boolean", value)
    return value


def opt_int(obj: dict, key: str, path: str, *, minimum: int, maximum: int | None = None) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    param = param_at(path, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_type(param, "an integer", value)
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise invalid_value(param, f"expected an integer {bounds}, but got {value}.")
    return value


def opt_number(obj: dict, key: str, path: str, *, minimum: float, maximum: float) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    param = param_at(path, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid_type(param, "a number", value)
    if not minimum <= value <= maximum:
        raise invalid_value(param, f"expected a number between {minimum} and {maximum}, but got {value}.")
    return float(value)


def opt_str_list(
    obj: dict, key: str, path: str, *, min_items: int = 0, max_items: int | None = None, single: bool = True
) -> list[str]:
    """A list of strings, or with `single` also one string (OpenAI `stop`, Anthropic `stop_sequences`)."""
    value = obj.get(key)
    param = param_at(path, key)
    if value is None:
        return []
    items = [value] if single and isinstance(value, str) else as_list(value, param)
    if len(items) < min_items:
        raise invalid_value(param, f"expected at least {min_items} items, but got {len(items)}.")
    if max_items is not None and len(items) > max_items:
        raise invalid_value(param, f"expected at most {max_items} items, but got {len(items)}.")
    return [as_str(item, param_at(param, index)) for index, item in enumerate(items)]


def arguments_text(value: Any, param: str) -> str:
    """Tool-call arguments as sent back in the history: JSON text, or an object some clients send."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return dumps(value)
    if value is None:
        return "{}"
    raise invalid_type(param, "a string", value)


def join_text(parts: list[str]) -> str:
    """The text of several content parts; blank line between, the same on every API."""
    return "\n\n".join(part for part in parts if part)


def mode_tool_choice(value: str, tools: list[ToolSpec]) -> ToolChoice:
    """OpenAI's string `tool_choice`: "auto", "none" or "required" (which needs a tool to call)."""
    if value not in ("auto", "none", "required"):
        raise invalid_value("tool_choice", "expected 'auto', 'none', 'required' or a function.")
    if value == "required" and not tools:
        raise invalid_value("tool_choice", "'required' needs at least one function in 'tools'.")
    return ToolChoice(mode=value)


def named_tool_choice(name: str, tools: list[ToolSpec], param: str) -> ToolChoice:
    """A choice forcing one tool, which must be among the declared ones (docs/features.md §4)."""
    if name not in {tool.name for tool in tools}:
        raise invalid_value(param, f"the tool '{name}' is not among the declared tools.")
    return ToolChoice(mode="named", name=name)


def link_tool_names(messages: list[Message]) -> list[Message]:
    """Fill `tool_name` of tool results from the assistant call with the same id, for the prompt."""
    names = {call.id: call.name for message in messages for call in message.tool_calls}
    for message in messages:
        if message.role == "tool" and message.tool_name is None and message.tool_call_id in names:
            message.tool_name = names[message.tool_call_id]
    return messages


def json_output_instruction(schema: dict | None) -> str:
    """Best-effort JSON mode (docs/features.md §4): Lingma has no such switch, so the model is told."""
    if schema is None:
        return "Reply with one valid JSON object and nothing else."
    return f"Reply with one valid JSON value that matches this JSON schema, and nothing else: {dumps(schema)}"
