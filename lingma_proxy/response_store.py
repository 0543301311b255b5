"""Stored Responses for `previous_response_id`: the conversation through each response, per API key.

Bounded twice: by entries, and by the characters its conversations hold, so a few huge ones cannot hold
the memory that many small ones would. A conversation over the whole budget is not kept.
"""

from __future__ import annotations

import copy
from collections import OrderedDict

from .model import Message, messages_size


class ResponseStore:
    """Bounded in-memory LRU: response id → the conversation messages through that response's output."""

    def __init__(self, max_entries: int = 256, max_bytes: int = 128 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[str, tuple[list[Message], int]] = OrderedDict()

    def put(self, response_id: str, messages: list[Message]) -> None:
        size = messages_size(messages)
        self._drop(response_id)
        if size > self.max_bytes:
            return
        self._entries[response_id] = (copy.deepcopy(messages), size)
        self.bytes += size
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def get(self, response_id: str) -> list[Message] | None:
        """A copy, so that decoding a follow-up never alters what is stored."""
        entry = self._entries.get(response_id)
        if entry is None:
            return None
        self._entries.move_to_end(response_id)
        return copy.deepcopy(entry[0])

    def _drop(self, response_id: str) -> None:
        entry = self._entries.pop(response_id, None)
        if entry is not None:
            self.bytes -= entry[1]

    def __len__(self) -> int:
        return len(self._entries)

    def scoped(self, owner: str) -> ScopedResponseStore:
        """The view one API key gets: ids stored under another key read as unknown."""
        return ScopedResponseStore(self, owner)


class ScopedResponseStore:
    """One API key's part of a ResponseStore, with the same get and put."""

    def __init__(self, shared: ResponseStore, owner: str) -> None:
        self._shared = shared
        self._owner = owner

    def put(self, response_id: str, messages: list[Message]) -> None:
        self._shared.put(f"{self._owner}/{response_id}", messages)

    def get(self, response_id: str) -> list[Message] | None:
        return self._shared.get(f"{self._owner}/{response_id}")

    def __len__(self) -> int:
        return len(self._shared)
