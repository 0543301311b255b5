"""What one completion has said so far: the text and calls sent, their token count, and the first-token time.

The max_tokens budget lives here because it is counted on exactly what the client receives.
"""

from __future__ import annotations

import time

from ..events import OutputEvent, TextDelta, ToolCall
from ..tokens import count_tokens


class Output:
    def __init__(self, max_tokens: int | None) -> None:
        self.max_tokens = max_tokens
        self.parts: list[str] = []  # everything counted as output tokens
        self.reply_text: list[str] = []  # the visible answer text, as the client will send it back
        self.calls: list[ToolCall] = []  # every accepted call, held or sent
        self.tokens_so_far = 0
        self._bytes_so_far = 0
        self._counted: tuple[int, int] = (0, 0)  # (len(parts), their tokens) of the last full count
        self.first_token_at: float | None = None
        self.new_paragraph = False  # the next text starts a paragraph (a repair answer after prose)

    def text(self, text: str) -> TextDelta:
        if self.new_paragraph:
            text, self.new_paragraph = "\n\n" + text, False
        self.parts.append(text)
        self.reply_text.append(text)
        if self.max_tokens is not None:
            self._spend(text)
        return self.first(TextDelta(text))

    def _spend(self, text: str) -> None:
        assert self.max_tokens is not None
        # Every token is at least one UTF-8 byte: while the reply has fewer bytes than the budget has tokens,
        # it is under budget however it splits, and no chunk needs the tokenizer.
        already_counting = self._bytes_so_far >= self.max_tokens
        self._bytes_so_far += len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
        if self._bytes_so_far < self.max_tokens:
            return
        if not already_counting:
            self.tokens_so_far = count_tokens("".join(self.parts))
            return
        # Chunk edges split tokens, so per-chunk counts overstate the reply: at the limit, recount
        # everything exactly (the gap shrinks each time, so recounts stay few).
        self.tokens_so_far += count_tokens(text)
        if self.tokens_so_far >= self.max_tokens:
            self.tokens_so_far = count_tokens("".join(self.parts))

    def call(self, call: ToolCall) -> None:
        self.calls.append(call)
        self.parts.append(call.name + call.arguments)

    def first(self, event: OutputEvent) -> OutputEvent:
        if self.first_token_at is None:
            self.first_token_at = time.monotonic()
        return event

    def over_budget(self) -> bool:
        return self.max_tokens is not None and self.tokens_so_far >= self.max_tokens

    def said_anything(self) -> bool:
        return any(part.strip() for part in self.reply_text)

    def reply(self) -> str:
        return "".join(self.reply_text)

    def tokens(self) -> int:
        """Exactly, over everything said so far; asked more than once at the end of a turn, so remembered."""
        if self._counted[0] != len(self.parts):
            self._counted = (len(self.parts), count_tokens("".join(self.parts)))
        return self._counted[1]

    def forget_calls(self) -> None:
        """A repair replaces the first attempt's calls; what was said stays said."""
        self.calls = []
        self.new_paragraph = self.said_anything()
