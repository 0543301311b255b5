"""Upstream failures as the ApiError clients see, with any credential masked out of the message.

The classification lives here, in one place, because the real binary's error messages are
unverified (docs/protocol.md §6): when a real one disagrees, this is the only file to change.
"""

from __future__ import annotations

import re

from lingma_proxy.errors import ApiError
from lingma_proxy.redact import Redactor
from lingma_proxy.upstream.rpc import ConnectionLost, RpcError, RpcTimeout

DEFAULT_RETRY_AFTER_SEC = 30
LOGIN_HINT = "run `python lingma_proxy.py login` (or set `lingma.attach: auto` to use a logged-in IDE's Lingma)"

_REDACTOR = Redactor()  # credential shapes only: upstream messages must never carry a token to a client
_NOT_LOGGED_IN = re.compile(
    r"not\s*log(?:ged)?\s*in|login required|need(?:s)? to log\s?in|unauthori[sz]ed|未登录", re.I
)
_RATE_LIMITED = re.compile(r"quota|rate.?limit|too many requests|throttl|per minute|exhausted|限流|额度", re.I)
_CONTEXT_TOO_LONG = re.compile(
    r"context.{0,40}(?:too long|length|exceed|limit)|(?:input|prompt|message)s? (?:is |are )?too long"
    r"|(?:token|length).{0,20}(?:limit|exceed)|exceed.{0,30}tokens|too many tokens|上下文|超长",
    re.I,
)
_RETRY_AFTER = re.compile(r"retry.?after\D{0,5}(\d+)", re.I)
_HTTP_STATUS = re.compile(r"HTTP status (\d{3})\b", re.I)  # as in "failed to get user plan info: HTTP status 404"


def classify_failure(message: str, status: int | None = None) -> ApiError:
    """Map an upstream failure (message and optional HTTP-like status) to the ApiError clients see."""
    message = _REDACTOR.redact(message or "unknown error")
    if status is None and (quoted := _HTTP_STATUS.search(message)):
        status = int(quoted.group(1))  # the agent dialect reports a failure only as text
    if status == 401 or _NOT_LOGGED_IN.search(message):
        return ApiError(
            "unavailable",
            f"Lingma instance is not logged in; {LOGIN_HINT}. Upstream said: {message}",
            code="not_logged_in",
        )
    if status == 429 or _RATE_LIMITED.search(message):
        found = _RETRY_AFTER.search(message)
        retry_after = int(found.group(1)) if found else DEFAULT_RETRY_AFTER_SEC
        return ApiError("rate_limit", f"Lingma is rate limited or out of quota: {message}", retry_after=retry_after)
    if _CONTEXT_TOO_LONG.search(message):
        return ApiError(
            "invalid_request",
            f"The prompt is too long for the model's context window (Lingma: {message})",
            code="context_length_exceeded",
        )
    return ApiError("upstream", f"Lingma upstream error: {message}")


def crashed() -> ApiError:
    return ApiError("upstream", "Lingma instance exited mid-stream", code="upstream_crashed")


def api_error_from_rpc(exc: Exception, method: str) -> ApiError:
    """An RPC-layer exception as the ApiError callers see."""
    if isinstance(exc, RpcError):
        return classify_failure(exc.message)
    if isinstance(exc, RpcTimeout):
        return ApiError("timeout", f"Lingma did not answer {method}: {exc}")
    if isinstance(exc, ConnectionLost):
        return ApiError("upstream", f"Lingma instance is gone ({method}): {exc}", code="upstream_crashed")
    raise exc
