"""What the simulator counted, for tests to assert on through `/sim/status`."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

RECENT_ASKS = 200
RECENT_STOPS = 1000


@dataclass
class SimStats:
    asks: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT_ASKS))
    ask_count: int = 0
    total_question_bytes: int = 0
    server_requests: int = 0  # server→client requests sent, each expecting an ack
    acks: int = 0
    ack_errors: int = 0  # acks that came back as JSON-RPC errors (still counted in `acks`)
    unacked_timeouts: int = 0
    stops: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_STOPS))
    active_chats: int = 0
    max_active_chats: int = 0
    images: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT_ASKS))
    workspaces: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_ASKS))  # rootUri and cwd seen
    # How native tool results came back: "reply" (in the tool/invoke reply) or "invoke_result" (§6).
    tool_results: dict[str, int] = field(default_factory=lambda: {"reply": 0, "invoke_result": 0})

    def record_ask(
        self,
        request_id: str,
        session_id: str,
        is_reply: bool,
        question: str,
        model: str,
        mode: str,
        image_urls: tuple[str, ...] = (),
    ) -> None:
        size = len(question.encode("utf-8"))
        self.ask_count += 1
        self.total_question_bytes += size
        self.asks.append(
            {
                "requestId": request_id,
                "sessionId": session_id,
                "isReply": is_reply,
                "question_bytes": size,
                "question_head": question[:200],
                "model": model,
                "mode": mode,
                "imageUrls": list(image_urls),
            }
        )

    def record_image(self, request_id: str, mime_type: str, data: str, uri: str) -> None:
        self.images.append({"requestId": request_id, "mimeType": mime_type, "data_chars": len(data), "uri": uri})

    def record_workspace(self, where: Any) -> None:
        if isinstance(where, str) and where:
            self.workspaces.append(where)

    def chat_started(self) -> None:
        self.active_chats += 1
        self.max_active_chats = max(self.max_active_chats, self.active_chats)

    def chat_ended(self) -> None:
        self.active_chats -= 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "asks": list(self.asks),
            "ask_count": self.ask_count,
            "total_question_bytes": self.total_question_bytes,
            "server_requests": self.server_requests,
            "acks": self.acks,
            "ack_errors": self.ack_errors,
            "unacked_timeouts": self.unacked_timeouts,
            "stops": list(self.stops),
            "active_chats": self.active_chats,
            "max_active_chats": self.max_active_chats,
            "images": list(self.images),
            "workspaces": list(self.workspaces),
            "tool_results": dict(self.tool_results),
        }
