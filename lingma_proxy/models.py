"""The account's model list (from `config/queryModels`) and resolution of a request's `model` field."""

from __future__ import annotations

import logging
import time

from .config import LingmaConfig
from .model import ModelInfo
from .upstream.pool import Pool

log = logging.getLogger("lingma_proxy.models")

_CACHE_SEC = 60.0
_DEFAULT_CONTEXT_WINDOW = 131_072
# The local list carries no limits (docs/protocol.md §4), so known keys get published figures.
BUILTIN_CONTEXT_WINDOWS = {
    "auto": 131_072,
    "org_auto": 131_072,
    "dashscope_qwen3_coder": 262_144,
    "dashscope_qwen3_coder_default": 262_144,
    "dashscope_qwen_max_latest": 131_072,
    "dashscope_qwen_plus_20250428_thinking": 131_072,
    "dashscope_qmodel": 131_072,
    "q35model": 262_144,
}


def flatten_models(raw: dict, context_windows: dict[str, int]) -> list[ModelInfo]:
    """Scene → models map to one list, deduplicated by key, in first-seen order."""
    seen: dict[str, ModelInfo] = {}
    for models in raw.values() if isinstance(raw, dict) else ():
        for model in models if isinstance(models, list) else ():
            key = model.get("key") if isinstance(model, dict) else None
            if not key or key in seen:
                continue
            seen[key] = ModelInfo(
                id=key,
                display_name=model.get("displayName") or key,
                context_window=context_windows.get(key, BUILTIN_CONTEXT_WINDOWS.get(key, _DEFAULT_CONTEXT_WINDOW)),
                is_reasoning=bool(model.get("isReasoning")),
                is_vision=bool(model.get("isVl")),
            )
    return list(seen.values())


class ModelRegistry:
    def __init__(self, cfg: LingmaConfig, pool: Pool) -> None:
        self._cfg = cfg
        self._pool = pool
        self._models: list[ModelInfo] = []
        self._fetched_at = 0.0

    async def list(self) -> list[ModelInfo]:
        if self._models and time.monotonic() - self._fetched_at < _CACHE_SEC:
            return self._models
        client = self._pool.ready_client()
        if client is None:
            return self._models
        raw = await client.query_models()
        models = flatten_models(raw, self._cfg.context_windows)
        if models:
            self._models, self._fetched_at = models, time.monotonic()
        return self._models

    async def find(self, requested: str) -> ModelInfo | None:
        """An exact key, an alias or a display name (any case); None when the account has no such model."""
        return self._match(await self.list(), requested)

    async def resolve(self, requested: str) -> ModelInfo:
        """What find() matches; anything else maps to lingma.default_model."""
        models = await self.list()
        found = self._match(models, requested) or self._match(models, self._cfg.default_model)
        if found is not None:
            return found
        if models:
            return models[0]
        default = self._cfg.model_aliases.get(self._cfg.default_model, self._cfg.default_model)
        return ModelInfo(
            id=default,
            display_name=default,
            context_window=_DEFAULT_CONTEXT_WINDOW,
            is_reasoning=False,
            is_vision=False,
        )

    def _match(self, models: list[ModelInfo], requested: str) -> ModelInfo | None:
        name = self._cfg.model_aliases.get(requested, requested)
        for model in models:
            if model.id == name:
                return model
        lowered = name.lower()
        return next((model for model in models if model.display_name.lower() == lowered), None)
