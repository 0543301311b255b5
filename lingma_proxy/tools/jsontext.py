"""JSON text helpers shared by the tool contract, the action-block parser and the session key."""

from __future__ import annotations

from typing import Any

import ujson


def compact_json(value: Any, *, sort_keys: bool = False) -> str:
    """Compact JSON text, non-ASCII kept as is (docs/features.md §8: escaping CJK bloats the stream)."""
    return ujson.dumps(value, ensure_ascii=False, escape_forward_slashes=False, sort_keys=sort_keys)


def loads_lenient(text: str) -> Any:
    """Parse JSON the way models write it: trailing commas are forgiven.

    Raises ValueError with the parser's message when the text is not JSON even after that repair.
    """
    try:
        return ujson.loads(text)
    except ValueError as first_error:
        repaired = _drop_trailing_commas(text)
        if repaired == text:
            raise ValueError(str(first_error)) from None
        try:
            return ujson.loads(repaired)
        except ValueError:
            raise ValueError(str(first_error)) from None


def _drop_trailing_commas(text: str) -> str:
    """Remove a comma that only whitespace separates from a closing bracket, outside strings."""
    out: list[str] = []
    in_string = False
    escaped = False
    pending_comma = -1  # index in `out` of a comma that may turn out to be trailing
    for char in text:
        if in_string:
            out.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char in "}]" and pending_comma >= 0:
            del out[pending_comma]
        if not char.isspace():
            pending_comma = -1
        if char == ",":
            pending_comma = len(out)
        elif char == '"':
            in_string = True
        out.append(char)
    return "".join(out)
