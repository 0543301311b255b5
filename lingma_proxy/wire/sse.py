"""Server-sent events framing (WHATWG event-stream), and the one JSON encoding used on the wire.

Frames are `str`; the handler encodes them as UTF-8. JSON keeps non-ASCII as is (docs/features.md §8:
escaping CJK would make streams about six times larger) and never escapes `/`.
"""

from __future__ import annotations

import re
from typing import Any

import ujson

# The event-stream grammar ends a line at CR, LF or CRLF; nothing else.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def dumps(value: Any) -> str:
    """JSON text as every wire format in this package sends it."""
    return ujson.dumps(value, ensure_ascii=False, escape_forward_slashes=False)


def sse_data(payload: dict | str) -> str:
    """An unnamed event (OpenAI chat style); a str payload may span lines, each gets its own `data:`."""
    if isinstance(payload, str):
        return _field_lines("data", payload) + "\n"
    return f"data: {dumps(payload)}\n\n"  # JSON text escapes every line break: always one line


def sse_event(event: str, payload: dict) -> str:
    """A named event (Anthropic, Responses): the SDKs drop events whose `event:` line is missing."""
    if _LINE_BREAK.search(event):
        raise ValueError("an SSE event name cannot contain a line break")
    return f"event: {event}\ndata: {dumps(payload)}\n\n"


def sse_comment(text: str = "") -> str:
    """A comment frame: decoders skip it, proxies see traffic (used as a keep-alive)."""
    return _field_lines("", text) + "\n"


def _field_lines(field: str, value: str) -> str:
    if "\n" not in value and "\r" not in value:
        return f"{field}: {value}\n"
    return "".join(f"{field}: {line}\n" for line in _LINE_BREAK.split(value))
