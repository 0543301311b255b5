"""Anthropic surface: /v1/messages (also ?beta=true) and /v1/messages/count_tokens."""

from __future__ import annotations

from ..wire.anthropic import decode_messages_request
from ..wire.anthropic_encoder import AnthropicEncoder
from .streaming import CompletionHandler


class AnthropicHandler(CompletionHandler):
    protocol = "anthropic"
    api = "anthropic"
    keepalive_sec = 10.0  # Anthropic clients expect a ping about every 10 s while waiting


class MessagesHandler(AnthropicHandler):
    async def post(self) -> None:
        conv = decode_messages_request(self.json_body())
        await self.complete(conv, AnthropicEncoder, "msg_")


class CountTokensHandler(AnthropicHandler):
    """Exact count of the prompt a real request would send; needs no upstream instance."""

    async def post(self) -> None:
        body = self.json_body()
        body.setdefault("max_tokens", 1)  # count_tokens takes no max_tokens; the decoder requires one
        conv = decode_messages_request(body)
        self.write_json({"input_tokens": await self.services.completions.count_tokens(conv)})
