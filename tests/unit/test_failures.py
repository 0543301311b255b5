"""Upstream failures as clients see them (lingma_proxy/upstream/failures.py)."""

from __future__ import annotations

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
