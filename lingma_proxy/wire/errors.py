"""ApiError rendered in each vendor's error shape.

The types follow what the vendors really send, not a symmetric table:
- OpenAI answers 400/401/403/404/409/413 with `invalid_request_error` (a bad key is
  `invalid_request_error` + code `invalid_api_key`), 429 with type `requests` + code
  `rate_limit_exceeded` (or type/code `insufficient_quota`), and 5xx with `server_error`.
- Anthropic's types are those of anthropic-python's error objects (504 is `timeout_error`), plus
  `request_too_large` for 413 as its API documents; 409, which /v1/messages never answers, reads as
  `invalid_request_error`.
"""

from __future__ import annotations

from ..errors import ApiError

_OPENAI_TYPE = {
    "rate_limit": "requests",
    "internal": "server_error",
    "upstream": "server_error",
    "unavailable": "server_error",
    "timeout": "server_error",
}
_OPENAI_DEFAULT_CODE = {"authentication": "invalid_api_key", "rate_limit": "rate_limit_exceeded"}

_ANTHROPIC_TYPE = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "method_not_allowed": "invalid_request_error",
    "conflict": "invalid_request_error",
    "too_large": "request_too_large",
    "rate_limit": "rate_limit_error",
    "internal": "api_error",
    "upstream": "api_error",
    "unavailable": "overloaded_error",
    "timeout": "timeout_error",
}

# Codes openai-python's ResponseError accepts; Codex also acts on a few the SDK does not list
# (context_length_exceeded, insufficient_quota), so an explicit ApiError.code is passed through.
_RESPONSES_CODE = {"rate_limit": "rate_limit_exceeded", "invalid_request": "invalid_prompt"}


def openai_error_type(err: ApiError) -> str:
    if err.code == "insufficient_quota":
        return "insufficient_quota"
    return _OPENAI_TYPE.get(err.kind, "invalid_request_error")


def openai_error_body(err: ApiError) -> dict:
    """`{"error": {message, type, param, code}}` for /v1/chat/completions, /v1/responses, /v1/models."""
    return {
        "error": {
            "message": err.message,
            "type": openai_error_type(err),
            "param": err.param,
            "code": err.code or _OPENAI_DEFAULT_CODE.get(err.kind),
        }
    }


def anthropic_error_type(err: ApiError) -> str:
    return _ANTHROPIC_TYPE[err.kind]


def anthropic_error_body(err: ApiError, request_id: str | None = None) -> dict:
    """`{"type": "error", "error": {type, message}}`, as a response body and as `event: error` data.

    An HTTP error body also names the request (`request_id`, required by Anthropic's spec and sent
    by its API), so that a user can find it in the proxy log.
    """
    body: dict = {"type": "error", "error": {"type": anthropic_error_type(err), "message": err.message}}
    if request_id is not None:
        body["request_id"] = request_id
    return body


def responses_failed_error(err: ApiError) -> dict:
    """The `error` of a failed Response object (`response.failed`).

    Codex parses a retry delay out of "Please try again in Ns" on rate_limit_exceeded, so the
    Retry-After value is spelled into the message too.
    """
    message = err.message
    if err.retry_after is not None:
        message = f"{message.rstrip()} Please try again in {err.retry_after}s."
    return {
        "code": err.code or _RESPONSES_CODE.get(err.kind, "server_error"),
        "message": message,
        "param": err.param,
        "type": openai_error_type(err),
    }


def ollama_error_body(err: ApiError) -> dict:
    """Ollama's `{"error": "…"}`, as a response body and as the last line of a failed stream."""
    return {"error": err.message}
