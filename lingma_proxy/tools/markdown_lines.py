"""Where the text around action blocks stands, line by line: at a line start, inside a code block.

A bare or ```json fence opens a candidate block only at the start of a line and outside a code block the
model is showing, so the parser keeps this much Markdown state about the text it passes through.
"""

from __future__ import annotations

from typing import Literal


class MarkdownLines:
    def __init__(self) -> None:
        self.line_blank = True  # only whitespace since the last line break: a fence may open here
        self.in_code = False  # inside a code fence that is passed through as text
        self.fence_line: Literal["blank", "labelled"] | None = None  # a line began with ``` (info so far)

    def see(self, segment: str) -> None:
        """Text passed through as text."""
        if self.fence_line:
            self._track_code_fence(segment)
        line_break = segment.rfind("\n")
        if line_break >= 0:
            self.line_blank = not segment[line_break + 1 :].strip()
        else:
            self.line_blank = self.line_blank and not segment.strip()

    def _track_code_fence(self, segment: str) -> None:
        """Markdown: a line of three backticks plus an info string without backticks is a fence;
        it opens a code block, or closes one when the info string is empty."""
        line_break = segment.find("\n")
        info = segment if line_break < 0 else segment[:line_break]
        if "`" in info:
            self.fence_line = None
            return
        if info.strip():
            self.fence_line = "labelled"
        if line_break >= 0:
            self.in_code = not (self.in_code and self.fence_line == "blank")
            self.fence_line = None
