"""Tool calls in each model family's own format (docs/tool-formats.md): GLM, MiniMax, Kimi, DeepSeek
and bare Qwen3-Coder, each rendered the way the family's chat template writes it."""

from __future__ import annotations

import json
import random
from collections.abc import Callable

import pytest

from lingma_proxy.model import Conversation, Message, ToolChoice, ToolSpec, ToolUse
from lingma_proxy.prompt import render_prompt
from lingma_proxy.tools.contract import FORMAT_EXAMPLE, render_tool_call
from lingma_proxy.tools.parser import ActionBlockParser
from lingma_proxy.tools.repair import needs_repair, repair_prompt
from tests.unit.test_tool_parser import calls_of, run, text_of

pytestmark = pytest.mark.timeout(60)

WEATHER = ToolSpec(
    "get_current_weather",
    "Current weather and a forecast",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer"},
            "hourly": {"type": "boolean"},
            "threshold": {"type": "number"},
            "where": {"type": "object"},
            "fields": {"type": "array", "items": {"type": "string"}},
            "note": {"type": ["string", "null"]},
        },
        "required": ["city"],
        "additionalProperties": False,
    },
)
TIME = ToolSpec(
    "get_time",
    "Local time",
    {"type": "object", "properties": {"timezone": {"type": "string"}}, "required": ["timezone"]},
)
TOOLS = [WEATHER, TIME, ToolSpec("list_cities", "No parameters")]

Call = tuple[str, dict]
PARIS: Call = ("get_current_weather", {"city": "Paris"})
TOKYO_TIME: Call = ("get_time", {"timezone": "Asia/Tokyo"})
TYPED: Call = (
    "get_current_weather",
    {
        "city": "São Paulo",
        "unit": "celsius",
        "days": 3,
        "hourly": True,
        "threshold": 2.5,
        "where": {"lat": -23.5, "lon": -46.6},
        "fields": ["temp", "wind"],
        "note": "007",  # a string that looks like a number stays a string
    },
)
MULTILINE: Call = ("get_current_weather", {"city": "Paris", "note": "line one\n  line two"})
UNDECLARED: Call = ("launch_rockets", {"count": 3})
BAD_ARGUMENTS: Call = ("get_current_weather", {"city": "Paris", "days": "many"})

# Markers of every family: none may ever reach the client's text.
MARKERS = ("<tool_call", "</tool_call", "<arg_", "<invoke", "minimax", "<|", "<｜", "DSML", "<function", "<parameter")


