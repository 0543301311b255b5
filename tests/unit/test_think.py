"""Reasoning embedded in answer text is split out, whatever the delta boundaries."""

from __future__ import annotations

import pytest

from lingma_proxy.events import TextDelta, ThinkDelta
from lingma_proxy.upstream.think import ThinkSplitter

pytestmark = pytest.mark.timeout(60)


def split(chunks: list[str]) -> tuple[str, str, list]:
    splitter = ThinkSplitter()
    events = []
    for chunk in chunks:
        events += splitter.feed(chunk)
    events += splitter.close()
    text = "".join(event.text for event in events if isinstance(event, TextDelta))
    think = "".join(event.text for event in events if isinstance(event, ThinkDelta))
    return text, think, events


CASES = [
    ("fence with duration", "````think::1234\nFirst step.\nSecond step.\n````\n\nThe answer.", "The answer.", "First step.\nSecond step."),
    ("fence with placeholder", "````think::{THINK_TIME}\nHmm.\n````\nDone.", "Done.", "Hmm."),
    ("fence with CRLF", "````think::5\r\nA\r\nB\r\n````\r\nOK", "OK", "A\r\nB"),
    ("fence after text", "Intro ````think::9\nwhy\n````\nrest", "Intro rest", "why"),
    ("fence with code inside", "````think::9\n```py\nx = 1\n```\n````\nAnswer", "Answer", "```py\nx = 1\n```"),
    ("fence: four backticks inside a line", "````think::9\n```` is not the end\n````\nA", "A", "```` is not the end"),
    ("tag", "<think>\nLet me see.\n</think>\n\nHello <b>world</b>.", "Hello <b>world</b>.", "Let me see."),
    ("tag mid-answer", "A <think>b</think> c", "A c", "b"),
    ("no reasoning", "Just `code`, <i>tags</i> and ``` fences ```.", "Just `code`, <i>tags</i> and ``` fences ```.", ""),
    ("unterminated tag", "<think>still thinking", "", "still thinking"),
    ("unterminated fence", "````think::1\nstill", "", "still"),
    ("partial marker at end", "Answer <thi", "Answer <thi", ""),
]


@pytest.mark.parametrize("case_id, reply, text, think", CASES, ids=[case[0] for case in CASES])
def test_split_at_every_position(case_id, reply, text, think):
    assert split([reply])[:2] == (text, think)
    assert split(list(reply))[:2] == (text, think)
    for cut in range(1, len(reply)):
        assert split([reply[:cut], reply[cut:]])[:2] == (text, think), f"cut at {cut}"
    for size in (3, 7):
        chunks = [reply[start : start + size] for start in range(0, len(reply), size)]
        assert split(chunks)[:2] == (text, think)


def test_answer_text_streams_before_the_stream_ends():
    splitter = ThinkSplitter()
    assert splitter.feed("<think>abc") == [ThinkDelta("abc")]
    assert splitter.feed("</think>Hello") == [TextDelta("Hello")]
    assert splitter.feed(" world`") == [TextDelta(" world")]
    assert splitter.feed("x`") == [TextDelta("`x")]
    assert splitter.close() == [TextDelta("`")]


def test_reasoning_streams_inside_the_fence_holding_only_a_possible_closing_line():
    splitter = ThinkSplitter()
    assert splitter.feed("````think::12\nline one\nline") == [ThinkDelta("line one\nline")]
    assert splitter.feed(" two\n``") == [ThinkDelta(" two")]  # "``" may begin the closing line
    assert splitter.feed("``\nAnswer") == [TextDelta("Answer")]


def test_events_alternate_in_order():
    _, _, events = split(["<think>a</think>b<think>c</think>d"])
    assert events == [ThinkDelta("a"), TextDelta("b"), ThinkDelta("c"), TextDelta("d")]


def test_long_reasoning_in_one_delta_and_in_small_ones():
    reasoning = "\n".join(f"step {n}: consider `x` < y" for n in range(30_000))
    reply = f"````think::88\n{reasoning}\n````\nAnswer <think>more</think>"
    assert split([reply])[:2] == ("Answer ", reasoning + "more")
    chunks = [reply[start : start + 3] for start in range(0, len(reply), 3)]
    assert split(chunks)[:2] == ("Answer ", reasoning + "more")
