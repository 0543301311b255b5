"""The incremental action-block parser: upstream answer text in, text deltas and tool calls out.

Text streams through as it arrives (docs/features.md §6: "Text must keep streaming while tools are
declared"); only characters that could open a block are held back, and a block's own text never
reaches the client. What counts as a block:
  - a fence labelled as an action (```json action, ```action, ```tool_call ...), anywhere in a line;
  - a bare or ```json fence at the start of a line whose body turns out to be a call object
    (anything else in it, such as JSON shown to the user, is released as text);
  - a model family's own tag-delimited block, anywhere, when its body starts like a call: Qwen's
    <tool_call>, GLM, MiniMax, Kimi, DeepSeek, bare Qwen3-Coder (`tools/families.py`); prose that
    merely mentions a tag stays text.
The body shapes are read by `tools/calls.py`, `tools/xml_calls.py` and `tools/families.py`. A fence
with another label (```python) opens a code block that is passed through as text, so its closing
fence is never mistaken for an opening one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from ..events import TextDelta, ToolCall
from ..model import ToolSpec
from .accept import RejectedBlock, checked_call
from .call_request import CallRequest, NotACall
from .calls import CALL_KEYS, read_calls
from .contract import FENCE
from .families import TagFormat, Verdict, could_open_tag, tag_format_at
from .markdown_lines import MarkdownLines

ACTION_INFOS = frozenset(("json action", "action", "json-action", "json_action", "jsonaction", "tool_call"))
CANDIDATE_INFOS = frozenset(("", "json", "json5", "jsonc"))
_TAG_OPEN = "<tool_call>"  # may open a ```json fence's body too
_MAX_INFO = 64  # a fence's info string longer than this is not one of ours
_SNIFF_LIMIT = 2048  # past this, an undecided body is held until it closes

_TEXT_STOP = re.compile(r"[`<]")
_INFO_END = re.compile(r"[\n{]")
_STRING_STOP = re.compile(r'["\\]')
_CODE_STOP = re.compile(r'["`]')
_SNIFF_KEY = re.compile(r'\[?\s*\{\s*"([^"\\]*)"')
_SNIFF_PARTIAL = re.compile(r'\[?\s*(?:\{\s*(?:"[^"\\]*)?)?\Z')

BlockKind = Literal["action", "candidate", "tag"]


@dataclass(slots=True)
class _Block:
    kind: BlockKind
    lead_ws: str  # whitespace held before the opener: dropped with the block, restored with text
    opener: str
    parts: list[str] = field(default_factory=list)
    head: str = ""  # the body's first characters, enough to tell a call from text
    in_string: bool = False  # JSON lexer state: a fence closes only outside strings
    escaped: bool = False
    backticks: int = 0
    sniffed: bool = False
    tail: str = ""  # end of a tag body, to find a closing tag split across deltas
    format: TagFormat | None = None  # set for kind "tag"


class ActionBlockParser:
    def __init__(self, tools: list[ToolSpec], *, id_prefix: str = "call_") -> None:
        self._tools = {tool.name: tool for tool in tools}
        self._id_prefix = id_prefix
        self.calls: list[ToolCall] = []
        self.rejected: list[RejectedBlock] = []
        self._out: list[TextDelta | ToolCall] = []
        self._block: _Block | None = None
        self._hold = ""  # a possible opener, undecided until more text arrives
        self._ws = ""  # trailing whitespace: emitted with the next text, dropped before a block
        self._lines = MarkdownLines()
        self._after_block = False  # no text since the last block
        self._emitted_text = False

    def feed(self, text: str) -> list[TextDelta | ToolCall]:
        self._consume(text)
        return self._take()

    def close(self) -> list[TextDelta | ToolCall]:
        """End of stream: an open block that began like a call is rejected, anything else is text."""
        while self._block or self._hold:
            if self._block:
                block, self._block = self._block, None
                if block.kind == "candidate" or (block.kind == "tag" and not _began_as_call(block)):
                    self._consume(self._release(block))
                else:
                    self._reject(block.opener + "".join(block.parts), "unterminated")
            else:
                held, self._hold = self._hold, ""
                self._text(held)
        if self._ws and not self._after_block:
            self._out.append(TextDelta(self._ws))
        self._ws = ""
        return self._take()

    def _consume(self, text: str) -> None:
        pending = text
        while pending:
            pending = self._feed_block(pending) if self._block else self._feed_text(pending)

    # --- outside blocks -------------------------------------------------------------------

    def _feed_text(self, text: str) -> str:
        """Scan text for openers; returns what follows an opener (for the block), else ""."""
        s, self._hold = self._hold + text, ""
        i = 0
        while True:
            match = _TEXT_STOP.search(s, i)
            if match is None:
                self._text(s[i:])
                return ""
            j = match.start()
            self._text(s[i:j])
            if s[j] == "<":
                tag = tag_format_at(s, j)
                if tag is not None:
                    self._open_block("tag", tag.opener, tag)
                    return s[j + len(tag.opener) :]
                if could_open_tag(s[j:]):
                    self._hold = s[j:]
                    return ""
                self._text("<")
                i = j + 1
                continue
            run = _backtick_run(s, j)
            if j + run == len(s):  # the run may go on in the next delta
                self._hold = s[j:]
                return ""
            if run != 3:
                self._text(s[j : j + run])
                i = j + run
                continue
            resume = self._at_fence(s, j)
            if resume is None:
                return ""
            if isinstance(resume, str):
                return resume
            i = resume

    def _at_fence(self, s: str, j: int) -> int | str | None:
        """Three backticks at s[j]: hold (None), open a block (its body text), or go on at an index."""
        start = j + 3
        end = _INFO_END.search(s, start, start + _MAX_INFO)
        if end is None:
            if len(s) - start < _MAX_INFO and self._could_open(s[start:]):
                self._hold = s[j:]
                return None
            return self._pass_fence(s, j)
        info, terminator = _normalise_info(s[start : end.start()]), end.group()
        if info in ACTION_INFOS or (info in CANDIDATE_INFOS and self._lines.line_blank and not self._lines.in_code):
            opener_end = end.end() if terminator == "\n" else end.start()
            self._open_block("action" if info in ACTION_INFOS else "candidate", s[j:opener_end])
            return s[opener_end:]
        return self._pass_fence(s, j)

    def _pass_fence(self, s: str, j: int) -> int:
        """Three backticks that open none of our blocks are text; at the start of a line they may
        open or close a code block, which is known once the line ends (see _track_code_fence)."""
        at_line_start = self._lines.line_blank
        self._text(s[j : j + 3])
        if at_line_start:
            self._lines.fence_line = "blank"
        return j + 3

    def _could_open(self, partial_info: str) -> bool:
        info = _normalise_info(partial_info)
        options = set(ACTION_INFOS)
        if self._lines.line_blank:
            options |= {""} if self._lines.in_code else CANDIDATE_INFOS
        return any(option.startswith(info) for option in options)

    def _text(self, segment: str) -> None:
        if not segment:
            return
        self._lines.see(segment)
        if self._after_block and not self._emitted_text:
            segment = segment.lstrip()
        full = self._ws + segment
        visible = full.rstrip()
        self._ws = full[len(visible) :]
        if visible:
            self._out.append(TextDelta(visible))
            self._after_block = False
            self._emitted_text = True

    # --- inside blocks --------------------------------------------------------------------

    def _open_block(self, kind: BlockKind, opener: str, tag: TagFormat | None = None) -> None:
        self._block = _Block(kind=kind, lead_ws=self._ws, opener=opener, format=tag)
        self._ws = ""
        self._lines.fence_line = None

    def _feed_block(self, text: str) -> str:
        block = self._block
        end = _scan_tag(block, text) if block.kind == "tag" else _scan_fence(block, text)
        if end < 0:
            block.parts.append(text)
            if block.kind != "action" and not block.sniffed and _sniffed_as_text(block):
                self._block = None
                return self._release(block)
            return ""
        block.parts.append(text[:end])
        self._block = None
        return self._finish_block(block) + text[end:]

    def _release(self, block: _Block) -> str:
        """A block that is no call: its opener becomes text and its body is scanned again.

        The body of a ```json fence is then read as the inside of a code block, so that its closing
        fence is not taken for an opening one."""
        self._ws = block.lead_ws
        self._text(block.opener)
        if block.kind == "candidate":
            self._lines.in_code = True
        return "".join(block.parts)

    def _finish_block(self, block: _Block) -> str:
        raw_body = "".join(block.parts)
        body = raw_body[: -len(block.format.closer if block.format else FENCE)]
        raw = block.opener + raw_body
        if block.kind != "action" and _sniff(block, body[:_SNIFF_LIMIT]) == "text":
            return self._release(block)  # the verdict streaming would have reached on the same text
        read = block.format.read if block.format else read_calls
        try:
            requests = read(body, self._tools)
        except NotACall as error:
            if block.kind == "candidate":
                return self._release(block)
            self._reject(raw, str(error))
            return ""
        if block.kind == "candidate" and not all(
            request.explicit_arguments or request.name in self._tools for request in requests
        ):
            return self._release(block)
        for request in requests:
            self._accept(request, raw)
        self._end_block()
        return ""

    def _accept(self, request: CallRequest, raw: str) -> None:
        outcome = checked_call(request, raw, self._tools, self._id_prefix)
        if isinstance(outcome, RejectedBlock):
            self.rejected.append(outcome)
            return
        self.calls.append(outcome)
        self._out.append(outcome)

    def _reject(self, raw: str, reason: str) -> None:
        self.rejected.append(RejectedBlock(raw, reason))
        self._end_block()

    def _end_block(self) -> None:
        self._after_block = True
        self._lines.line_blank = False

    def _take(self) -> list[TextDelta | ToolCall]:
        out, self._out = self._out, []
        return _joined(out)


def _joined(events: list[TextDelta | ToolCall]) -> list[TextDelta | ToolCall]:
    """The events of one feed, adjacent text joined in one pass."""
    merged: list[TextDelta | ToolCall] = []
    texts: list[str] = []
    for event in events:
        if isinstance(event, TextDelta):
            texts.append(event.text)
            continue
        if texts:
            merged.append(TextDelta("".join(texts)))
            texts = []
        merged.append(event)
    if texts:
        merged.append(TextDelta("".join(texts)))
    return merged


def _sniffed_as_text(block: _Block) -> bool:
    """Release text early once its start shows it is no call: JSON shown to the user, or prose
    that merely mentions <tool_call>."""
    block.head += block.parts[-1][: _SNIFF_LIMIT - len(block.head)]
    verdict = _sniff(block, block.head)
    block.sniffed = verdict is not None or len(block.head) >= _SNIFF_LIMIT
    return verdict == "text"


def _began_as_call(block: _Block) -> bool:
    return _sniff(block, "".join(block.parts)[:_SNIFF_LIMIT]) == "call"


def _normalise_info(info: str) -> str:
    return " ".join(info.lower().split())


def _backtick_run(s: str, start: int) -> int:
    end = start
    while end < len(s) and s[end] == "`":
        end += 1
    return end - start


