"""What the end-to-end tool-call tests share: the scenario, the tools in each API's shape, the
expected calls, the leak check, and views of what the simulator was asked."""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx

from harness.proxy import Proxy

REPAIR_HEAD = "Your previous reply did not contain a valid tool call"
FALLBACK_HEAD = "The model did not produce a valid tool call"
ROUNDTRIP_RESULT = "RESULT-LISBON-21C: 21 degrees, sunny, light wind from the west"
ROUNDTRIP_ANSWER = "It is 21 degrees and sunny in Lisbon."
ROUNDTRIP_CALL = {"city": "Lisbon", "unit": "c"}

_TOOL_DEFINITIONS = [
    (
        "get_weather",
        "Current weather for a city.",
        {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"],
        },
    ),
    (
        "get_time",
        "Current local time in a time zone.",
        {"type": "object", "properties": {"timezone": {"type": "string"}}, "required": ["timezone"]},
    ),
    ("never_works", "A tool the scenario never calls.", {"type": "object", "properties": {}}),
    (
        "get_current_weather",
        "Current weather and a forecast for a city (tests/integration/test_tool_formats.py).",
        {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "hourly": {"type": "boolean"},
            },
            "required": ["city"],
            "additionalProperties": False,
        },
    ),
]


def openai_tools(*names: str) -> list[dict]:
    return [
        {"type": "function", "function": {"name": name, "description": text, "parameters": schema}}
        for name, text, schema in _TOOL_DEFINITIONS
        if name in (names or ("get_weather", "get_time"))
    ]


def responses_tools(*names: str) -> list[dict]:
    return [{"type": "function", **tool["function"]} for tool in openai_tools(*names)]


def anthropic_tools(*names: str) -> list[dict]:
    return [
        {"name": f["name"], "description": f["description"], "input_schema": f["parameters"]}
        for f in (tool["function"] for tool in openai_tools(*names))
    ]


@dataclass(frozen=True)
class Expected:
    """One scenario rule's reply: the call it must become and the visible text around it."""

    phrase: str
    name: str
    arguments: dict
    text: str = ""


CHATTER_TEXT = (
    "Let me look that up for you. I will check the weather in Vienna first."
    "\n\nI will report back once the result is in."
)
SPLIT_TEXT = "Checking the forecast now, one moment please."

# Each deviation the parser tolerates, as a scenario rule replies with it (tools_calls.yaml).
DEVIATIONS = [
    Expected("TC-WELL-FORMED", "get_weather", {"city": "Paris", "unit": "c"}),
    Expected("TC-PLAIN-JSON-FENCE", "get_weather", {"city": "Oslo"}),
    Expected("TC-ARGUMENTS-KEY", "get_weather", {"city": "Bergen", "unit": "f"}),
    Expected("TC-TRAILING-COMMAS", "get_weather", {"city": "Madrid", "unit": "c"}),
    Expected("TC-ARGUMENTS-STRING", "get_weather", {"city": "Quito"}),
    Expected("TC-QWEN-TAG", "get_weather", {"city": "Hanoi"}),
    Expected("TC-CHATTER", "get_weather", {"city": "Vienna"}, CHATTER_TEXT),
    Expected("TC-SPLIT-CHUNKS", "get_weather", {"city": "São Paulo", "unit": "c"}, SPLIT_TEXT),
]
DEVIATION_IDS = [expected.phrase.removeprefix("TC-").lower() for expected in DEVIATIONS]
TEXT_FIRST = [expected for expected in DEVIATIONS if expected.text]
PARALLEL = [("get_weather", {"city": "Tokyo"}), ("get_time", {"timezone": "Asia/Tokyo"})]
UNKNOWN_TOOL_TEXT = "I can only describe it."
REPAIRED_REQUIRED = ("get_weather", {"city": "Rome", "unit": "c"})
REPAIRED_GET_TIME = ("get_time", {"timezone": "Europe/Rome"})


def assert_no_leak(*texts: str) -> None:
    """No action-block syntax in any piece of visible text, nor in their concatenation."""
    for text in [*texts, "".join(texts)]:
        assert "```" not in text, text
        assert '"tool"' not in text and '"parameters"' not in text, text
        assert "<tool_call" not in text and "</tool_call" not in text, text


# Proxy config for a SimWatch: one simulator instance, so that its status page sees every ask.
ONE_INSTANCE = {"lingma": {"instances_per_account": 1}}


class SimWatch:
    """The asks the simulator received since this watch was made, with their full question text."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.before = proxy.sim_status()["ask_count"]

    def asks(self) -> list[dict]:
        status = self.proxy.sim_status()
        count = status["ask_count"] - self.before
        return status["asks"][-count:] if count else []

    def questions(self) -> list[str]:
        """The full question of each new ask, in order (from the simulator's session pages)."""
        port = self.proxy.instance_http_port()
        texts = []
        for ask in self.asks():
            turns = httpx.get(f"http://127.0.0.1:{port}/sim/sessions/{ask['sessionId']}", timeout=5).json()["turns"]
            asked = [turn["text"] for turn in turns if turn["role"] == "user"]
            matches = [text for text in asked if text[:200] == ask["question_head"]]
            texts.append(matches[-1])
        return texts


def assert_one_repair(watch: SimWatch, phrase: str) -> None:
    """The first ask carried the question; exactly one repair followed as a reply in its session."""
    asks = watch.asks()
    assert len(asks) == 2, asks
    first, repair = asks
    assert first["isReply"] is False and repair["isReply"] is True
    assert repair["sessionId"] == first["sessionId"]
    assert repair["question_head"].startswith(REPAIR_HEAD)
    assert phrase in watch.questions()[0]


def sse_events(response: httpx.Response) -> list[tuple[str, object]]:
    """(event name or "", decoded data) for every event of a raw SSE response; [DONE] kept as text."""
    events: list[tuple[str, object]] = []
    name, data = "", []
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
        elif not line and data:
            text = "\n".join(data)
            events.append((name, text if text == "[DONE]" else json.loads(text)))
            name, data = "", []
    return events
