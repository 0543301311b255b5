"""The contract every wire encoder implements, and the bookkeeping they share.

One encoder object serves a stream and a non-stream request alike (docs/architecture.md): the stream path
sends the frames that start/feed/finish return; the non-stream path ignores them and sends body().
feed, finish and fail start the encoder themselves when start() was not called, so the frames they
return always form a valid stream on their own.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from ..errors import ApiError
from ..events import Finish, FinishReason, OutputEvent, TextDelta, ThinkDelta, ToolCall, Usage
from ..model import Conversation

# Tool-call arguments go out as a few fragments rather than one: clients accumulate them either
# way, and small first fragments show progress on long arguments (a written file, a patch).
_MIN_FRAGMENT_CHARS = 64
_MAX_FRAGMENTS = 8


def argument_fragments(arguments: str) -> list[str]:
    """Split JSON text into at most 8 consecutive pieces of at least 64 characters (the last may be shorter)."""
    size = max(_MIN_FRAGMENT_CHARS, -(-len(arguments) // _MAX_FRAGMENTS))
    return [arguments[start : start + size] for start in range(0, len(arguments), size)]


class Encoder(ABC):
    def __init__(self, conv: Conversation, *, response_id: str, model: str, created: int, input_tokens: int) -> None:
        self.conv = conv
        self.response_id = response_id
        self.model = model
        self.created = created
        self.input_tokens = input_tokens
        self.tool_calls: list[ToolCall] = []
        self._started = False
        self._ended = False
        self._body: dict | None = None

    def start(self) -> list[str]:
        """The frames to send before any event; empty when already started."""
        if self._started:
            return []
        self._started = True
        return self._start_frames()

    def feed(self, event: OutputEvent) -> list[str]:
        self._check_open()
        frames = self.start()
        if isinstance(event, TextDelta):
            if event.text:
                frames += self._on_text(event.text)
        elif isinstance(event, ThinkDelta):
            if event.text:
                frames += self._on_think(event.text)
        elif isinstance(event, ToolCall):
            self.tool_calls.append(event)
            frames += self._on_tool_call(event)
        else:
            raise TypeError(f"an encoder cannot take {type(event).__name__}")
        return frames

    def finish(self, fin: Finish) -> list[str]:
        """The closing frames; afterwards body() holds the complete non-stream response."""
        self._check_open()
        frames = self.start()
        self._ended = True
        frames += self._on_finish(fin)
        return frames

    def fail(self, err: ApiError) -> list[str]:
        """The frames that end a stream with an error; nothing may be sent after them."""
        self._check_open()
        frames = self.start()
        self._ended = True
        return frames + self._on_fail(err)

    def body(self) -> dict:
        if self._body is None:
            raise RuntimeError("body() is only available after finish()")
        return self._body

    @abstractmethod
    def keepalive(self) -> str: ...

    def finish_reason(self, fin: Finish) -> FinishReason:
        """The reason the client sees: a reply that made tool calls and stopped normally ended on them."""
        return "tool_calls" if fin.reason == "stop" and self.tool_calls else fin.reason

    def final_usage(self, fin: Finish) -> Usage:
        """Finish.usage is authoritative; an input count of 0 there falls back to the constructor's."""
        return Usage(fin.usage.input_tokens or self.input_tokens, fin.usage.output_tokens)

    def _check_open(self) -> None:
        if self._ended:
            raise RuntimeError("the encoder already finished or failed")

    @abstractmethod
    def _start_frames(self) -> list[str]: ...

    @abstractmethod
    def _on_text(self, text: str) -> list[str]: ...

    @abstractmethod
    def _on_think(self, text: str) -> list[str]: ...

    @abstractmethod
    def _on_tool_call(self, call: ToolCall) -> list[str]: ...

    @abstractmethod
    def _on_finish(self, fin: Finish) -> list[str]: ...

    @abstractmethod
    def _on_fail(self, err: ApiError) -> list[str]: ...
