"""Context windows and vision flags of the model list (docs/protocol.md §11.9): the table, the list's own figures,
and the operator's config, in that order of strength."""

from __future__ import annotations

from lingma_proxy.models import BUILTIN_CONTEXT_WINDOWS, flatten_models

KEYS_2026 = ("qmodel_38max", "qfmodel", "qmodel_latest", "qmodel", "q36fmodel", "kmodel", "mmodel", "gm51model",
             "dmodel", "dfmodel")


def test_the_table_covers_every_2026_key() -> None:
    assert all(BUILTIN_CONTEXT_WINDOWS[key] >= 131_072 for key in KEYS_2026)
    assert BUILTIN_CONTEXT_WINDOWS["mmodel"] == 204_800 and BUILTIN_CONTEXT_WINDOWS["kmodel"] == 262_144


def test_the_lists_own_context_size_and_vision_flag_win_over_the_table_and_config_wins_over_both() -> None:
    raw = {
        "chat": [
            {"key": "kmodel", "displayName": "Kimi-K2.6"},
            {"key": "qmodel", "displayName": "Qwen3.7-Plus", "contextConfig": {"maxInputTokens": 1_000_000}, "isVl": True},
            {"key": "dmodel", "context_config": 1_048_576, "is_vl": True},
            {"key": "mmodel", "contextConfig": "nonsense"},
            {"key": "gm51model", "contextConfig": 300_000},
        ]
    }
    models = {model.id: model for model in flatten_models(raw, {"gm51model": 123_456})}
    assert models["kmodel"].context_window == 262_144 and not models["kmodel"].is_vision
    assert models["qmodel"].context_window == 1_000_000 and models["qmodel"].is_vision
    assert models["dmodel"].context_window == 1_048_576 and models["dmodel"].is_vision
    assert models["dmodel"].display_name == "dmodel"
    assert models["mmodel"].context_window == 204_800  # an unreadable figure falls back to the table
    assert models["gm51model"].context_window == 123_456  # lingma.context_windows
