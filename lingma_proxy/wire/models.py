"""The model list in OpenAI, Anthropic and Ollama shapes (docs/features.md §4, §5).

Lingma's model list has no creation dates, so `created` is 0 and `created_at` the epoch: honest
values for "unknown" rather than invented ones.
"""

from __future__ import annotations

import hashlib

from ..model import ModelInfo

_UNKNOWN_CREATED_AT = "1970-01-01T00:00:00Z"
_NEVER_EXPIRES = "9999-12-31T23:59:59Z"


def openai_models_list(models: list[ModelInfo]) -> dict:
    data = [
        {
            "id": model.id,
            "object": "model",
            "created": 0,
            "owned_by": "lingma",
            "name": model.display_name,
            "context_window": model.context_window,
        }
        for model in models
    ]
    return {"object": "list", "data": data}


def anthropic_models_list(models: list[ModelInfo]) -> dict:
    data = [
        {
            "type": "model",
            "id": model.id,
            "display_name": model.display_name,
            "created_at": _UNKNOWN_CREATED_AT,
            # anthropic-python 2.x requires `lifecycle`; max_input_tokens is the API's context size.
            "lifecycle": "active",
            "max_input_tokens": model.context_window,
        }
        for model in models
    ]
    return {
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


# --- Ollama (/api/tags, /api/show, /api/ps) ----------------------------------------------------
# Ollama describes local weight files; a Lingma model has none, so size is 0, the format and family
# say "lingma", and the digest is a stable hash of the key (clients use it to tell models apart).

OLLAMA_TAG = ":latest"  # Ollama names carry a tag; every Lingma model has just this one


def _ollama_details() -> dict:
    return {
        "parent_model": "",
        "format": "lingma",
        "family": "lingma",
        "families": ["lingma"],
        "parameter_size": "",
        "quantization_level": "",
    }


def _ollama_entry(model: ModelInfo) -> dict:
    name = model.id + OLLAMA_TAG
    return {
        "name": name,
        "model": name,
        "modified_at": _UNKNOWN_CREATED_AT,
        "size": 0,
        "digest": hashlib.sha256(model.id.encode()).hexdigest(),
        "details": _ollama_details(),
    }


def ollama_tags(models: list[ModelInfo]) -> dict:
    return {"models": [_ollama_entry(model) for model in models]}


def ollama_ps(models: list[ModelInfo]) -> dict:
    """Every account model counts as loaded: Lingma serves them remotely and never unloads one."""
    return {
        "models": [
            _ollama_entry(model)
            | {"expires_at": _NEVER_EXPIRES, "size_vram": 0, "context_length": model.context_window}
            for model in models
        ]
    }


def ollama_show(model: ModelInfo, tools: bool) -> dict:
    """`capabilities` are what this proxy serves for the model: tools through the emulation (unless it
    is off), vision for isVl models, thinking for isReasoning ones."""
    capabilities = ["completion"]
    if tools:
        capabilities.append("tools")
    if model.is_vision:
        capabilities.append("vision")
    if model.is_reasoning:
        capabilities.append("thinking")
    return {
        "license": "",
        "modelfile": "",
        "parameters": "",
        "template": "",
        "details": _ollama_details(),
        # Clients read the context size from "<general.architecture>.context_length".
        "model_info": {
            "general.architecture": "lingma",
            "general.basename": model.display_name,
            "lingma.context_length": model.context_window,
        },
        "capabilities": capabilities,
        "modified_at": _UNKNOWN_CREATED_AT,
    }
