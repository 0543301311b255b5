"""The tag-delimited call blocks of each model family (docs/tool-formats.md).

Every family is trained on its own tool-call syntax and falls back to it even when the prompt asks
for our fenced block. Each format here is a literal opener, a literal closer, a sniff that tells a
call from prose that merely mentions the opener, and a reader for the body between the two:
  <tool_call>...</tool_call>                      Qwen (JSON), Qwen3-Coder (<function=...>), GLM-4.5+
  <minimax:tool_call ...><invoke ...>...</minimax:tool_call>   MiniMax-M2
  <function=NAME>...</function>                   Qwen3-Coder without its <tool_call> wrapper
  <|tool_calls_section_begin|>...<|tool_calls_section_end|>   Kimi-K2 (and the singular variant)
  <｜tool▁calls▁begin｜>...<｜tool▁calls▁end｜>        DeepSeek V3.1
  <｜DSML｜tool_calls><｜DSML｜invoke ...>...</｜DSML｜tool_calls>   DeepSeek V4 (V3.2: function_calls)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ..model import ToolSpec
from .call_request import CallRequest, NotACall
from .calls import arguments_object, read_calls
from .xml_calls import DSML_INVOKES, MINIMAX_INVOKES, read_function, whole_matches

Verdict = Literal["call", "text"] | None  # None: too little has arrived to tell

_FUNCTION_OPEN = "<function="
_FUNCTION_HEAD = re.compile(r"[^\s<>]+>\s*")
_NAME_SO_FAR = re.compile(r"[^\s<>]*")
_GLM_HEAD = re.compile(r"[^\s<>]+\s*")
_MINIMAX_OPEN = "<minimax:tool_call"  # the opening tag's end is read with the body: it may carry attributes
_ATTRIBUTES_END = re.compile(r"(?:\s[^<>]*)?>\s*")
_ATTRIBUTES_SO_FAR = re.compile(r"(?:\s[^<>]*)?")
_KIMI_CALL = re.compile(
    r"<\|tool_call_begin\|>\s*([^<]*?)\s*<\|tool_call_argument_begin\|>(.*?)<\|tool_call_end\|>", re.DOTALL
)
_KIMI_ID = re.compile(r"(?:functions\.)?(.+?)(?::\d+)?")  # functions.NAME:INDEX
_DEEPSEEK_CALL = re.compile(r"<｜tool▁call▁begin｜>\s*([^<]*?)\s*<｜tool▁sep｜>(.*?)<｜tool▁call▁end｜>", re.DOTALL)

Reader = Callable[[str, dict[str, ToolSpec]], list[CallRequest]]


@dataclass(frozen=True, slots=True)
class TagFormat:
    opener: str
    closer: str
    sniff: Callable[[str], Verdict]  # the body so far
    read: Reader  # the body without the closer; raises NotACall


def _starts(text: str, calls: tuple[str, ...], pending: tuple[str, ...] = ()) -> Verdict:
    """"call" when `text` starts with one of `calls`, None while it may still become one (or one of
    `pending`), else "text"."""
    if text.startswith(calls):
        return "call"
    return None if any(option.startswith(text) for option in calls + pending) else "text"


def _sniff_tool_call(body: str) -> Verdict:
    """Inside <tool_call>: JSON, a fence, <function=...>, or GLM's NAME followed by <arg_key>."""
    s = body.lstrip()
    if not s:
        return None
    if s[0] in "{[`":
        return "call"
    if s[0] == "<":
        return _starts(s, (_FUNCTION_OPEN,), ("</tool_call>",))
    rest = s[_GLM_HEAD.match(s).end() :]
    if not rest:
        return None
    # A bare NAME closed at once is GLM's call without arguments; prose goes on with other words.
    return _starts(rest, ("<arg_key>",), ("</tool_call>",)) if rest[0] == "<" else "text"