def _scan_tag(block: _Block, text: str) -> int:
    """Index in `text` just past the closing tag, or -1."""
    closer = block.format.closer
    window = block.tail + text
    found = window.find(closer)
    if found < 0:
        block.tail = window[-(len(closer) - 1) :]
        return -1
    return found - len(block.tail) + len(closer)


def _scan_fence(block: _Block, text: str) -> int:
    """Index in `text` just past the closing fence, or -1; backticks inside JSON strings don't count."""
    i, size = 0, len(text)
    while i < size:
        if block.in_string:
            if block.escaped:
                block.escaped = False
                i += 1
                continue
            match = _STRING_STOP.search(text, i)
            if match is None:
                return -1
            i = match.end()
            block.escaped = match.group() == "\\"
            block.in_string = block.escaped
            continue
        match = _CODE_STOP.search(text, i)
        if match is None:
            block.backticks = 0
            return -1
        if match.start() > i:
            block.backticks = 0
        i = match.end()
        if match.group() == '"':
            block.in_string = True
            block.backticks = 0
            continue
        block.backticks += 1
        if block.backticks == 3:
            return i
    return -1


def _sniff(block: _Block, body: str) -> Verdict:
    """Does a block body start like a call? None while too little has arrived to tell."""
    if block.format is not None:
        return block.format.sniff(body)
    s = body.lstrip()
    if not s:
        return None
    if s[0] == "<":
        return "call" if s.startswith(_TAG_OPEN) else None if _TAG_OPEN.startswith(s) else "text"
    key = _SNIFF_KEY.match(s)
    if key:
        return "call" if key.group(1) in CALL_KEYS else "text"
    return None if _SNIFF_PARTIAL.match(s) else "text"
