"""Token counts: a long text counted in remembered pieces gives exactly the count of the whole text."""

from __future__ import annotations

import random

import pytest

from lingma_proxy import tokens
from lingma_proxy.tokens import count_tokens

pytestmark = pytest.mark.timeout(60)

# Lines that stress the tokenizer's pre-split at a cut: blank lines, indentation, CRLF, punctuation
# runs, contractions, digits, CJK, and markers the prompt renderer writes.
_LINES = [
    "[User]", "[Assistant]", "", "   ", "\t\tindented code();", "it's done, isn't it?", "!!!???...",
    "12345 67890", "通义灵码 counts its tokens。", "```python", "```", "- item", "  - nested item",
    "<think>", "</think>", "trailing spaces   ", "\r", "a\r", "[Tool result: read_file]", "{'k': [1, 2]}",
]


def _whole(text: str) -> int:
    return tokens._count(text)


def _conversation(rng: random.Random, lines: int) -> str:
    return "\n".join(rng.choice(_LINES) + rng.choice(["", " ", "  ", "\n", "\r\n"]) for _ in range(lines))


@pytest.mark.parametrize("seed", range(8))
def test_a_long_text_counts_exactly_as_a_whole(seed):
    text = _conversation(random.Random(seed), 4000)
    assert len(text) > 4 * tokens._PIECE_CHARS
    assert count_tokens(text) == _whole(text)


@pytest.mark.parametrize("seed", range(4))
def test_each_turn_of_a_growing_conversation_counts_exactly(seed):
    rng = random.Random(100 + seed)
    text = ""
    for _ in range(6):
        text += _conversation(rng, 800)
        assert count_tokens(text) == _whole(text)


def test_a_text_that_extends_a_counted_one_reuses_its_pieces():
    text = _conversation(random.Random(7), 6000)
    count_tokens(text)
    longer = text + "\n[User]\none more question\n[Assistant]\n"
    old_pieces = list(tokens._pieces(text))
    new_pieces = list(tokens._pieces(longer))
    assert new_pieces[: len(old_pieces) - 1] == old_pieces[:-1]
    assert count_tokens(longer) == _whole(longer)


def test_short_and_empty_texts():
    assert count_tokens("") == 0
    assert count_tokens("hello world") == _whole("hello world")
    assert count_tokens("<|im_start|>") == _whole("<|im_start|>")  # special-token text is ordinary text


@pytest.mark.parametrize("seed", range(6))
def test_random_characters_count_exactly(seed):
    rng = random.Random(200 + seed)
    text = "".join(rng.choice(" \n\n\r\t\u3000\xa0a b'sS9.,!?[]<>通灵\U0001f600") for _ in range(60_000))
    assert count_tokens(text) == _whole(text)
