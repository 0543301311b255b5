"""lingma.fallback_models: when the chosen model cannot answer now, the next model in the list may.

Only failures that say "this model, not this request" move a request: its quota or daily limit, a queue
that did not clear, or the model being unavailable; and only before Lingma sent anything for it.
"""

from __future__ import annotations

from ..errors import ApiError
from ..upstream.failures import DAILY_LIMIT, MODEL_UNAVAILABLE, QUOTA_EXCEEDED
from .retries import QUEUE_TIMEOUT

FALLBACK_CODES = frozenset({QUOTA_EXCEEDED, DAILY_LIMIT, QUEUE_TIMEOUT, MODEL_UNAVAILABLE})


class ModelFallback:
    """One request's way down lingma.fallback_models, each model at most once."""

    def __init__(self, fallback_models: list[str], first: str) -> None:
        self._order = fallback_models
        self._tried = {first}

    def next_model(self, current: str, err: ApiError) -> str | None:
        """The model to try after `current` failed with `err`, or None: the client gets `err`."""
        if err.code not in FALLBACK_CODES:
            return None
        start = self._order.index(current) + 1 if current in self._order else 0
        for model in self._order[start:] + self._order[:start]:
            if model not in self._tried:
                self._tried.add(model)
                return model
        return None
