"""Ollama surface (/api/*): discovery, /api/chat and /api/generate, and clear refusals for the rest.

Ollama clients send no key by default, so auth.ollama may open these routes even when API keys are
set. Unlike the other APIs, an unknown model is a 404 here, as Ollama answers it: an Ollama client
lists models and picks one, and a silent fallback would hide a typo.
"""

from __future__ import annotations

from typing import Any

from ..errors import ApiError
from ..model import Conversation, ModelInfo
from ..wire.errors import ollama_error_body
from ..wire.models import ollama_ps, ollama_show, ollama_tags
from ..wire.ollama import decode_chat_request, decode_generate_request, model_names, requested_model
from ..wire.ollama_encoder import OllamaChatEncoder, OllamaEncoder, OllamaGenerateEncoder
from .streaming import CompletionHandler

# Ollama clients check the server's version before using newer features (VS Code asks for 0.6.4 or
# later); this is the Ollama release whose API these routes follow (`think`, `tool_name`, schemas).
OLLAMA_API_VERSION = "0.12.0"

NO_EMBEDDINGS = "Lingma has no embedding model, so lingma-proxy cannot serve embeddings."
MANAGED_BY_ACCOUNT = (
    "Models are managed by the Lingma account, not by lingma-proxy: they cannot be pulled, pushed, "
    "created, copied or deleted here. GET /api/tags lists the account's models."
)


class OllamaHandler(CompletionHandler):
    api = "ollama"
    stream_content_type = "application/x-ndjson"

    async def prepare(self) -> None:
        # Ollama clients have no key setting by default; auth.ollama: open serves them anyway.
        if self.auth == "api" and self.services.cfg.auth.ollama == "open":
            self.auth = "public"
        await super().prepare()

    def error_body(self, err: ApiError) -> dict:
        return ollama_error_body(err)

    async def find_model(self, requested: str) -> ModelInfo | None:
        """The account's model by its name, with or without a `:tag`, else a 404. None while no model list
        is known (no instance ready yet), so that the caller's own path can say why."""
        registry = self.services.models
        if not await registry.list():
            return None
        for name in model_names(requested):
            found = await registry.find(name)
            if found is not None:
                return found
        raise ApiError("not_found", f"model '{requested}' not found; GET /api/tags lists the account's models.")

    async def answer(self, conv: Conversation, encoder_class: type[OllamaEncoder]) -> None:
        requested = conv.model
        model = await self.find_model(requested)
        if model is not None:
            conv.model = model.id
        await self.complete(conv, encoder_class, "ollama-", name=requested)


class VersionHandler(OllamaHandler):
    auth = "public"  # clients probe it before anything else; it reveals no more than /healthz

    def get(self) -> None:
        self.write_json({"version": OLLAMA_API_VERSION})


class TagsHandler(OllamaHandler):
    async def get(self) -> None:
        self.write_json(ollama_tags(await self.services.models.list()))


class PsHandler(OllamaHandler):
    async def get(self) -> None:
        self.write_json(ollama_ps(await self.services.models.list()))


class ShowHandler(OllamaHandler):
    async def post(self) -> None:
        requested = requested_model(self.json_body())
        model = await self.find_model(requested)
        if model is None:
            raise ApiError("unavailable", "No Lingma instance is ready to list the account's models; retry shortly.")
        self.write_json(ollama_show(model, tools=self.services.cfg.tools.emulation != "off"))


class ChatHandler(OllamaHandler):
    async def post(self) -> None:
        await self.answer(decode_chat_request(self.json_body()), OllamaChatEncoder)


class GenerateHandler(OllamaHandler):
    async def post(self) -> None:
        await self.answer(decode_generate_request(self.json_body()), OllamaGenerateEncoder)


class NotServedHandler(OllamaHandler):
    """501 in Ollama's error shape, for every method of a route this proxy cannot serve."""

    def initialize(self, services: Any, reason: str) -> None:  # type: ignore[override]
        super().initialize(services)
        self.reason = reason

    def _refuse(self) -> None:
        self.write_json({"error": self.reason}, status=501)

    get = post = put = delete = _refuse  # type: ignore[assignment]


def ollama_routes(ctx: dict) -> list[tuple]:
    """The /api/* routes, for app.py's table (`/api/hello` is Claude Code's probe, not Ollama's)."""
    return [
        (r"/api/version", VersionHandler, ctx),
        (r"/api/tags", TagsHandler, ctx),
        (r"/api/ps", PsHandler, ctx),
        (r"/api/show", ShowHandler, ctx),
        (r"/api/chat", ChatHandler, ctx),
        (r"/api/generate", GenerateHandler, ctx),
        (r"/api/(?:embed|embeddings)", NotServedHandler, ctx | {"reason": NO_EMBEDDINGS}),
        (r"/api/(?:pull|push|create|copy|delete)", NotServedHandler, ctx | {"reason": MANAGED_BY_ACCOUNT}),
    ]
