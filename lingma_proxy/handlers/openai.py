"""OpenAI chat surface: /v1/models (either vendor's shape) and /v1/chat/completions."""

from __future__ import annotations

from ..wire.models import anthropic_models_list, openai_models_list
from ..wire.openai_chat import decode_chat_request
from ..wire.openai_chat_encoder import ChatCompletionsEncoder
from .base import BaseHandler
from .streaming import CompletionHandler


class ModelsHandler(BaseHandler):
    protocol = "auto"

    async def get(self) -> None:
        models = await self.services.models.list()
        listing = anthropic_models_list if self.caller_speaks_anthropic() else openai_models_list
        self.write_json(listing(models))


class ChatCompletionsHandler(CompletionHandler):
    api = "openai_chat"

    async def post(self) -> None:
        conv, options = decode_chat_request(self.json_body())
        await self.complete(conv, ChatCompletionsEncoder, "chatcmpl-", include_usage=options.include_usage)
