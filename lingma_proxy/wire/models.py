"""The model list in OpenAI and Anthropic shapes (docs/features.md §4, §5).

Lingma's model list has no creation dates, so `created` is 0 and `created_at` the epoch: honest
values for "unknown" rather than invented ones.
"""

from __future__ import annotations

from dataclasses import dataclass

_UNKNOWN_CREATED_AT = "1970-01-01T00:00:00Z"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str  # stable and usable as `model` in requests
    display_name: str
    context_window: int
    is_reasoning: bool = False
    is_vision: bool = False


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
