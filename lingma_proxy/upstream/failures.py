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
DAILY_LIMIT_RETRY_AFTER_SEC = 3600  # when the day resets (and in which time zone) is unknown: ask again hourly

# Codes a turn may act on (completion/retries.py): wait and ask again, ask once more, or resend in full.
QUEUED = "upstream_queued"
DUPLICATE_REQUEST = "duplicate_request"
SESSION_LOST = "session_lost"
QUOTA_EXCEEDED = "quota_exceeded"
DAILY_LIMIT = "daily_limit_exceeded"
CONTENT_POLICY = "content_policy"
MODEL_UNAVAILABLE = "model_unavailable"
LOGIN_HINT = "run `python lingma_proxy.py login`, or set lingma.attach: auto to use a Lingma an IDE already runs"

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
_RETRY_AFTER = re.compile(r"retry.?after\D{0,12}(\d+)", re.I)  # "retry after 30", "retryAfterSeconds":30
# Business codes of Lingma's cloud gateway (§11.8), as a JSON field or as text ("code=112").
_BUSINESS_CODE = re.compile(r"\b(?:code|errorCode|bizCode)\W{0,4}(\d{3,5})\b", re.I)
_QUEUED = re.compile(r"isQueued\W{0,4}true|\bqueued\b|排队", re.I)
_DUPLICATE = re.compile(r"duplicate request|重复请求", re.I)
_DAILY_LIMIT = re.compile(r"daily.{0,20}limit|每日|今日.{0,10}(?:上限|额度)", re.I)
_CONTENT_POLICY = re.compile(
    r"content.{0,20}(?:policy|security|filter|safety)|inappropriate|sensitive content|违规|敏感|内容安全", re.I
)
_MODEL_UNAVAILABLE = re.compile(
    r"model\W{1,3}(?:\S+\W{1,3})?(?:is\W{1,3})?(?:not available|unavailable|offline|not exist|does not exist)"
    r"|模型.{0,10}(?:不可用|下线|不存在)",
    re.I,
)
_SESSION_LOST = re.compile(
    r"(?:unknown|invalid|no such) session|session\W{0,3}(?:id\W{0,3})?(?:not found|does not exist|is unknown)"
    r"|session not found|会话不存在",
    re.I,
)
_HTTP_STATUS = re.compile(r"HTTP status (\d{3})\b", re.I)  # as in "failed to get user plan info: HTTP status 404"


def classify_failure(message: str, status: int | None = None) -> ApiError:
    """Map an upstream failure (message and optional HTTP-like status) to the ApiError clients see."""
    message = _REDACTOR.redact(message or "unknown error")
    business = _business_failure(message)
    if business is not None:
        return business
    if status is None and (quoted := _HTTP_STATUS.search(message)):
        status = int(quoted.group(1))  # the agent dialect reports a failure only as text
    if status == 401 or _NOT_LOGGED_IN.search(message):
        return ApiError(
            "unavailable",
            f"Lingma instance is not logged in; {LOGIN_HINT}. Upstream said: {message}",
            code="not_logged_in",
        )
    if status == 429 or _RATE_LIMITED.search(message):
        retry_after = _retry_after(message, DEFAULT_RETRY_AFTER_SEC)
        return ApiError("rate_limit", f"Lingma is rate limited or out of quota: {message}", retry_after=retry_after)
    if _CONTEXT_TOO_LONG.search(message):
        return ApiError(
            "invalid_request",
            f"The prompt is too long for the model's context window (Lingma: {message})",
            code="context_length_exceeded",
        )
    return ApiError("upstream", f"Lingma upstream error: {message}")


def _retry_after(message: str, default: int) -> int:
    found = _RETRY_AFTER.search(message)
    return int(found.group(1)) if found else default


def _business_failure(message: str) -> ApiError | None:
    """The business errors of §11.8 and a lost session: the one table of what each becomes."""
    found = _BUSINESS_CODE.search(message)
    code = found.group(1) if found else ""
    if code == "10605" or _QUEUED.search(message):
        return ApiError(
            "rate_limit", f"Lingma queued the request: {message}", code=QUEUED,
            retry_after=_retry_after(message, 5),
        )  # fmt: skip
    if _DUPLICATE.search(message):
        return ApiError("upstream", f"Lingma took the request for a duplicate: {message}", code=DUPLICATE_REQUEST)
    if code == "110" or _DAILY_LIMIT.search(message):
        return ApiError(
            "rate_limit", f"The Lingma account's daily usage limit is reached (code 110): {message}",
            code=DAILY_LIMIT, retry_after=_retry_after(message, DAILY_LIMIT_RETRY_AFTER_SEC),
        )  # fmt: skip
    if code == "112":
        return ApiError(
            "rate_limit", f"The Lingma account's quota is used up (code 112): {message}",
            code=QUOTA_EXCEEDED, retry_after=_retry_after(message, DEFAULT_RETRY_AFTER_SEC),
        )  # fmt: skip
    if _CONTENT_POLICY.search(message):
        refused = f"Lingma refused the content (content policy; not retried): {message}"
        return ApiError("invalid_request", refused, code=CONTENT_POLICY)
    if _MODEL_UNAVAILABLE.search(message):
        return ApiError("unavailable", f"The model is not available on Lingma: {message}", code=MODEL_UNAVAILABLE)
    if _SESSION_LOST.search(message):
        return ApiError("upstream", f"Lingma no longer has the session: {message}", code=SESSION_LOST)
    return None


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
