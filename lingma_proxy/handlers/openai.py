"""OpenAI chat surface: /v1/models (either vendor's shape) and /v1/chat/completions."""

from __future__ import annotations

import time

from ..wire.ids import new_id
from ..wire.models import anthropic_models_list, openai_models_list
from ..wire.openai_chat import decode_chat_request
from ..wire.openai_chat_encoder import ChatCompletionsEncoder
from .base import BaseHandler


class ModelsHandler(BaseHandler):
    def error_protocol(self) -> str:
        return "anthropic" if self._anthropic_caller() else "openai"

    def _anthropic_caller(self) -> bool:
        headers = self.request.headers
        return "anthropic-version" in headers or "x-api-key" in headers

    async def get(self) -> None:
        models = await self.services.models.list()
        listing = anthropic_models_list if self._anthropic_caller() else openai_models_list
        self.write_json(listing(models))


class ChatCompletionsHandler(BaseHandler):
    api = "openai_chat"
    async def post(self) -> None:
        conv, options = decode_chat_request(self.json_body())
        await self.complete(
            conv,
            lambda prepared: ChatCompletionsEncoder(
                conv,
                response_id=new_id("chatcmpl-"),
                model=prepared.model,
                created=int(time.time()),
                input_tokens=prepared.input_tokens,
                include_usage=options.include_usage,
            ),
        )