def _sniff_function(body: str) -> Verdict:
    """After a bare <function=: NAME> and then a parameter or the end of the call."""
    head = _FUNCTION_HEAD.match(body)
    if head is None:
        return None if _NAME_SO_FAR.fullmatch(body) else "text"
    return _starts(body[head.end() :], ("<parameter=", "</function>"))


def _sniff_minimax(body: str) -> Verdict:
    """After <minimax:tool_call: its attributes, ">" and then an <invoke>."""
    head = _ATTRIBUTES_END.match(body)
    if head is None:
        return None if _ATTRIBUTES_SO_FAR.fullmatch(body) else "text"
    return _starts(body[head.end() :], ("<invoke",))


def _sniff_dsml(body: str) -> Verdict:
    s = body.lstrip()
    return _starts(s, ("<｜DSML｜invoke", "<|DSML|invoke")) if s else None


def _always_call(body: str) -> Verdict:
    """Special tokens that only a model's tool-call output contains: no prose to tell apart."""
    return "call"


def _read_minimax(body: str, tools: dict[str, ToolSpec]) -> list[CallRequest]:
    head = _ATTRIBUTES_END.match(body)
    if head is None:
        raise NotACall("malformed <minimax:tool_call> tag")
    return MINIMAX_INVOKES.read(body[head.end() :], tools)


def _read_bare_function(body: str, tools: dict[str, ToolSpec]) -> list[CallRequest]:
    return [read_function(_FUNCTION_OPEN + body, tools)]


def _read_kimi(body: str, tools: dict[str, ToolSpec]) -> list[CallRequest]:
    matches = whole_matches(_KIMI_CALL, body, "Kimi tool-call section", allow_empty=False)
    return [_json_request(_kimi_name(m.group(1)), m.group(2)) for m in matches]


def _kimi_name(call_id: str) -> str:
    found = _KIMI_ID.fullmatch(call_id)
    return found.group(1) if found else ""


def _read_deepseek(body: str, tools: dict[str, ToolSpec]) -> list[CallRequest]:
    matches = whole_matches(_DEEPSEEK_CALL, body, "DeepSeek tool-call section", allow_empty=False)
    return [_json_request(m.group(1), m.group(2)) for m in matches]


def _json_request(name: str, arguments: str) -> CallRequest:
    if not name:
        raise NotACall("a call without a tool name")
    return CallRequest(name=name, arguments=arguments_object(arguments), explicit_arguments=True)


def _kimi(opener: str, closer: str) -> TagFormat:
    return TagFormat(opener, closer, _always_call, _read_kimi)


TAG_FORMATS = (
    TagFormat("<tool_call>", "</tool_call>", _sniff_tool_call, read_calls),
    TagFormat(_MINIMAX_OPEN, "</minimax:tool_call>", _sniff_minimax, _read_minimax),
    TagFormat(_FUNCTION_OPEN, "</function>", _sniff_function, _read_bare_function),
    _kimi("<|tool_calls_section_begin|>", "<|tool_calls_section_end|>"),
    _kimi("<|tool_call_section_begin|>", "<|tool_call_section_end|>"),  # a variant Kimi also writes
    TagFormat("<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>", _always_call, _read_deepseek),
    # DeepSeek V3.2 (function_calls) and V4 (tool_calls); the bars are full-width in the tokens,
    # and ASCII where a server or a log has rewritten them.
    *(
        TagFormat(f"<{bar}DSML{bar}{wrapper}>", f"</{bar}DSML{bar}{wrapper}>", _sniff_dsml, DSML_INVOKES.read)
        for wrapper in ("tool_calls", "function_calls")
        for bar in ("｜", "|")
    ),
)


def tag_format_at(text: str, index: int) -> TagFormat | None:
    """The format whose opener starts at text[index], if any."""
    return next((fmt for fmt in TAG_FORMATS if text.startswith(fmt.opener, index)), None)


def could_open_tag(partial: str) -> bool:
    """Whether `partial` (from a "<" to the end of what has arrived) may still grow into an opener."""
    return any(fmt.opener.startswith(partial) for fmt in TAG_FORMATS)
