"""Test-only JSON pages on `--httpPort`: `/sim/status` (counts) and `/sim/sessions/<id>` (one session's turns)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ujson
from tornado.web import RequestHandler

from lingma_proxy.simulator.sessions import SessionStore


class _JsonHandler(RequestHandler):
    def write_json(self, value: Any) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.write(ujson.dumps(value, ensure_ascii=False))


class SimStatusHandler(_JsonHandler):
    def initialize(self, snapshot: Callable[[], dict[str, Any]]) -> None:  # type: ignore[override]
        self._snapshot = snapshot

    def get(self) -> None:
        self.write_json(self._snapshot())


class SessionTurnsHandler(_JsonHandler):
    def initialize(self, sessions: SessionStore) -> None:  # type: ignore[override]
        self._sessions = sessions

    def get(self, session_id: str) -> None:
        turns = self._sessions.turns(session_id)
        if turns is None:
            self.set_status(404)
            self.write_json({"error": f"no session {session_id}"})
            return
        self.write_json({"sessionId": session_id, "turns": turns, "deleted": self._sessions.is_deleted(session_id)})
