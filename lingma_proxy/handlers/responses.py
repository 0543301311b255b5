"""OpenAI Responses surface: /v1/responses and /responses (Codex CLI)."""

from __future__ import annotations

import logging

from ..logs import clip
from ..wire.responses import decode_responses_request
from ..wire.responses_encoder import ResponsesEncoder
from .streaming import CompletionHandler

log = logging.getLogger("lingma_proxy.responses")
_SHOWN_TOOL_TYPES = 5


class ResponsesHandler(CompletionHandler):
    api = "openai_responses"
    async def post(self) -> None:
        store = self.services.responses.scoped(self.api_key_id)
        conv, options = decode_responses_request(self.json_body(), store.get)
        if options.ignored_tool_types:
            ignored = options.ignored_tool_types
            shown = ", ".join(clip(kind, 40) for kind in ignored[:_SHOWN_TOOL_TYPES])
            more = f" and {len(ignored) - _SHOWN_TOOL_TYPES} more" if len(ignored) > _SHOWN_TOOL_TYPES else ""
            log.info("ignoring unsupported Responses tool types: %s%s", shown, more)
        keep = store.put if options.store else None
        await self.complete(conv, ResponsesEncoder, "resp_", options=options, on_complete=keep)
