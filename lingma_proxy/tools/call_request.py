"""A call as read out of a block body, before its tool name and arguments are checked; shared by the
JSON readers (`tools/calls.py`) and the model families' XML and token readers (`tools/xml_calls.py`,
`tools/families.py`)."""

from __future__ import annotations

from dataclasses import dataclass


class NotACall(ValueError):
    """The body is not a tool call; the message says why."""


@dataclass(slots=True)
class CallRequest:
    """A call as the model wrote it, before the tool name and arguments are checked."""

    name: str
    arguments: dict
    explicit_arguments: bool  # an arguments key was present (a bare {"name": ...} may be prose JSON)
