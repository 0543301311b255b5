"""Server-side chat sessions keyed by the client's sessionId (docs/protocol.md §5, §9)."""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any

RECENT_DELETIONS = 1000
CONTEXT_LIMIT_TOKENS = 131072
CHARS_PER_TOKEN = 4  # a rough usage figure; the real one comes from the cloud


class SessionStore:
    def __init__(self, forget_history: bool = False) -> None:
        # A fault that lets the probe's two-turn memory check be seen to fail.
        self._forget = forget_history
        self._turns: dict[str, list[dict[str, str]]] = {}
        self.deleted: deque[str] = deque(maxlen=RECENT_DELETIONS)
        # Test-only: deleted sessions stay readable on /sim/sessions/<id>, so tests can inspect what a
        # turn received even after the proxy cleaned the session up.
        self._archive: OrderedDict[str, list[dict[str, str]]] = OrderedDict()

    def add_question(self, session_id: str, text: str, is_reply: bool) -> None:
        """`isReply: false` starts the history afresh; `isReply: true` continues it."""
        if not is_reply or self._forget or session_id not in self._turns:
            self._turns[session_id] = []
        self._turns[session_id].append({"role": "user", "text": text})

    def add_answer(self, session_id: str, text: str) -> None:
        if session_id in self._turns:
            self._turns[session_id].append({"role": "assistant", "text": text})

    def context_tokens(self, session_id: str, full_answer: str) -> int:
        """What the session holds after this turn, every question and answer so far with this answer, in
        rough tokens: the usage figure both dialects report (docs/protocol.md §11.5)."""
        turns = self._turns.get(session_id) or []
        chars = sum(len(turn["text"]) for turn in turns)
        chars += len(full_answer) if not turns or turns[-1]["role"] != "assistant" else 0
        return chars // CHARS_PER_TOKEN

    def has(self, session_id: str) -> bool:
        return session_id in self._turns

    def user_texts(self, session_id: str) -> list[str]:
        return [turn["text"] for turn in self._turns.get(session_id, []) if turn["role"] == "user"]

    def turns(self, session_id: str) -> list[dict[str, str]] | None:
        turns = self._turns.get(session_id, self._archive.get(session_id))
        return list(turns) if turns is not None else None

    def is_deleted(self, session_id: str) -> bool:
        return session_id not in self._turns and session_id in self._archive

    def delete(self, session_id: str) -> None:
        turns = self._turns.pop(session_id, None)
        if turns is not None:
            self._archive[session_id] = turns
            if len(self._archive) > RECENT_DELETIONS:
                self._archive.popitem(last=False)
        self.deleted.append(session_id)

    def turn_counts(self) -> dict[str, Any]:
        return {sid: sum(t["role"] == "user" for t in turns) for sid, turns in self._turns.items()}
