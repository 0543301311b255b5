"""The last API requests and live totals for the status page: route, model, status and timings, never a body.

Prometheus histograms give no percentile back, so the p50 first-token latency is computed here from a
bounded window of recent completions.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from dataclasses import asdict, dataclass

RECENT_CAPACITY = 20
LATENCY_WINDOW = 200
_MAX_ROUTE_CHARS = 200  # unknown routes come from the client: keep a hostile path from bloating the list


def is_api_route(path: str) -> bool:
    """Only the API is recorded: the status page's own polling, /healthz and /internal/* would drown it."""
    return path.startswith("/v1/") or path in ("/responses", "/api/chat", "/api/generate")


@dataclass(slots=True)
class RequestRecord:
    method: str
    route: str
    status: int
    duration_ms: float
    model: str = ""  # the resolved model key, when the request got that far
    first_token_ms: int | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    instance: str = ""
    time: float = 0.0  # wall clock, set on record()


class RecentRequests:
    def __init__(self, capacity: int = RECENT_CAPACITY, latency_window: int = LATENCY_WINDOW) -> None:
        self._recent: deque[RequestRecord] = deque(maxlen=capacity)
        self._first_token_ms: deque[int] = deque(maxlen=latency_window)
        self.requests = 0
        self.errors = 0
        self.unauthenticated = 0  # 401s: counted, never listed
        self.input_tokens = 0
        self.output_tokens = 0

    def record(self, entry: RequestRecord) -> None:
        entry.route = entry.route[:_MAX_ROUTE_CHARS]
        entry.time = time.time()
        self._recent.append(entry)
        self.requests += 1
        self.errors += entry.status >= 400
        self.input_tokens += entry.input_tokens
        self.output_tokens += entry.output_tokens
        if entry.first_token_ms is not None:
            self._first_token_ms.append(entry.first_token_ms)

    def first_token_p50_ms(self) -> float | None:
        return statistics.median(self._first_token_ms) if self._first_token_ms else None

    def counters(self) -> dict:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "unauthenticated": self.unauthenticated,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "first_token_p50_ms": self.first_token_p50_ms(),
            "first_token_samples": len(self._first_token_ms),
        }

    def recent(self) -> list[dict]:
        """Newest first."""
        return [{**asdict(entry), "duration_ms": round(entry.duration_ms, 1)} for entry in reversed(self._recent)]
