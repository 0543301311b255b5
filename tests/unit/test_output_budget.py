"""The max_tokens budget of a reply: over budget exactly when the reply's real token count reaches it,
after every chunk, whatever the chunks and scripts (the byte bound skips the tokenizer, never the truth)."""

from __future__ import annotations

import random

import pytest

from lingma_proxy.completion.output import Output
from lingma_proxy.tokens import count_tokens

TEXTS = {
    "ascii": "The quick brown fox jumps over the lazy dog, again and again. " * 40,
    "cjk": "通义灵码是一个编码助手，它把回答一段一段地流出来。" * 30,
    "mixed": "def add(a, b):\n    return a + b  # 加法 🙂\n" * 40,
}


@pytest.mark.parametrize("script", sorted(TEXTS))
@pytest.mark.parametrize("budget", [1, 7, 50, 333, 100_000])
def test_over_budget_exactly_when_the_real_count_reaches_it(script, budget):
    rng = random.Random(f"{script}{budget}")
    text, position, output = TEXTS[script], 0, Output(max_tokens=budget)
    while position < len(text):
        step = rng.randint(1, 12)
        output.text(text[position : position + step])
        position += step
        assert output.over_budget() == (count_tokens("".join(output.parts)) >= budget)
        if output.over_budget():
            break
    assert output.over_budget() == (budget <= count_tokens(text[:position]))


def test_tokens_are_counted_once_and_again_after_more_is_said():
    output = Output(max_tokens=None)
    output.text("Hello there")
    first = output.tokens()
    assert first == count_tokens("Hello there") == output.tokens()
    output.text(", general Kenobi")
    assert output.tokens() == count_tokens("Hello there, general Kenobi") > first
