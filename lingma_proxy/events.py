"""The one event stream every API encoder consumes (docs/architecture.md: one event stream, many encoders).

Upstream dialects produce TextDelta / ThinkDelta / NativeToolCall and end with UpstreamFinish.
The tool parser turns TextDelta into TextDelta | ToolCall. The response pipeline ends every stream
with exactly one Finish, or an ApiError handed to the encoder's fail().
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(slots=True)
class TextDelta:
    text: str


@dataclass(slots=True)
class ThinkDelta:
    text: str


@dataclass(slots=True)
class ToolCall:
    """A complete tool call. `arguments` is JSON object text; encoders may split it into fragments."""

    id: str
    name: str
    arguments: str


@dataclass(slots=True)
class NativeToolCall:
    """Lingma's own `tool/invoke` (agent mode), before allow-list filtering."""

    request_id: str
    tool_call_id: str
    name: str
    parameters: dict


@dataclass(slots=True)
class UpstreamFinish:
    """`chat/finish` with statusCode 200 (or ACP chat_finish): the upstream stream ended normally."""

    reason: str = ""
    # Tokens the upstream session holds after this turn, from the agent dialect's context_usage (§9).
    context_tokens: int | None = None


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(slots=True)
class Latency:
    first_token_ms: int | None = None
    total_ms: int = 0


FinishReason = Literal["stop", "length", "tool_calls", "stop_sequence"]


@dataclass(slots=True)
class Finish:
    """The end of a successful response, as the encoders need it."""

    reason: FinishReason = "stop"
    usage: Usage = field(default_factory=Usage)
    stop_sequence: str | None = None
    served_by: str | None = None
    latency: Latency = field(default_factory=Latency)
    upstream_tokens: int = 0  # prompt tokens actually sent upstream: less than the input when a session is reused
    session_reused: bool = False


UpstreamEvent = TextDelta | ThinkDelta | NativeToolCall | UpstreamFinish
OutputEvent = TextDelta | ThinkDelta | ToolCall
