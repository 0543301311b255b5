"""The `config/queryModels` answer: scene → models, shaped like the real local list (docs/protocol.md §4)."""

from __future__ import annotations

from typing import Any

SCENES = ("assistant", "chat", "developer", "inline", "quest")

# (key, displayName, isReasoning, isVl), real keys as seen in captures.
_LINGMA_MODELS = (
    ("auto", "Auto", False, False),
    ("org_auto", "Org Auto", False, False),
    ("dashscope_qwen3_coder", "Qwen3-Coder", False, False),
    ("dashscope_qwen3_coder_default", "Qwen3-Coder (default)", False, False),
    ("dashscope_qwen_max_latest", "Qwen-Max", False, False),
    ("dashscope_qwen_plus_20250428_thinking", "Qwen-Plus (thinking)", True, False),
    ("dashscope_qmodel", "Qwen3", False, False),
    ("q35model", "Qwen3.5", False, True),
)

# QoderCN's 2026 keys and display names (docs/protocol.md §11.9). Which of them take images, or reason, is
# not reported: isVl on qmodel (Qwen3.7-Plus) and isReasoning on dmodel are simulator choices.
_QODERCN_MODELS = (
    ("auto", "Auto", False, False),
    ("qmodel_38max", "Qwen3.8-Max", False, False),
    ("qfmodel", "Qwen3.8-Flash", False, False),
    ("qmodel_latest", "Qwen3.7-Max", False, False),
    ("qmodel", "Qwen3.7-Plus", False, True),
    ("q36fmodel", "Qwen3.6-Flash", False, False),
    ("kmodel", "Kimi-K2.6", False, False),
    ("mmodel", "MiniMax-M2.7", False, False),
    ("gm51model", "GLM-5.1", False, False),
    ("dmodel", "DeepSeek-V4-Pro", True, False),
    ("dfmodel", "DeepSeek-V4-Flash", False, False),
)
_CATALOGS = {"lingma": _LINGMA_MODELS, "qodercn": _QODERCN_MODELS}
_INLINE_KEYS = ("auto", "dashscope_qwen3_coder", "qfmodel")


def is_vision_model(key: str, family: str = "lingma") -> bool:
    return any(model[0] == key and model[3] for model in _CATALOGS[family])


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


def query_models_result(logged_in: bool, family: str = "lingma") -> dict[str, list[dict[str, Any]]]:
    if not logged_in:
        return {}
    result = {}
    for scene in SCENES:
        models = [m for m in _CATALOGS[family] if scene != "inline" or m[0] in _INLINE_KEYS]
        result[scene] = [_entry(*model) for model in models]
    return result
