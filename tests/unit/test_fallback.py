"""The order lingma.fallback_models is walked in (lingma_proxy/completion/fallback.py)."""

from __future__ import annotations

from lingma_proxy.completion.fallback import ModelFallback
from lingma_proxy.errors import ApiError

QUOTA = ApiError("rate_limit", "out", code="quota_exceeded")


def test_the_next_model_after_the_chosen_one_then_from_the_top_each_once():
    fallback = ModelFallback(["a", "b", "c"], "b")
    assert [fallback.next_model("b", QUOTA), fallback.next_model("c", QUOTA), fallback.next_model("a", QUOTA)] == [
        "c", "a", None,
    ]  # fmt: skip


def test_a_model_outside_the_list_starts_from_the_top():
    fallback = ModelFallback(["a", "b"], "x")
    assert fallback.next_model("x", QUOTA) == "a"


def test_only_failures_of_the_model_move_the_request():
    fallback = ModelFallback(["a"], "x")
    assert fallback.next_model("x", ApiError("invalid_request", "policy", code="content_policy")) is None
    assert fallback.next_model("x", ApiError("upstream", "boom")) is None
