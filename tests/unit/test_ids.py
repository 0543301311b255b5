"""Identifier shapes."""

from __future__ import annotations

import re
import uuid

import pytest

from lingma_proxy.ids import anthropic_tool_id, new_id, new_uuid

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("prefix", ["chatcmpl-", "msg_", "resp_", "call_", "toolu_", "fc_", "rs_"])
def test_new_ids_are_prefixed_url_safe_and_long(prefix):
    ids = {new_id(prefix) for _ in range(200)}
    assert len(ids) == 200
    for value in ids:
        assert value.startswith(prefix)
        assert re.fullmatch(r"[0-9a-f]{24}", value[len(prefix) :])


def test_anthropic_tool_ids_are_derived_deterministically():
    call_id = new_id("call_")
    assert anthropic_tool_id(call_id) == "toolu_" + call_id[len("call_") :]
    assert anthropic_tool_id(call_id) == anthropic_tool_id(call_id)
    assert anthropic_tool_id("toolu_01A2b3") == "toolu_01A2b3"
    assert anthropic_tool_id("legacy.call:7") == "toolu_legacy_call_7"
    assert re.fullmatch(r"toolu_[A-Za-z0-9_-]+", anthropic_tool_id(""))


def test_new_uuids_are_distinct_canonical_version_4_uuids():
    values = {new_uuid() for _ in range(500)}
    assert len(values) == 500
    for value in values:
        parsed = uuid.UUID(value)
        assert str(parsed) == value and parsed.version == 4 and parsed.variant == uuid.RFC_4122
