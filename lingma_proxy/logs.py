"""Logging to stderr as text or JSON lines, with the request id on every record and secrets redacted.

Handlers set request_id_var at the start of a request; asyncio copies context into each task, so
everything logged on behalf of that request carries its id.
"""

from __future__ import annotations

import contextvars
import datetime
import logging
import re
import sys
from typing import Any

import ujson

from .redact import Redactor, redact_json

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

TEXT_FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"

CLIENT_TEXT_CHARS = 200  # the most of any one client-supplied value a log line carries
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f\u2028\u2029]")


def clip(text: str, limit: int = CLIENT_TEXT_CHARS) -> str:
    """Client-supplied text as a log line may carry it: control characters escaped, cut to `limit`
    characters, saying how long it was."""
    text = _escape(text[: limit + 1], _CONTROL)
    return text if len(text) <= limit else f"{text[:limit]}…[cut]"


def _escape(text: str, which: re.Pattern[str]) -> str:
    return which.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


class TextFormatter(logging.Formatter):
    """TEXT_FORMAT that no message can use to forge a record: control characters are escaped, and the
    lines of a multi-line message (our own summaries, a traceback) are indented under their record."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = _escape(record.message, _CONTROL_BUT_NEWLINE)
        record.request_id = _escape(str(getattr(record, "request_id", "-")), _CONTROL)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", "\n    ")


# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "request_id"}


class _RedactFilter(logging.Filter):
    """Redacts the message, its args, the traceback and any extras before a formatter sees them."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = self._redactor.redact(getattr(record, "request_id", None) or request_id_var.get())
        record.msg = self._redactor.redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redactor.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redactor.redact(record.stack_info)
        for name, value in _extras(record).items():
            setattr(record, name, self._redact_value(value))
        return True

    def _redact_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._redactor.redact(value)
        if isinstance(value, (dict, list)):
            return redact_json(value)
        return value


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {name: value for name, value in vars(record).items() if name not in _STANDARD_ATTRS}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, request_id, msg, then any extras and exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", request_id_var.get()),
            "msg": record.getMessage(),
        }
        for name, value in _extras(record).items():
            entry.setdefault(name, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return ujson.dumps(entry, ensure_ascii=False, escape_forward_slashes=False, default=str)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (as logging's own last-resort handler does),
    so a test harness that swaps stderr sees the output and no write hits a closed stream."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def setup_logging(level: str, fmt: str, redactor: Redactor) -> None:
    """Route the root logger to stderr in `fmt` ("text" or "json"); calling it again replaces the setup."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(handler)
    handler = _StderrHandler()
    handler.addFilter(_RedactFilter(redactor))
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level.upper())
