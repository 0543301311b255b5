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
# The local list carries no limits (docs/protocol.md §4), so known keys get published figures. The 2026 keys
# (§11.9) get their model line's published window, rounded down where sources differ: Qwen3-Max 262,144 (Alibaba
# Model Studio; Plus and Flash list up to 1M, kept at 262,144 until a real list says more), Kimi K2 262,144
# (Moonshot, K2-0905), MiniMax-M2 204,800 (MiniMax), GLM 200K (Zhipu, GLM-4.6 onwards), DeepSeek 128K (the
# V3.x API; V4's larger figures are unconfirmed).
BUILTIN_CONTEXT_WINDOWS = {
    "auto": 131_072,
    "org_auto": 131_072,
    "dashscope_qwen3_coder": 262_144,
    "dashscope_qwen3_coder_default": 262_144,
    "dashscope_qwen_max_latest": 131_072,
    "dashscope_qwen_plus_20250428_thinking": 131_072,
    "dashscope_qmodel": 131_072,
    "q35model": 262_144,
    "qmodel_38max": 262_144,
    "qfmodel": 262_144,
    "qmodel_latest": 262_144,
    "qmodel": 262_144,
    "q36fmodel": 262_144,
    "kmodel": 262_144,
    "mmodel": 204_800,
    "gm51model": 200_000,
    "dmodel": 131_072,
    "dfmodel": 131_072,
}
# Where an entry of config/queryModels carries its own window (the cloud catalog's `context_config`, §11.9;
# whether the local list does is [unverified]), it wins over the table: a number, or one of these keys.
_CONTEXT_KEYS = ("contextWindow", "context_window", "maxContextTokens", "max_context_tokens", "maxInputTokens",
                 "max_input_tokens", "maxTokens", "max_tokens", "limit")


def listed_context_window(model: dict) -> int | None:
    """The window an entry of config/queryModels states itself (contextConfig / context_config), if any."""
    for field in ("contextConfig", "context_config"):
        value = model.get(field)
        if isinstance(value, dict):
            value = next((value[key] for key in _CONTEXT_KEYS if key in value), None)
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _context_window(key: str, model: dict, configured: dict[str, int]) -> int:
    """lingma.context_windows first (the operator knows best), then the list's own figure, then the table."""
    if key in configured:
        return configured[key]
    return listed_context_window(model) or BUILTIN_CONTEXT_WINDOWS.get(key, _DEFAULT_CONTEXT_WINDOW)


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
                context_window=_context_window(key, model, context_windows),
                is_reasoning=bool(model.get("isReasoning")),
                is_vision=bool(model.get("isVl", model.get("is_vl"))),
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
