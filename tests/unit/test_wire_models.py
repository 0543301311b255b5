"""Model lists, read through the SDKs' list endpoints."""

from __future__ import annotations

import pytest

from lingma_proxy.model import ModelInfo
from lingma_proxy.wire.models import anthropic_models_list, openai_models_list
from tests.unit.wire_sdk import anthropic_client, openai_client

pytestmark = pytest.mark.timeout(30)

MODELS = [
    ModelInfo(id="qwen3-coder", display_name="Qwen3 Coder", context_window=262144),
    ModelInfo(id="qwen3-thinking", display_name="Qwen3 Thinking", context_window=131072, is_reasoning=True),
]


def test_openai_list_reads_through_the_sdk():
    body = openai_models_list(MODELS)
    models = list(openai_client(body).models.list())
    assert [(m.id, m.owned_by, m.object) for m in models] == [("qwen3-coder", "lingma", "model"), ("qwen3-thinking", "lingma", "model")]
    assert body["data"][0]["name"] == "Qwen3 Coder" and body["data"][1]["context_window"] == 131072


def test_anthropic_list_reads_through_the_sdk():
    body = anthropic_models_list(MODELS)
    page = anthropic_client(body).models.list()
    assert [(m.id, m.display_name, m.type) for m in page.data] == [
        ("qwen3-coder", "Qwen3 Coder", "model"),
        ("qwen3-thinking", "Qwen3 Thinking", "model"),
    ]
    assert (body["has_more"], body["first_id"], body["last_id"]) == (False, "qwen3-coder", "qwen3-thinking")


def test_empty_lists():
    assert openai_models_list([]) == {"object": "list", "data": []}
    assert anthropic_models_list([]) == {"data": [], "has_more": False, "first_id": None, "last_id": None}
