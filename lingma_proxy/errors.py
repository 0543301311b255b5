"""One error type raised anywhere and rendered by the handler in its endpoint's wire format."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Protocol-neutral kinds; wire/errors.py maps each to OpenAI and Anthropic types.
ErrorKind = Literal[
    "invalid_request",  # 400
    "authentication",  # 401
    "permission",  # 403
    "not_found",  # 404
    "method_not_allowed",  # 405
    "conflict",  # 409
    "too_large",  # 413
    "rate_limit",  # 429
    "internal",  # 500
    "upstream",  # 502
    "unavailable",  # 503
    "timeout",  # 504
]

STATUS_OF_KIND: dict[str, int] = {
    "invalid_request": 400,
    "authentication": 401,
    "permission": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "too_large": 413,
    "rate_limit": 429,
    "internal": 500,
    "upstream": 502,
    "unavailable": 503,
    "timeout": 504,
}


@dataclass
class ApiError(Exception):
    kind: ErrorKind
    message: str
    param: str | None = None
    code: str | None = None
    retry_after: int | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def status(self) -> int:
        return STATUS_OF_KIND[self.kind]


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError("invalid_request", message, param=param, code=code)
