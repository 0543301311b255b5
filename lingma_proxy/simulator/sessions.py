"""Server-side chat sessions keyed by the client's sessionId (lingma-protocol.md §5, §9)."""

from __future__ import annotations

from collections import deque
from typing import Any

RECENT_DELETIONS = 1000


class SessionStore:
    def __init__(self) -> None:
        self._turns: dict[str, list[dict[str, str]]] = {}
        self.deleted: deque[str] = deque(maxlen=RECENT_DELETIONS)

    def add_question(self, session_id: str, text: str, is_reply: bool) -> None:
        """`isReply: false` starts the history afresh; `isReply: true` continues it."""
        if not is_reply or session_id not in self._turns:
            self._turns[session_id] = []
        self._turns[session_id].append({"role": "user", "text": text})

    def add_answer(self, session_id: str, text: str) -> None:
        if session_id in self._turns:
            self._turns[session_id].append({"role": "assistant", "text": text})

    def has(self, session_id: str) -> bool:
        return session_id in self._turns

    def user_texts(self, session_id: str) -> list[str]:
        return [turn["text"] for turn in self._turns.get(session_id, []) if turn["role"] == "user"]

    def turns(self, session_id: str) -> list[dict[str, str]] | None:
        turns = self._turns.get(session_id)
        return list(turns) if turns is not None else None

    def delete(self, session_id: str) -> None:
        self._turns.pop(session_id, None)
        self.deleted.append(session_id)

    def turn_counts(self) -> dict[str, Any]:
        return {sid: sum(t["role"] == "user" for t in turns) for sid, turns in self._turns.items()}
