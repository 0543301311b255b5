"""Separating reasoning that models embed in `chat/answer` text (docs/protocol.md §6).

Two forms occur: a line ````think::<N> (four backticks; N is milliseconds or the literal
{THINK_TIME}) up to a closing line of four backticks, and <think>...</think>. Markers can be split
across deltas at any character, so only a possible marker prefix is ever held back.
"""

from __future__ import annotations

from typing import Literal

from ..events import TextDelta, ThinkDelta

_FENCE_OPEN = "````think::"
_FENCE_CLOSE = "````"
_TAG_OPEN = "<think>"
_TAG_CLOSE = "</think>"

_State = Literal["answer", "fence_header", "fence", "tag"]
_MARKER_STARTS = frozenset(marker[0] for marker in (_FENCE_OPEN, _TAG_OPEN))


class ThinkSplitter:
    def __init__(self) -> None:
        self._buf = ""  # undecided text: at most a marker prefix between calls
        self._state: _State = "answer"
        self._skip_ws = False  # whitespace right after a marker belongs to neither side
        self._line_start = True  # in "fence": the buffer begins a line, so a closing line may start here
        self._break = ""  # in "fence": the line break before the buffer, not yet emitted
        self._out: list[TextDelta | ThinkDelta] = []

    def feed(self, text: str) -> list[TextDelta | ThinkDelta]:
        if self._state == "answer" and not self._buf and not self._skip_ws and _MARKER_STARTS.isdisjoint(text):
            return [TextDelta(text)] if text else []  # nearly every delta: no marker can begin in it
        self._buf += text
        while self._step(final=False):
            pass
        return self._take()

    def close(self) -> list[TextDelta | ThinkDelta]:
        """End of stream: held-back text goes out as what it was inside (an open think stays think)."""
        while self._step(final=True):
            pass
        self._buf = ""
        return self._take()

    def _step(self, final: bool) -> bool:
        """Consume what can be decided; True when the state changed and another step may progress."""
        if self._skip_ws:
            stripped = self._buf.lstrip()
            if not stripped:
                self._buf = ""
                return False
            self._buf, self._skip_ws = stripped, False
        if self._state == "answer":
            return self._step_answer(final)
        if self._state == "fence_header":
            return self._step_fence_header()
        if self._state == "fence":
            return self._step_fence(final)
        return self._step_tag(final)

    def _step_answer(self, final: bool) -> bool:
        fence, tag = self._buf.find(_FENCE_OPEN), self._buf.find(_TAG_OPEN)
        if fence < 0 and tag < 0:
            keep = 0 if final else _partial_marker_length(self._buf, (_FENCE_OPEN, _TAG_OPEN))
            self._emit_through(TextDelta, len(self._buf) - keep)
            return False
        if tag < 0 or 0 <= fence < tag:
            self._emit_through(TextDelta, fence)
            self._buf = self._buf[len(_FENCE_OPEN) :]
            self._state = "fence_header"
            return True
        self._emit_through(TextDelta, tag)
        self._buf = self._buf[len(_TAG_OPEN) :]
        self._state, self._skip_ws = "tag", True
        return True

    def _step_fence_header(self) -> bool:
        """The rest of the ````think::<N> line is the duration: not reasoning, not answer."""
        line_end = self._buf.find("\n")
        if line_end < 0:
            return False
        self._buf = self._buf[line_end + 1 :]
        self._state, self._line_start = "fence", True
        return True

    def _step_fence(self, final: bool) -> bool:
        """Reasoning line by line; the line break before a line is held until the line is known
        not to be the closing ```` line, so the reasoning does not end with a stray break."""
        buf, pos = self._buf, 0
        while True:
            line_end = buf.find("\n", pos)
            line = buf[pos:] if line_end < 0 else buf[pos:line_end]
            if self._line_start and _is_closing_line(line) and (line_end >= 0 or final):
                self._buf = "" if line_end < 0 else buf[line_end + 1 :]
                self._break = ""
                self._state, self._skip_ws = "answer", True
                return True
            if line_end < 0:
                if not final and self._line_start and _may_become_closing_line(line):
                    self._buf = line
                    return False
                visible = line.removesuffix("\r")  # a "\r" may be half of the next line break
                self._emit(ThinkDelta, self._break + visible)
                self._buf, self._break = line[len(visible) :], ""
                self._line_start = False
                return False
            self._emit(ThinkDelta, self._break + line.removesuffix("\r"))
            self._break = "\r\n" if line.endswith("\r") else "\n"
            pos = line_end + 1
            self._line_start = True

    def _step_tag(self, final: bool) -> bool:
        end = self._buf.find(_TAG_CLOSE)
        if end < 0:
            if final:
                self._emit_through(ThinkDelta, len(self._buf.rstrip()))
                return False
            # Trailing whitespace is held too: before </think> it is dropped.
            undecided = _partial_marker_length(self._buf, (_TAG_CLOSE,))
            self._emit_through(ThinkDelta, len(self._buf[: len(self._buf) - undecided].rstrip()))
            return False
        self._emit(ThinkDelta, self._buf[:end].rstrip())
        self._buf = self._buf[end + len(_TAG_CLOSE) :]
        self._state, self._skip_ws = "answer", True
        return True

    def _emit_through(self, kind: type[TextDelta] | type[ThinkDelta], end: int) -> None:
        if end <= 0:
            return
        self._emit(kind, self._buf[:end])
        self._buf = self._buf[end:]

    def _emit(self, kind: type[TextDelta] | type[ThinkDelta], text: str) -> None:
        if text:
            self._out.append(kind(text))

    def _take(self) -> list[TextDelta | ThinkDelta]:
        """The events of one feed, adjacent pieces of the same kind joined in one pass."""
        merged: list[TextDelta | ThinkDelta] = []
        pieces: list[str] = []
        for index, event in enumerate(self._out):
            pieces.append(event.text)
            if index + 1 == len(self._out) or type(self._out[index + 1]) is not type(event):
                merged.append(type(event)("".join(pieces)))
                pieces = []
        self._out = []
        return merged


def _partial_marker_length(text: str, markers: tuple[str, ...]) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of one of the markers."""
    longest = max(len(marker) for marker in markers) - 1
    tail = text[-longest:]
    if not any(marker[0] in tail for marker in markers):
        return 0  # what nearly every delta ends with: no marker can even begin in it
    for size in range(min(longest, len(text)), 0, -1):
        suffix = text[-size:]
        if any(marker.startswith(suffix) for marker in markers):
            return size
    return 0


def _is_closing_line(line: str) -> bool:
    return line.rstrip(" \t\r") == _FENCE_CLOSE


def _may_become_closing_line(partial: str) -> bool:
    return _FENCE_CLOSE.startswith(partial) or _is_closing_line(partial)
