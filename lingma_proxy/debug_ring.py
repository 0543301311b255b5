"""A bounded ring of recent request bodies for /internal/debug/requests, with every secret removed.

On the way in (the request's hot path) each entry is only trimmed: auth headers masked, `data:` URLs and
base64 image data replaced by a placeholder, long strings cut, deep nesting cut, and an entry still too
large replaced by its outline, so 100 entries never hold more than a few MB. The costly part, masking
secret-looking keys and secret patterns in every string, runs when the ring is read.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import ujson

from .redact import MASK, Redactor, is_secret_key

CAPACITY = 100
MAX_STRING_CHARS = 2048
MAX_ENTRY_BYTES = 64 * 1024
_IMAGE_PLACEHOLDER = "[image data omitted]"
_SECRET_HEADERS = {"authorization", "x-api-key", "cookie", "proxy-authorization"}
_IMAGE_KEYS = {"data", "image_url", "url", "source"}


_MAX_DEPTH = 32


def _trim(value: Any, key: str, depth: int = 0) -> Any:
    if isinstance(value, (dict, list)) and depth >= _MAX_DEPTH:
        return f"[nested deeper than {_MAX_DEPTH} levels]"
    if isinstance(value, dict):
        return {k: _trim(v, k, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_trim(item, key, depth + 1) for item in value]
    if isinstance(value, str):
        if value.startswith("data:") or (key in _IMAGE_KEYS and len(value) > 256 and " " not in value[:256]):
            return _IMAGE_PLACEHOLDER
        # A lone surrogate cannot be written out as UTF-8 later; replace it now.
        head = value[:MAX_STRING_CHARS].encode("utf-8", "replace").decode("utf-8")
        if len(value) > MAX_STRING_CHARS:
            return f"{head}…[truncated, {len(value)} chars]"
        return head
    return value


def _redact(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, dict):
        return {k: MASK if is_secret_key(k) else _redact(v, redactor) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(item, redactor) for item in value]
    if isinstance(value, str):
        return redactor.redact(value)
    return value


class RequestRing:
    def __init__(self, redactor: Redactor, capacity: int = CAPACITY) -> None:
        self._redactor = redactor
        self._entries: deque[dict] = deque(maxlen=capacity)

    def add(self, request_id: str, method: str, path: str, headers: dict[str, str], body: Any) -> None:
        entry = {
            "request_id": request_id,
            "time": time.time(),
            "method": method,
            "path": path,
            "headers": {name: MASK if name.lower() in _SECRET_HEADERS else value for name, value in headers.items()},
            "body": _trim(body, ""),
        }
        size = len(ujson.dumps(entry, ensure_ascii=False))
        if size > MAX_ENTRY_BYTES:
            entry["body"] = {"omitted": f"entry of {size} bytes exceeds {MAX_ENTRY_BYTES}", "keys": _outline(body)}
        self._entries.append(entry)

    def recent(self, limit: int) -> list[dict]:
        """Newest first, redacted."""
        return [_redact(entry, self._redactor) for entry in list(reversed(self._entries))[:limit]]


def _outline(body: Any) -> list[str]:
    return sorted(body)[:50] if isinstance(body, dict) else []