def _text(value: object) -> str:
    """How the templates print a value: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def glm(calls: list[Call], newline: str = "\n") -> str:
    """GLM-4.5/4.6: one <tool_call> per call, the name and every tag on its own line; GLM-4.7 and
    GLM-5 write the same tags without the line breaks."""
    return newline.join(
        f"<tool_call>{name}{newline}"
        + "".join(f"<arg_key>{k}</arg_key>{newline}<arg_value>{_text(v)}</arg_value>{newline}" for k, v in args.items())
        + "</tool_call>"
        for name, args in calls
    )


def minimax(calls: list[Call]) -> str:
    """MiniMax-M2: every call an <invoke> inside one block."""
    invokes = "".join(
        f'<invoke name="{name}">\n'
        + "".join(f'<parameter name="{k}">{_text(v)}</parameter>\n' for k, v in args.items())
        + "</invoke>\n"
        for name, args in calls
    )
    return f"<minimax:tool_call>\n{invokes}</minimax:tool_call>"


def kimi(calls: list[Call]) -> str:
    """Kimi-K2: special tokens, ids functions.NAME:INDEX, JSON arguments."""
    body = "".join(
        f"<|tool_call_begin|>functions.{name}:{index}<|tool_call_argument_begin|>"
        f"{json.dumps(args, ensure_ascii=False)}<|tool_call_end|>"
        for index, (name, args) in enumerate(calls)
    )
    return f"<|tool_calls_section_begin|>{body}<|tool_calls_section_end|>"


def deepseek(calls: list[Call]) -> str:
    """DeepSeek V3.1+: full-width bars and U+2581 in the tokens, JSON arguments."""
    body = "".join(
        f"<｜tool▁call▁begin｜>{name}<｜tool▁sep｜>{json.dumps(args, ensure_ascii=False)}<｜tool▁call▁end｜>"
        for name, args in calls
    )
    return f"<｜tool▁calls▁begin｜>{body}<｜tool▁calls▁end｜>"


def dsml(calls: list[Call], wrapper: str = "tool_calls", bar: str = "｜") -> str:
    """DeepSeek V4 (V3.2: function_calls): invokes after a DSML token, each value marked raw text or JSON."""
    tag = f"{bar}DSML{bar}"
    invokes = "".join(
        f'<{tag}invoke name="{name}">\n'
        + "".join(
            f'<{tag}parameter name="{k}" string="{str(isinstance(v, str)).lower()}">{_text(v)}</{tag}parameter>\n'
            for k, v in args.items()
        )
        + f"</{tag}invoke>\n"
        for name, args in calls
    )
    return f"<{tag}{wrapper}>\n{invokes}</{tag}{wrapper}>"


def qwen3_coder(calls: list[Call]) -> str:
    """Qwen3-Coder without the <tool_call> wrapper: values on lines of their own."""
    return "\n".join(
        f"<function={name}>\n"
        + "".join(f"<parameter={k}>\n{_text(v)}\n</parameter>\n" for k, v in args.items())
        + "</function>"
        for name, args in calls
    )


FAMILIES: dict[str, Callable[[list[Call]], str]] = {
    "glm": glm,
    "glm47": lambda calls: glm(calls, newline=""),
    "minimax": minimax,
    "kimi": kimi,
    "deepseek": deepseek,
    "deepseek_v4": dsml,
    "qwen3_coder": qwen3_coder,
}


def _accepted_cases() -> list[tuple[str, str, list[Call], str]]:
    cases = []
    for family, render in FAMILIES.items():
        cases += [
            (f"{family}: single call", render([PARIS]), [PARIS], ""),
            (f"{family}: parallel calls", render([PARIS, TOKYO_TIME]), [PARIS, TOKYO_TIME], ""),
            (f"{family}: text before", "Let me check.\n\n" + render([PARIS]), [PARIS], "Let me check."),
            (
                f"{family}: text between and after",
                "Before.\n" + render([PARIS]) + "\nBetween.\n" + render([TOKYO_TIME]) + "\nAfter.",
                [PARIS, TOKYO_TIME],
                "Before.\nBetween.\nAfter.",
            ),
            (f"{family}: typed values", render([TYPED]), [TYPED], ""),
            (f"{family}: multi-line value", render([MULTILINE]), [MULTILINE], ""),
        ]
    return cases


# Spacing, indentation and attributes the templates or the models add.
VARIANTS = [
    (
        "glm indented",
        "<tool_call>get_current_weather\n    <arg_key>city</arg_key>\n    <arg_value>Paris</arg_value>\n"
        "    <arg_key>days</arg_key>\n    <arg_value>2</arg_value>\n</tool_call>",
        [("get_current_weather", {"city": "Paris", "days": 2})],
        "",
    ),
    ("glm without arguments", "<tool_call>list_cities\n</tool_call>", [("list_cities", {})], ""),
    (
        "glm value on lines of its own",
        "<tool_call>get_current_weather\n<arg_key>city</arg_key>\n<arg_value>\nParis\n</arg_value>\n</tool_call>",
        [PARIS],
        "",
    ),
    (
        "minimax extra attributes",
        '<minimax:tool_call type="x">\n<invoke name="get_current_weather" id="c1">\n'
        '<parameter name="city" type="string">Paris</parameter>\n'
        "<parameter name='days'>\n4\n</parameter>\n</invoke>\n</minimax:tool_call>",
        [("get_current_weather", {"city": "Paris", "days": 4})],
        "",
    ),
    (
        "minimax python booleans",
        '<minimax:tool_call><invoke name="get_current_weather"><parameter name="city">Paris</parameter>'
        '<parameter name="hourly">True</parameter></invoke></minimax:tool_call>',
        [("get_current_weather", {"city": "Paris", "hourly": True})],
        "",
    ),
    (
        "kimi with spacing",
        "<|tool_calls_section_begin|>\n  <|tool_call_begin|> functions.get_current_weather:0 "
        '<|tool_call_argument_begin|> {"city": "Paris"} <|tool_call_end|>\n<|tool_calls_section_end|>',
        [PARIS],
        "",
    ),
    (
        "kimi singular section tokens",
        '<|tool_call_section_begin|><|tool_call_begin|>functions.get_time:3<|tool_call_argument_begin|>'
        '{"timezone": "Asia/Tokyo"}<|tool_call_end|><|tool_call_section_end|>',
        [TOKYO_TIME],
        "",
    ),
    (
        "deepseek with spacing",
        "<｜tool▁calls▁begin｜>\n<｜tool▁call▁begin｜> get_current_weather <｜tool▁sep｜>\n"
        '{"city": "Paris"}\n<｜tool▁call▁end｜>\n<｜tool▁calls▁end｜>',
        [PARIS],
        "",
    ),
    ("deepseek v3.2 dsml", dsml([TYPED], wrapper="function_calls"), [TYPED], ""),
    ("dsml with ascii bars", dsml([PARIS, TOKYO_TIME], bar="|"), [PARIS, TOKYO_TIME], ""),
    (
        "dsml value marked as JSON for a string property",
        '<｜DSML｜tool_calls><｜DSML｜invoke name="get_time"><｜DSML｜parameter name="timezone" string="false">'
        '"Asia/Tokyo"</｜DSML｜parameter></｜DSML｜invoke></｜DSML｜tool_calls>',
        [TOKYO_TIME],
        "",
    ),
    (
        "qwen3-coder compact",
        "<function=get_current_weather><parameter=city>Paris</parameter><parameter=days>1</parameter></function>",
        [("get_current_weather", {"city": "Paris", "days": 1})],
        "",
    ),
    (
        "qwen3-coder inline with chatter",
        "Checking <function=get_time>\n<parameter=timezone>\nAsia/Tokyo\n</parameter>\n</function> now.",
        [TOKYO_TIME],
        "Checking now.",
    ),
    (
        "family blocks mixed in one reply",
        "One.\n" + glm([PARIS]) + "\n" + kimi([TOKYO_TIME]) + "\n" + deepseek([PARIS]) + "\nDone.",
        [PARIS, TOKYO_TIME, PARIS],
        "One.\nDone.",
    ),
]

ACCEPTED = _accepted_cases() + VARIANTS


def _rejected_cases() -> list[tuple[str, str, str, str | None, str]]:
    """(id, reply, reason prefix, tool, visible text)."""
    cases = []
    for family, render in FAMILIES.items():
        cases += [
            (f"{family}: undeclared tool", "Sure.\n" + render([UNDECLARED]), "unknown tool", "launch_rockets", "Sure."),
            (f"{family}: arguments off the schema", render([BAD_ARGUMENTS]), "invalid arguments", "get_current_weather", ""),
            (f"{family}: incomplete", "Sure.\n" + render([PARIS])[:-4], "unterminated", None, "Sure."),
        ]
    return cases


MALFORMED = [
    ("glm key without value", "<tool_call>get_current_weather\n<arg_key>city</arg_key>\n</tool_call>"),
    ("glm stray text", "<tool_call>get_current_weather\n<arg_key>city</arg_key><arg_value>Paris</arg_value> x</tool_call>"),
    ("minimax unclosed invoke", '<minimax:tool_call><invoke name="get_time"><parameter name="timezone">UTC</parameter>'
     "</minimax:tool_call>"),
    ("minimax invoke without name", '<minimax:tool_call><invoke id="1"></invoke></minimax:tool_call>'),
    ("minimax no invoke", "<minimax:tool_call><invoke></minimax:tool_call>"),
    ("kimi broken JSON", '<|tool_calls_section_begin|><|tool_call_begin|>functions.get_time:0<|tool_call_argument_begin|>'
     '{"timezone": <|tool_call_end|><|tool_calls_section_end|>'),
    ("kimi empty section", "<|tool_calls_section_begin|><|tool_calls_section_end|>"),
    ("kimi without id", "<|tool_calls_section_begin|><|tool_call_begin|><|tool_call_argument_begin|>{}"
     "<|tool_call_end|><|tool_calls_section_end|>"),
    ("deepseek missing separator", '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_time{"timezone": "UTC"}'
     "<｜tool▁call▁end｜><｜tool▁calls▁end｜>"),
    ("deepseek arguments not an object", "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_time<｜tool▁sep｜>[1]"
     "<｜tool▁call▁end｜><｜tool▁calls▁end｜>"),
    ("dsml parameter outside an invoke", '<｜DSML｜tool_calls><｜DSML｜invoke name="get_time"></｜DSML｜invoke>'
     '<｜DSML｜parameter name="timezone" string="true">UTC</｜DSML｜parameter></｜DSML｜tool_calls>'),
    ("qwen3-coder unclosed parameter", "<function=get_time>\n<parameter=timezone>\nUTC\n</function>"),
]

# Prose that starts like an opener, or mentions the tags, and must come through intact.
PROSE = [
    "Partial openers: a <minimax:tool b, c <|tool_calls_section d, e <｜tool▁calls f, g <function x>.",
    "Qwen3-Coder writes <function=NAME> blocks, GLM writes <tool_call> then a name.",
    "Inside a section Kimi writes <|tool_call_begin|>; DeepSeek writes <｜tool▁call▁begin｜>.",
    "DeepSeek V4 opens with <｜DSML｜tool_calls> and then an invoke tag.",
    "Compare <invoke> with <arg_key> and <parameter=x>.",
    "<function=get_time> is only mentioned here.",
    # Kimi with its special tokens stripped by a server: deliberately not a call (docs/tool-formats.md).
    'functions.get_current_weather:0{"city": "Paris"}',
    "Ends with a partial opener <minimax:tool_ca",
    "Ends with a partial opener <｜tool▁call",
]

CHUNKS = [None, 1, 2, 3, 4, 5]


def outcome(reply: str, chunk: int | None):
    events, parser = run(reply, chunk, tools=TOOLS)
    rejected = [(block.reason.split(":")[0], block.tool) for block in parser.rejected]
    return text_of(events), calls_of(events), rejected


def assert_no_leak(text: str) -> None:
    for marker in MARKERS:
        assert marker not in text, (marker, text)


@pytest.mark.parametrize("case_id, reply, calls, text", ACCEPTED, ids=[case[0] for case in ACCEPTED])
def test_each_family_format_becomes_the_exact_calls_for_every_split(case_id, reply, calls, text):
    for chunk in CHUNKS:
        assert outcome(reply, chunk) == (text, calls, []), chunk


@pytest.mark.parametrize("case_id, reply, reason, tool, text", _rejected_cases(), ids=[c[0] for c in _rejected_cases()])
def test_undeclared_off_schema_and_incomplete_calls_are_rejected_without_a_leak(case_id, reply, reason, tool, text):
    for chunk in CHUNKS:
        shown, calls, rejected = outcome(reply, chunk)
        assert (shown, calls) == (text, []), chunk
        assert [r for r, _ in rejected] == [reason] and rejected[0][1] == tool, chunk
        assert_no_leak(shown)


@pytest.mark.parametrize("case_id, reply", MALFORMED, ids=[case[0] for case in MALFORMED])
def test_malformed_blocks_are_no_call_and_never_leak(case_id, reply):
    for chunk in CHUNKS:
        shown, calls, rejected = outcome("Hm.\n" + reply + "\nEnd.", chunk)
        assert (shown, calls) == ("Hm.\nEnd.", []), chunk
        assert len(rejected) == 1, chunk


@pytest.mark.parametrize("reply", PROSE)
def test_prose_that_mentions_or_starts_like_a_tag_is_released_intact(reply):
    for chunk in CHUNKS:
        assert outcome(reply, chunk) == (reply, [], []), chunk


def test_text_streams_before_the_call_and_only_a_possible_opener_is_held():
    parser = ActionBlockParser(TOOLS)
    assert text_of(parser.feed("Let me check <minimax:tool")) == "Let me check"
    assert text_of(parser.feed("_call>\n<invoke name=")) == ""
    rest = parser.feed('"get_time"><parameter name="timezone">UTC</parameter></invoke></minimax:tool_call>')
    assert calls_of(rest + parser.close()) == [("get_time", {"timezone": "UTC"})]

    parser = ActionBlockParser(TOOLS)
    assert text_of(parser.feed("a <|tool_call")) == "a"
    assert text_of(parser.feed("s are special")) == " <|tool_calls are special"


def test_a_qwen3_coder_call_inside_tool_call_is_typed_too():
    reply = "<tool_call>\n" + qwen3_coder([TYPED]) + "\n</tool_call>"
    assert outcome(reply, 3) == ("", [TYPED], [])


def test_a_value_that_does_not_parse_as_its_type_fails_the_schema():
    reply = glm([("get_current_weather", {"city": "Paris", "where": "{not json"})])
    assert outcome(reply, None) == ("", [], [("invalid arguments", "get_current_weather")])


def test_a_rejected_family_call_feeds_the_repair_of_a_forced_choice():
    _, parser = run(minimax([UNDECLARED]), 2, tools=TOOLS)
    required = ToolChoice("required")
    assert needs_repair(required, parser.calls, parser.rejected)
    prompt = repair_prompt(required, TOOLS, parser.rejected)
    assert 'unknown tool "launch_rockets"' in prompt and FORMAT_EXAMPLE in prompt


@pytest.mark.parametrize("family", FAMILIES)
def test_history_renders_a_family_call_back_as_the_canonical_block(family):
    events, parser = run(FAMILIES[family]([TYPED]), 3, tools=TOOLS)
    [call] = parser.calls
    conv = Conversation(
        model="auto",
        tools=TOOLS,
        messages=[
            Message("user", "Weather in São Paulo?"),
            Message("assistant", tool_calls=[ToolUse(call.id, call.name, call.arguments)]),
            Message("tool", "Sunny", tool_call_id=call.id),
        ],
    )
    prompt = render_prompt(conv)
    assert render_tool_call(TYPED[0], json.dumps(TYPED[1])) in prompt
    for marker in MARKERS[2:]:
        assert marker not in prompt.split("[User]", 1)[1], marker


def test_random_mixtures_of_family_blocks_give_the_same_result_for_every_split():
    """A seeded fuzz: family blocks, prose and stray tag pieces; chunk boundaries never change the outcome."""
    pieces = [case[1] for case in ACCEPTED] + [case[1] for case in MALFORMED] + PROSE
    pieces += ["<", "<tool_call>", "</tool_call>", "<|", "<｜", "<function=", "<minimax:tool_call", "\n", " ", "x"]
    rng = random.Random(20260428)
    for _ in range(200):
        reply = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 5)))
        outcomes = {repr(outcome(reply, chunk)) for chunk in CHUNKS}
        assert len(outcomes) == 1, reply
