"""The `config/queryModels` answer: scene → models, shaped like the real local list (docs/protocol.md §4)."""

from __future__ import annotations

from typing import Any

SCENES = ("assistant", "chat", "developer", "inline", "quest")

# (key, displayName, isReasoning, isVl), real keys as seen in captures.
_MODELS = (
    ("auto", "Auto", False, False),
    ("org_auto", "Org Auto", False, False),
    ("dashscope_qwen3_coder", "Qwen3-Coder", False, False),
    ("dashscope_qwen3_coder_default", "Qwen3-Coder (default)", False, False),
    ("dashscope_qwen_max_latest", "Qwen-Max", False, False),
    ("dashscope_qwen_plus_20250428_thinking", "Qwen-Plus (thinking)", True, False),
    ("dashscope_qmodel", "Qwen3", False, False),
    ("q35model", "Qwen3.5", False, True),
)

_INLINE_KEYS = ("auto", "dashscope_qwen3_coder")


def is_vision_model(key: str) -> bool:
    return any(model[0] == key and model[3] for model in _MODELS)


def _entry(key: str, display_name: str, is_reasoning: bool, is_vl: bool) -> dict[str, Any]:
    return {
        "key": key,
        "displayName": display_name,
        "format": "openai",
        "source": "system",
        "isReasoning": is_reasoning,
        "isVl": is_vl,
        "url": "",
        "apiKey": "",
        "model": "",
    }


def query_models_result(logged_in: bool) -> dict[str, list[dict[str, Any]]]:
    if not logged_in:
        return {}
    result = {}
    for scene in SCENES:
        models = [m for m in _MODELS if scene != "inline" or m[0] in _INLINE_KEYS]
        result[scene] = [_entry(*model) for model in models]
    return result
