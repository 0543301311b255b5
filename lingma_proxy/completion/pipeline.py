"""The text pipeline of one answer: small filters in a row, each fed what the one before let through.

Reasoning is split from the answer first (docs/protocol.md §6), then stop sequences cut the answer, then
the tool parser turns action blocks into calls. Each filter holds back only what it cannot decide yet, and
`drain()` releases the rest when the upstream stream ends.
"""

from __future__ import annotations

from ..events import TextDelta, ThinkDelta, ToolCall
from ..model import ToolSpec
from ..tools.accept import RejectedBlock
from ..tools.parser import ActionBlockParser
from ..upstream.think import ThinkSplitter
from .stop_sequences import StopSequenceMatcher

Piece = TextDelta | ThinkDelta | ToolCall


class TextPipeline:
    def __init__(self, stops: list[str], tools: list[ToolSpec] | None) -> None:
        self._think = ThinkSplitter()
        self._stops = StopSequenceMatcher(stops)
        self._tool_specs = tools
        self._tools = ActionBlockParser(tools) if tools is not None else None

    @property
    def stop_matched(self) -> str | None:
        return self._stops.matched

    @property
    def rejected(self) -> list[RejectedBlock]:
        return self._tools.rejected if self._tools is not None else []

    def feed(self, event: TextDelta | ThinkDelta) -> list[Piece]:
        if isinstance(event, ThinkDelta):
            return [event]
        out: list[Piece] = []
        for piece in self._think.feed(event.text):
            out.extend(self._after_think(piece))
        return out

    def drain(self) -> list[Piece]:
        """End of one upstream stream: release whatever the filters still hold."""
        out: list[Piece] = []
        for piece in self._think.close():
            out.extend(self._after_think(piece))
        out.extend(self._after_stops(self._stops.close()))
        if self._tools is not None:
            out.extend(self._tools.close())
        self._think = ThinkSplitter()  # a repair answer starts a fresh stream
        return out

    def restart_tools(self) -> None:
        """A repair answer is parsed on its own: calls and rejections of the first attempt are forgotten."""
        if self._tool_specs is not None:
            self._tools = ActionBlockParser(self._tool_specs)

    def _after_think(self, piece: TextDelta | ThinkDelta) -> list[Piece]:
        if isinstance(piece, ThinkDelta):
            return [piece]
        return self._after_stops(self._stops.feed(piece.text))

    def _after_stops(self, text: str) -> list[Piece]:
        if not text:
            return []
        if self._tools is None:
            return [TextDelta(text)]
        return list(self._tools.feed(text))
