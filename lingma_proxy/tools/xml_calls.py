"""The XML-style call bodies of Qwen3-Coder, GLM and MiniMax (docs/tool-formats.md).

In these formats every argument value is text. The tool's JSON schema says what it was meant to be:
a string property keeps the text verbatim, any other type gets the value parsed from the text, and a
value that does not parse stays text so that schema validation rejects the call.
"""

from __future__ import annotations

import re

from ..model import ToolSpec
from .call_request import CallRequest, NotACall
from .jsontext import loads_lenient

_FUNCTION = re.compile(r"<function=([^>\s]+)\s*>")
_FUNCTION_END = "</function>"
_PARAMETER = re.compile(r"<parameter=([^>\s]+)\s*>(.*?)</parameter>", re.DOTALL)
GLM_CALL = re.compile(r"([^\s<>{}\[\]\"`]+)\s*(?=<arg_key>|\Z)")  # NAME, then its first argument or nothing
_GLM_ARGUMENT = re.compile(r"<arg_key>\s*(.*?)\s*</arg_key>\s*<arg_value>(.*?)</arg_value>", re.DOTALL)
_NAME_ATTRIBUTE = re.compile(r"""\bname\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
# DeepSeek's DSML says itself whether a value is raw text (string="true") or JSON (string="false").
_STRING_ATTRIBUTE = re.compile(r"""\bstring\s*=\s*["']?(true|false)\b""")
_RAW_TEXT = {"type": "string"}
_JSON_TEXT: dict = {}  # no declared type: the value is parsed when it is JSON


def read_function(text: str, tools: dict[str, ToolSpec]) -> CallRequest:
    """Qwen3-Coder: <function=NAME><parameter=KEY>VALUE</parameter>...</function>."""
    head = _FUNCTION.match(text)
    if head is None:
        raise NotACall("not a <function=...> call")
    body = text[head.end() :].rstrip().removesuffix(_FUNCTION_END)
    pairs = [(m.group(1), m.group(2), None) for m in whole_matches(_PARAMETER, body, "<function> call")]
    return _typed_request(head.group(1), pairs, tools)


def read_glm(text: str, tools: dict[str, ToolSpec]) -> CallRequest:
    """GLM-4.5 and later: NAME<arg_key>KEY</arg_key><arg_value>VALUE</arg_value>... (inside <tool_call>)."""
    head = GLM_CALL.match(text)
    if head is None:
        raise NotACall("not a GLM call")
    matches = whole_matches(_GLM_ARGUMENT, text[head.end() :], "GLM call")
    return _typed_request(head.group(1), [(m.group(1), m.group(2), None) for m in matches], tools)


class InvokeSyntax:
    """<invoke name="NAME"><parameter name="KEY">VALUE</parameter>...</invoke>, several per block:
    MiniMax-M2's tags, and DeepSeek V3.2/V4's DSML, the same tags after a `｜DSML｜` token."""

    def __init__(self, tag_prefix: str, family: str) -> None:
        self.invoke = re.compile(rf"<{tag_prefix}invoke\b([^>]*)>(.*?)</{tag_prefix}invoke>", re.DOTALL)
        self.parameter = re.compile(rf"<{tag_prefix}parameter\b([^>]*)>(.*?)</{tag_prefix}parameter>", re.DOTALL)
        self.family = family

    def read(self, body: str, tools: dict[str, ToolSpec]) -> list[CallRequest]:
        requests = []
        for invoke in whole_matches(self.invoke, body, f"{self.family} tool call", allow_empty=False):
            parameters = whole_matches(self.parameter, invoke.group(2), f"{self.family} invoke")
            pairs = [(_name_attribute(m[1], "<parameter>"), m[2], _value_hint(m[1])) for m in parameters]
            requests.append(_typed_request(_name_attribute(invoke.group(1), "<invoke>"), pairs, tools))
        return requests


MINIMAX_INVOKES = InvokeSyntax("", "MiniMax")
DSML_INVOKES = InvokeSyntax("[｜|]DSML[｜|]", "DeepSeek DSML")


def whole_matches(pattern: re.Pattern[str], text: str, what: str, *, allow_empty: bool = True) -> list[re.Match[str]]:
    """Every match of `pattern` in `text`, which must hold nothing else but whitespace: a malformed
    block is no call rather than a call with arguments silently missing."""
    matches = list(pattern.finditer(text))
    if pattern.sub("", text).strip():
        raise NotACall(f"malformed {what}")
    if not matches and not allow_empty:
        raise NotACall(f"empty {what}")
    return matches


def typed_value(raw: str, schema: object) -> object:
    """One argument's text as the value the schema asks for (see the module docstring)."""
    text = _strip_template_newlines(raw)
    types = _schema_types(schema)
    if "string" in types:
        return text
    if "boolean" in types and text.strip().lower() in ("true", "false"):
        return text.strip().lower() == "true"  # templates that print Python values write True/False
    try:
        return loads_lenient(text.strip())
    except ValueError:
        return text


def _typed_request(name: str, pairs: list[tuple[str, str, dict | None]], tools: dict[str, ToolSpec]) -> CallRequest:
    """`pairs`: (key, value text, the schema the value states for itself or None)."""
    tool = tools.get(name)
    properties = (tool.parameters.get("properties") or {}) if tool else {}
    arguments = {
        key.strip(): typed_value(value, properties.get(key.strip()) if hint is None else hint)
        for key, value, hint in pairs
    }
    return CallRequest(name=name, arguments=arguments, explicit_arguments=True)


def _value_hint(attributes: str) -> dict | None:
    found = _STRING_ATTRIBUTE.search(attributes)
    if found is None:
        return None
    return _RAW_TEXT if found.group(1) == "true" else _JSON_TEXT


def _name_attribute(attributes: str, tag: str) -> str:
    found = _NAME_ATTRIBUTE.search(attributes)
    if found is None:
        raise NotACall(f"{tag} without a name")
    return next(group for group in found.groups() if group is not None)


def _strip_template_newlines(text: str) -> str:
    """The chat templates put a value on lines of its own; those two line breaks are not the value's."""
    for newline in ("\r\n", "\n"):
        if text.startswith(newline):
            text = text[len(newline) :]
            break
    for newline in ("\r\n", "\n"):
        if text.endswith(newline):
            return text[: -len(newline)]
    return text


def _schema_types(schema: object) -> set[str]:
    """The JSON types a property allows, looking into anyOf/oneOf; empty when the schema says nothing."""
    if not isinstance(schema, dict):
        return set()
    declared = schema.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return {item for item in declared if isinstance(item, str)}
    branches = [branch for key in ("anyOf", "oneOf") if isinstance(schema.get(key), list) for branch in schema[key]]
    return {kind for branch in branches for kind in _schema_types(branch)}
