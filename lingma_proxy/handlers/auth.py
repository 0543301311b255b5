"""Who may call a route: the credential each kind of route takes, and the timing-safe check of it.

- "api": the API keys (open when there are none);
- "admin": the admin token, else the API keys (a startup warning says so);
- "admin_token": the admin token alone: session export and the request ring hold the account's login and
  everyone's prompts, so no API key ever opens them;
- "metrics": public with metrics_public, else the metrics token, else the API keys;
- "public": nobody is asked.
"""

from __future__ import annotations

import functools
import hmac
import uuid
from collections.abc import Mapping

from ..config import AuthConfig
from ..errors import ApiError


def offered_key(headers: Mapping[str, str]) -> str:
    """The key in `Authorization: Bearer <key>`, else in `x-api-key`."""
    header = headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return headers.get("x-api-key", "").strip()


def accepted_keys(guard: str, auth: AuthConfig, path: str) -> list[str] | None:
    """The credentials a route of this kind takes; None when it is public, [] when it is open."""
    if guard == "api":
        return auth.api_keys
    if guard == "admin":
        return [auth.admin_token] if auth.admin_token else auth.api_keys
    if guard == "admin_token":
        if not auth.admin_token:
            raise ApiError(
                "permission",
                f"{path} needs auth.admin_token, and none is set: API keys never open it.",
                code="admin_token_required",
            )
        return [auth.admin_token]
    if guard == "metrics" and not auth.metrics_public:
        return [auth.metrics_token] if auth.metrics_token else auth.api_keys
    return None


def key_id(keys: list[str], offered: str) -> str:
    """A stable, non-reversible id of the accepted key ("" on an open route); a 401 for any other."""
    if not keys:
        return ""
    # Compare against every key, so the time taken does not tell which one nearly matched.
    matches = [hmac.compare_digest(offered.encode(), key.encode()) for key in keys]
    if not offered or not any(matches):
        raise ApiError("authentication", "Invalid or missing API key.")
    return _key_id(offered)


@functools.lru_cache(maxsize=64)
def _key_id(key: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_OID, key).hex


def is_token(token: str, offered: str) -> bool:
    return bool(token) and hmac.compare_digest(offered.encode(), token.encode())
