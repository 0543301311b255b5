"""Identifiers: the vendors' (a type prefix and a random, URL-safe tail) and the UUIDs Lingma's own
clients send as session and request ids (docs/protocol.md §5).

They name requests, responses, sessions and tool calls, and guard nothing, so they come from a fast
generator seeded once from the OS, not from `secrets` or `uuid4` (a system call each).
"""

from __future__ import annotations

import random
import re

_RANDOM = random.Random()  # our own, so that nobody seeding the global generator makes ids repeat
# Anthropic validates tool_use ids against ^[a-zA-Z0-9_-]+$ when they come back in the history.
_NOT_ANTHROPIC_ID_CHAR = re.compile(r"[^A-Za-z0-9_-]")
# A version 4 UUID's fixed bits: the version nibble (4) and the variant's two high bits (10).
_UUID4_FIELDS = 0xF << 76 | 0x3 << 62
_UUID4_VALUES = 0x4 << 76 | 0x2 << 62


def new_id(prefix: str) -> str:
    """`prefix` + 24 random hex digits (96 bits), e.g. new_id("call_"), new_id("chatcmpl-")."""
    return f"{prefix}{_RANDOM.getrandbits(96):024x}"


def new_uuid() -> str:
    """A random (version 4, RFC 4122 variant) UUID in its canonical text form, as str(uuid.uuid4()) gives."""
    digits = f"{_RANDOM.getrandbits(128) & ~_UUID4_FIELDS | _UUID4_VALUES:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def anthropic_tool_id(call_id: str) -> str:
    """The `toolu_…` form of a tool call id, deterministic so that the history round-trips.

    `call_abc` becomes `toolu_abc`; an id that already starts with `toolu_` is kept.
    """
    if call_id.startswith("toolu_"):
        return call_id
    tail = call_id.split("_", 1)[1] if call_id.startswith("call_") else call_id
    return "toolu_" + (_NOT_ANTHROPIC_ID_CHAR.sub("_", tail) or "0")
