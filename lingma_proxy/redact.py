"""Keeps secrets out of logs and admin output: known secret values plus the shapes credentials take.

The Lingma binary prints live tokens in its own output (docs/protocol.md §1, §4), and auth/status
returns them, so every child-output line and every log record passes through Redactor.redact().
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any

MASK = "***"

# Each pattern keeps its group 1 (the label) and masks the rest of the match.
_PATTERNS = [
    # JSON "…token" / "…password" / "…secret" / "…apiKey" string values: "token": "pt-…"
    re.compile(
        r'("[\w-]*(?:token|password|secret|api[_-]?key|authorization|cookie)"\s*:\s*)"(?:[^"\\]|\\.)*"',
        re.IGNORECASE,
    ),
    # HTTP headers as logged: "Authorization: Bearer x", "x-api-key: x", {'Cookie': 'x'}
    re.compile(r"(\b(?:authorization|x-api-key|cookie)'?\s*[:=]\s*)(?!\")[^\r\n,;]+", re.IGNORECASE),
    re.compile(r"(\bBearer\s+)[\w.~+/=-]+", re.IGNORECASE),
    # password=x, password: x, 'password': 'x', and URL query parameters (the login callback
    # carries auth= and token=)
    re.compile(
        r"(\b(?:password|passwd|api_?key|refresh_?token|access_?token)['\"]?\s*[:=]\s*['\"]?)[^&\s\"',;]+",
        re.IGNORECASE,
    ),
    re.compile(r"([?&](?:token|auth|code)=)[^&\s\"',;]+"),
    # The login URL's one-time values and the machine id (the key that decrypts cache/user, §7)
    re.compile(r"([?&](?:nonce|state|challenge)=)[^&\s\"',;]+"),
    re.compile(r"(\bmachine_?id['\"]?\s*[:=]\s*['\"]?)[^&\s\"',;]+", re.IGNORECASE),
    # URL user-info: http://user:password@host
    re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+(?=@)", re.IGNORECASE),
    # Lingma's own access and refresh tokens, wherever they appear
    re.compile(r"()\b[pr]t-[\w.-]{16,}"),
    # Long base64 runs: session bundles, the encrypted cache/user, tokens in other encodings
    re.compile(r"()[A-Za-z0-9+/_-]{200,}={0,2}"),
]


def _mask(match: re.Match) -> str:
    label = match.group(1)
    quoted = match.group(0)[len(label):].startswith('"')
    return label + (f'"{MASK}"' if quoted else MASK)


class Redactor:
    """Replaces secret values and credential-shaped text; cheap enough for every line a child prints."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        """Register a secret learned at run time (a token seen in auth/status, an imported bundle)."""
        if secret and secret not in self._secrets:
            # Longest first, so a secret that contains another is masked whole. A new list rather
            # than an in-place sort, because a logging thread may be iterating the old one.
            self._secrets = sorted([*self._secrets, secret], key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(_mask, text)
        return text


_SECRET_KEYS = {
    "token", "refreshtoken", "accesstoken", "password", "passwd", "secret", "apikey", "apikeys",
    "xapikey", "authorization", "proxyauthorization", "cookie", "setcookie",
    "sessionbundleb64", "bundle", "admintoken", "metricstoken", "credential", "credentials",
    "privatekey", "auth", "session", "sessionid", "cookies", "accesskey", "secretkey", "passphrase",
    "machineid", "signature",
}  # fmt: skip


def is_secret_key(key: str) -> bool:
    """True for names like token, refreshToken, api_key, x-api-key, Authorization, session_bundle_b64."""
    normal = re.sub(r"[^a-z0-9]", "", key.lower())
    return normal in _SECRET_KEYS or normal.endswith(("token", "password", "secret", "apikey"))


def redact_json(obj: Any) -> Any:
    """A deep copy with every non-empty value under a secret-looking key replaced by "***"."""
    if isinstance(obj, dict):
        return {
            key: MASK if value and isinstance(key, str) and is_secret_key(key) else redact_json(value)
            for key, value in obj.items()
        }
    if isinstance(obj, list):
        return [redact_json(item) for item in obj]
    return copy.deepcopy(obj)
