"""Error bodies in each vendor's shape, checked against the SDKs' models where they have one."""

from __future__ import annotations

import pydantic
import pytest
from anthropic.types.shared import ErrorResponse
from openai.types.responses.response_error import ResponseError

from lingma_proxy.errors import STATUS_OF_KIND, ApiError
from lingma_proxy.wire.errors import anthropic_error_body, openai_error_body, responses_failed_error

pytestmark = pytest.mark.timeout(30)

KINDS = sorted(STATUS_OF_KIND)


@pytest.mark.parametrize(
    ("kind", "error_type", "code"),
    [
        ("invalid_request", "invalid_request_error", None),
        ("authentication", "invalid_request_error", "invalid_api_key"),
        ("not_found", "invalid_request_error", None),
        ("rate_limit", "requests", "rate_limit_exceeded"),
        ("upstream", "server_error", None),
        ("unavailable", "server_error", None),
        ("timeout", "server_error", None),
    ],
)
def test_openai_types_follow_what_openai_sends(kind, error_type, code):
    body = openai_error_body(ApiError(kind, "boom", param="p"))
    assert body == {"error": {"message": "boom", "type": error_type, "param": "p", "code": code}}


def test_openai_quota_and_explicit_codes():
    body = openai_error_body(ApiError("rate_limit", "quota", code="insufficient_quota"))
    assert body["error"]["type"] == body["error"]["code"] == "insufficient_quota"
    body = openai_error_body(ApiError("invalid_request", "long", code="context_length_exceeded"))
    assert body["error"]["code"] == "context_length_exceeded"


@pytest.mark.parametrize(
    ("kind", "error_type"),
    [
        ("invalid_request", "invalid_request_error"),
        ("authentication", "authentication_error"),
        ("permission", "permission_error"),
        ("not_found", "not_found_error"),
        ("too_large", "request_too_large"),
        ("rate_limit", "rate_limit_error"),
        ("internal", "api_error"),
        ("upstream", "api_error"),
        ("unavailable", "overloaded_error"),
        ("timeout", "timeout_error"),
    ],
)
def test_anthropic_types(kind, error_type):
    assert anthropic_error_body(ApiError(kind, "boom")) == {"type": "error", "error": {"type": error_type, "message": "boom"}}


@pytest.mark.parametrize("kind", [kind for kind in KINDS if kind != "too_large"])
def test_anthropic_bodies_validate_against_the_sdk(kind):
    # request_too_large is documented by Anthropic but missing from the SDK's union, hence skipped.
    ErrorResponse.model_validate(anthropic_error_body(ApiError(kind, "boom")))


@pytest.mark.parametrize("kind", KINDS)
def test_responses_failed_errors_validate_when_no_explicit_code(kind):
    error = ResponseError.model_validate(responses_failed_error(ApiError(kind, "boom")))
    assert error.message == "boom"


def test_responses_failed_error_passes_codex_codes_and_retry_hint():
    error = responses_failed_error(ApiError("invalid_request", "too long", code="context_length_exceeded"))
    assert error["code"] == "context_length_exceeded"
    error = responses_failed_error(ApiError("rate_limit", "slow down.", retry_after=12))
    assert error["message"] == "slow down. Please try again in 12s."
    with pytest.raises(pydantic.ValidationError):
        ResponseError.model_validate({"code": "no_such_code", "message": "x"})
