"""Upstream failures as clients see them (lingma_proxy/upstream/failures.py)."""

from __future__ import annotations

import pytest

from lingma_proxy.upstream.failures import classify_failure


def test_an_http_status_quoted_in_the_text_classifies_an_agent_dialect_failure():
    limited = classify_failure("model service error: HTTP status 429")
    assert (limited.kind, limited.status, limited.retry_after) == ("rate_limit", 429, 30)
    logged_out = classify_failure("failed to get user info: HTTP status 401")
    assert logged_out.code == "not_logged_in"
    plain = classify_failure("failed to get user plan info: HTTP status 404")
    assert (plain.kind, plain.status) == ("upstream", 502)


def test_an_explicit_status_wins_over_the_text():
    assert classify_failure("model service error: HTTP status 429", status=500).kind == "upstream"
    assert classify_failure("anything", status=429).kind == "rate_limit"


def test_credentials_in_an_upstream_message_never_reach_the_client():
    error = classify_failure("refresh failed for token pt-0123456789abcdef0123456789abcdef")
    assert "pt-0123456789abcdef0123456789abcdef" not in error.message


@pytest.mark.parametrize(
    ("message", "status", "code", "retry_after"),
    [
        ('{"code":"10605","isQueued":true,"retryAfterSeconds":7,"message":"queued"}', 429, "upstream_queued", 7),
        ("request is queued, retry after 12 seconds", 429, "upstream_queued", 12),
        ('{"code":"112","message":"no more credits"}', 429, "quota_exceeded", 30),
        ("bizCode=110 limit", 429, "daily_limit_exceeded", 3600),
        ("You have reached the daily usage limit", 429, "daily_limit_exceeded", 3600),
        ("blocked by the content security policy", 400, "content_policy", None),
        ("输入包含敏感内容", 400, "content_policy", None),
        ("Duplicate request", 502, "duplicate_request", None),
        ("session not found: 1234", 502, "session_lost", None),
        ("unknown session 1234", 502, "session_lost", None),
        ("HTTP status 500 (code 500)", 502, None, None),  # a code that is no business code changes nothing
    ],
)
def test_the_business_error_table(message, status, code, retry_after):
    error = classify_failure(message)
    assert (error.status, error.code, error.retry_after) == (status, code, retry_after)


def test_an_unavailable_model_is_told_apart_from_an_empty_model_key():
    assert classify_failure("model dashscope_qmodel is not available").code == "model_unavailable"
    assert classify_failure("model key is empty").code is None
