"""Stop sequences over a stream: release text as soon as it cannot be the start of a stop sequence."""

from __future__ import annotations


class StopSequenceMatcher:
    def __init__(self, stops: list[str]) -> None:
        self._stops = [s for s in stops if s]
        self._hold = max((len(s) for s in self._stops), default=1) - 1
        self._pending = ""
        self.matched: str | None = None

    def feed(self, text: str) -> str:
        """The text that is safe to emit now; after a match, everything up to the stop sequence."""
        if self.matched is not None:
            return ""
        if not self._stops:
            return text
        window = self._pending + text
        first_at, first_stop = len(window), None
        for stop in self._stops:
            at = window.find(stop)
            if 0 <= at < first_at:
                first_at, first_stop = at, stop
        if first_stop is not None:
            self.matched = first_stop
            self._pending = ""
            return window[:first_at]
        keep = self._partial_suffix_length(window)
        self._pending = window[len(window) - keep :] if keep else ""
        return window[: len(window) - keep]

    def _partial_suffix_length(self, window: str) -> int:
        """Length of the longest suffix of `window` that is a proper prefix of some stop sequence."""
        for size in range(min(self._hold, len(window)), 0, -1):
            tail = window[-size:]
            if any(stop.startswith(tail) for stop in self._stops):
                return size
        return 0

    def close(self) -> str:
        rest, self._pending = self._pending, ""
        return "" if self.matched is not None else rest
