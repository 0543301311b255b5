"""What Lingma sent, as the client layer never shows it: a tap on the RPC connection and the facts read from it.

The tap is an RpcConnection observer: it sees every decoded incoming message before routing, so it
records the raw order of methods, their ids, empty deltas and the finish fields exactly as they came.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

from lingma_proxy.upstream.dialects import content_text
from lingma_proxy.upstream.rpc import route_key

CLASSIC_DELTA = "chat/answer"
ACP_DELTA = "session/update:agent_message_chunk"
ACP_FINISH = "session/update:chat_finish"


@dataclass(frozen=True)
class Seen:
    at: float  # time.monotonic() when it arrived
    message: dict


class Tap:
    """Keeps every incoming message while at least one recording is open (recordings may overlap)."""

    def __init__(self) -> None:
        self._open: list[list[Seen]] = []

    def __call__(self, message: dict) -> None:
        if self._open:
            seen = Seen(time.monotonic(), message)
            for recording in self._open:
                recording.append(seen)

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[Seen]]:
        recording: list[Seen] = []
        self._open.append(recording)
        try:
            yield recording
        finally:
            # By identity: two recordings with the same messages compare equal.
            self._open = [other for other in self._open if other is not recording]


def _params(message: dict) -> dict:
    params = message.get("params")
    return params if isinstance(params, dict) else {}


def _update(message: dict) -> dict:
    update = _params(message).get("update")
    return update if isinstance(update, dict) else {}


def method_label(message: dict) -> str | None:
    """The method, with ACP's update kind appended (session/update:agent_message_chunk); None for replies."""
    method = message.get("method")
    if not isinstance(method, str):
        return None
    if method != "session/update":
        return method
    update = _update(message)
    kind = update.get("sessionUpdate")
    if kind == "notification":
        kind = update.get("type") or kind
    return f"{method}:{kind}" if kind else method


def delta_text(message: dict) -> str | None:
    """The text of an answer delta (classic chat/answer, ACP agent_message_chunk); None for anything else."""
    label = method_label(message)
    if label == CLASSIC_DELTA:
        return str(_params(message).get("text") or "")
    if label == ACP_DELTA:
        return content_text(_update(message).get("content"))
    return None


def method_order(seen: list[Seen]) -> str:
    """Methods in arrival order, repeats collapsed: `chat/answer×7 (2 empty)`."""
    runs: list[list] = []  # [label, count, empty deltas]
    for item in seen:
        label = method_label(item.message)
        if label is None:
            continue
        empty = int(delta_text(item.message) == "")
        if runs and runs[-1][0] == label:
            runs[-1][1] += 1
            runs[-1][2] += empty
        else:
            runs.append([label, 1, empty])
    parts = []
    for label, count, empties in runs:
        part = label if count == 1 else f"{label}×{count}"
        parts.append(f"{part} ({empties} empty)" if empties else part)
    return ", ".join(parts) or "(nothing)"


def message_kinds(seen: list[Seen]) -> list[str]:
    """Which methods came as requests (with an id, and its type) and which as notifications (no id)."""
    requests: dict[str, set[str]] = {}
    notifications: dict[str, None] = {}
    for item in seen:
        method = item.message.get("method")
        if not isinstance(method, str):
            continue
        if "id" in item.message:
            requests.setdefault(method, set()).add(type(item.message["id"]).__name__)
        else:
            notifications[method] = None
    lines = []
    if requests:
        listed = ", ".join(f"{method} [{'/'.join(sorted(kinds))} id]" for method, kinds in requests.items())
        lines.append(f"server→client requests (acked): {listed}")
    if notifications:
        lines.append(f"server→client notifications (no id): {', '.join(notifications)}")
    return lines or ["server→client messages: none"]


def delta_counts(seen: list[Seen]) -> tuple[int, int]:
    """(empty deltas, all deltas)."""
    texts = [text for text in (delta_text(item.message) for item in seen) if text is not None]
    return sum(text == "" for text in texts), len(texts)


def first_delta_at(seen: list[Seen]) -> float | None:
    return next((item.at for item in seen if delta_text(item.message) is not None), None)


def finish_fields(seen: list[Seen]) -> tuple[str, dict] | None:
    """The stream's end as sent: ("chat/finish params", {...}) or ("chat_finish data", {...})."""
    for item in seen:
        label = method_label(item.message)
        if label == "chat/finish":
            return "chat/finish params", _params(item.message)
        if label == ACP_FINISH:
            data = _update(item.message).get("data")
            return "session/update chat_finish data", data if isinstance(data, dict) else {}
    return None


def reply_shapes(seen: list[Seen]) -> list[str]:
    """The result keys of the replies to our own calls that arrived meanwhile (chat/ask, session/prompt, ...)."""
    shapes = []
    for item in seen:
        if "method" in item.message:
            continue
        if "error" in item.message:
            shapes.append(f"error {item.message['error']}")
            continue
        result = item.message.get("result")
        shapes.append("{" + ", ".join(result) + "}" if isinstance(result, dict) else repr(result))
    return shapes


def delta_owners(seen: list[Seen]) -> list[str]:
    """The chat (request id) each answer delta was routed to, in arrival order."""
    return [route_key(_params(item.message)) or "" for item in seen if delta_text(item.message) is not None]


def stream_session_ids(seen: list[Seen]) -> set[str]:
    ids = set()
    for item in seen:
        session_id = _params(item.message).get("sessionId")
        if "method" in item.message and isinstance(session_id, str) and session_id:
            ids.add(session_id)
    return ids
