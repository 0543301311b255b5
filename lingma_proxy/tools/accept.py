"""Whether a call read out of a block is accepted: a declared tool, with arguments its schema allows."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from ..events import ToolCall
from ..model import ToolSpec
from .call_request import CallRequest
from .jsontext import compact_json


@dataclass(slots=True)
class RejectedBlock:
    """A block that looked like a call but is not one; kept for repair prompts and metrics."""

    raw: str
    reason: str  # "unknown tool", "invalid arguments: ...", "invalid JSON: ...", "unterminated", ...
    tool: str | None = None


def checked_call(
    request: CallRequest, raw: str, tools: dict[str, ToolSpec], id_prefix: str
) -> ToolCall | RejectedBlock:
    """A call of a declared tool whose arguments pass its schema; otherwise why not."""
    tool = tools.get(request.name)
    if tool is None:
        return RejectedBlock(raw, "unknown tool", request.name)
    # jsonschema and its dependencies (~4 MB resident) are loaded by the first call checked, not with the server.
    from .schema import validate_arguments

    error = validate_arguments(tool, request.arguments)
    if error is not None:
        return RejectedBlock(raw, f"invalid arguments: {error}", request.name)
    arguments = compact_json(request.arguments)
    return ToolCall(id=f"{id_prefix}{secrets.token_hex(12)}", name=request.name, arguments=arguments)
