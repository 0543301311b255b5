"""OpenAI Responses surface: /v1/responses and /responses (Codex CLI)."""

from __future__ import annotations

import logging

from ..wire.responses import decode_responses_request
from ..wire.responses_encoder import ResponsesEncoder
from .base import BaseHandler

log = logging.getLogger("lingma_proxy.responses")


class ResponsesHandler(BaseHandler):
    api = "openai_responses"
    async def post(self) -> None:
        store = self.services.responses.scoped(self.api_key_id)
        conv, options = decode_responses_request(self.json_body(), store)
        if options.ignored_tool_types:
            log.info("ignoring unsupported Responses tool types: %s", ", ".join(options.ignored_tool_types))
        await self.complete(conv, ResponsesEncoder, "resp_", options=options, store=store)
