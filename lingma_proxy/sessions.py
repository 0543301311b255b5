"""Session reuse: map a conversation's history to the upstream session that already holds it (docs/features.md §3).

The key is a hash of the API key, the resolved model and prompt.render_prefix_for_key(): everything the
conversation's meaning depends on, up to the newest assistant message, in a form that is the same on
OpenAI chat, Responses and Anthropic. After a successful turn the proxy stores the key of
"history + this reply", so the client's next request, which resends that history, finds it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .config import SessionsConfig
from .events import ToolCall
from .model import Conversation
from .prompt import delta_start, render_prefix_after_reply, render_prefix_for_key

log = logging.getLogger("lingma_proxy.sessions")


@dataclass
class SessionEntry:
    instance: str
    generation: int
    session_id: str
    stored_at: float = 0.0


@dataclass
class ReusePlan:
    """How to send this turn: a continuation of `entry` from message `start` on, or a miss (entry None)."""

    entry: SessionEntry | None
    start: int


def _key(api_key_id: str, model: str, canonical: str) -> str:
    return hashlib.sha256(f"{api_key_id}\0{model}\0{canonical}".encode()).hexdigest()


class SessionCache:
    """LRU + TTL map from conversation key to the upstream session holding that conversation."""

    def __init__(
        self,
        cfg: SessionsConfig,
        delete_upstream: Callable[[SessionEntry], None],
        trusted: Callable[[str], bool] = lambda instance: True,
    ) -> None:
        """`trusted(instance)`: may a session on that instance be continued? (sessions.reuse: auto asks the
        canary's verdict for its runtime, completion/reuse_trust.py.)"""
        self.enabled = cfg.reuse != "off"
        self._trusted = trusted
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
        if not self.enabled:
            return ReusePlan(None, 0)
        start = delta_start(conv)
        if start is None:  # a first turn (or an assistant prefill) is a full send
            self.misses += 1
            return ReusePlan(None, 0)
        entry = self._entries.pop(_key(api_key_id, model, render_prefix_for_key(conv, start)), None)
        if entry is not None and time.monotonic() - entry.stored_at > self._ttl:
            self._evict(entry, "expired")
            entry = None
        if entry is not None and not self._trusted(entry.instance):
            self._evict(entry, "untrusted")  # its runtime's canary has since found that follow-ups forget
            entry = None
        if entry is None:
            self.misses += 1
            return ReusePlan(None, 0)
        self.hits += 1
        return ReusePlan(entry, start)

    def store(
        self,
        api_key_id: str,
        model: str,
        conv: Conversation,
        reply_text: str,
        calls: Sequence[ToolCall],
        entry: SessionEntry,
    ) -> bool:
        """Keep `entry` for the conversation's next turn; False when it is not kept (delete it upstream)."""
        if not self.enabled or not self._trusted(entry.instance):
            return False
        key = _key(api_key_id, model, render_prefix_after_reply(conv, reply_text, calls))
        now = time.monotonic()
        entry.stored_at = now
        replaced = self._entries.pop(key, None)
        if replaced is not None and replaced.session_id != entry.session_id:
            self._evict(replaced, "replaced")
        self._entries[key] = entry
        # Entries are in storage order, so the expired ones are at the front.
        while self._entries:
            oldest = next(iter(self._entries.values()))
            if len(self._entries) <= self._max and now - oldest.stored_at <= self._ttl:
                break
            self._entries.popitem(last=False)
            self._evict(oldest, "evicted" if now - oldest.stored_at <= self._ttl else "expired")
        return True

    def abandon(self, entry: SessionEntry) -> None:
        """A claimed session that cannot be continued after all (its instance is busy or restarted)."""
        self.hits -= 1
        self.misses += 1
        self.discard(entry)

    def discard(self, entry: SessionEntry) -> None:
        """An upstream session nobody will continue (a failed or cancelled turn): delete it upstream."""
        self._delete_upstream(entry)

    def forget_instance(self, instance: str) -> None:
        """A restarted instance lost its sessions: drop every entry that points at it."""
        stale = [key for key, entry in self._entries.items() if entry.instance == instance]
        for key in stale:
            del self._entries[key]

    def _evict(self, entry: SessionEntry, why: str) -> None:
        self.evictions += 1
        log.debug("session %s %s", entry.session_id, why)
        self._delete_upstream(entry)
