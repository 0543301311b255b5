"""Session reuse: map a conversation's history to the upstream session that already holds it (product.md §3).

The key of a conversation is a hash of everything its meaning depends on (API key, model, system prompt,
tools, tool_choice) plus the history the upstream session already holds: every message up to and
including the newest assistant message. After a successful turn the proxy stores the key of
"history + this reply", so the client's next request, which resends that history, finds it.
The canonical form ignores what differs between APIs (tool-call ids, JSON spacing, surrounding
whitespace), so the same conversation gives the same key on OpenAI chat, Responses and Anthropic.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import ujson

from .config import SessionsConfig
from .wire.conversation import Conversation, Message

log = logging.getLogger("lingma_proxy.sessions")


@dataclass
class SessionEntry:
    instance: str
    generation: int
    session_id: str
    stored_at: float


@dataclass
class ReusePlan:
    """How to send this turn: a continuation of `session_id` from message `start` on, or None for a miss."""

    entry: SessionEntry | None
    start: int


def last_assistant_index(messages: list[Message]) -> int:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "assistant":
            return index
    return -1


def _canonical_arguments(arguments: str) -> object:
    try:
        return ujson.loads(arguments) if arguments else {}
    except ValueError:
        return arguments.strip()


def _canonical_message(message: Message) -> list:
    calls = [[call.name, _canonical_arguments(call.arguments)] for call in message.tool_calls]
    return [message.role, message.text.strip(), calls, message.is_error, message.images]


def conversation_key(api_key_id: str, model: str, conv: Conversation, messages: list[Message]) -> str:
    header = [
        api_key_id,
        model,
        conv.system.strip(),
        [[tool.name, tool.description, tool.parameters] for tool in conv.tools],
        [conv.tool_choice.mode, conv.tool_choice.name],
    ]
    canonical = ujson.dumps([header, [_canonical_message(m) for m in messages]], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class SessionCache:
    """LRU + TTL map from conversation key to the upstream session holding that conversation."""

    def __init__(self, cfg: SessionsConfig, delete_upstream: Callable[[SessionEntry], None]) -> None:
        self.enabled = cfg.reuse
        self._max = cfg.cache_max_entries
        self._ttl = cfg.cache_ttl_sec
        self._entries: OrderedDict[str, SessionEntry] = OrderedDict()
        self._delete_upstream = delete_upstream
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def stats(self) -> dict:
        return {"entries": len(self._entries), "hits": self.hits, "misses": self.misses, "evictions": self.evictions}

    def plan(self, api_key_id: str, model: str, conv: Conversation) -> ReusePlan:
        """Claim the session holding this history, if any; a claimed entry is removed so no two turns share it."""
        cut = last_assistant_index(conv.messages)
        if not self.enabled or cut < 0 or cut == len(conv.messages) - 1:
            return ReusePlan(None, 0)
        key = conversation_key(api_key_id, model, conv, conv.messages[: cut + 1])
        entry = self._entries.pop(key, None)
        if entry is not None and time.monotonic() - entry.stored_at > self._ttl:
            self._evict(entry, "expired")
            entry = None
        if entry is None:
            self.misses += 1
            return ReusePlan(None, 0)
        self.hits += 1
        return ReusePlan(entry, cut + 1)

    def store(self, api_key_id: str, model: str, conv: Conversation, reply: Message, entry: SessionEntry) -> None:
        if not self.enabled:
            return
        key = conversation_key(api_key_id, model, conv, [*conv.messages, reply])
        entry.stored_at = time.monotonic()
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            _, oldest = self._entries.popitem(last=False)
            self._evict(oldest, "evicted")

    def forget_instance(self, instance: str) -> None:
        """A restarted instance lost its sessions: drop every entry that points at it."""
        stale = [key for key, entry in self._entries.items() if entry.instance == instance]
        for key in stale:
            del self._entries[key]

    def _evict(self, entry: SessionEntry, why: str) -> None:
        self.evictions += 1
        log.debug("session %s %s", entry.session_id, why)
        self._delete_upstream(entry)
