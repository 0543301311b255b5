"""Who sent a request: a label for the API key (its configured name, else a fingerprint) and the client family.

The ledger is meant to be read and shared, so a key itself never lands in it: an unnamed key is shown as
`key-` and 8 hex digits of a keyed hash, stable across restarts and not reversible to the key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from itertools import zip_longest

ANONYMOUS = "anonymous"  # no key was needed (open auth, or auth.ollama: open)
_LABEL_SALT = b"lingma-proxy usage client label"

# First match wins: agents before the SDKs they are built on, SDKs before the HTTP libraries.
_FAMILIES = [
    ("claude-cli", r"claude-cli|claude-code"),
    ("codex", r"codex"),
    ("qwen-code", r"qwen-?code"),
    ("aider", r"aider"),
    ("opencode", r"opencode"),
    ("litellm", r"litellm"),
    ("openai-python", r"openai/python"),
    ("openai-node", r"openai/js"),
    ("anthropic-python", r"anthropic/python"),
    ("anthropic-node", r"anthropic/js"),
    ("ollama-python", r"ollama-python"),
    ("ollama-js", r"ollama-js"),
    ("curl", r"^curl/"),
    ("httpx", r"python-httpx"),
    ("requests", r"python-requests"),
    ("browser", r"^mozilla/"),
]
_FAMILY_PATTERNS = [(name, re.compile(pattern, re.IGNORECASE)) for name, pattern in _FAMILIES]


def fingerprint(key: str) -> str:
    """`key-` and 8 hex digits: tells keys apart in a report without revealing any of them."""
    return "key-" + hmac.new(_LABEL_SALT, key.encode("utf-8"), hashlib.sha256).hexdigest()[:8]


def agent_family(user_agent: str) -> str:
    """The client program a User-Agent names (claude-cli, codex, openai-python, curl, ...): other or unknown."""
    if not user_agent:
        return "unknown"
    return next((name for name, pattern in _FAMILY_PATTERNS if pattern.search(user_agent)), "other")


class ClientLabels:
    """API key -> label, built once from auth.api_keys and auth.api_key_names."""

    def __init__(self, keys: list[str], names: list[str]) -> None:
        self._labels = {key: name or fingerprint(key) for key, name in zip_longest(keys, names, fillvalue="") if key}

    def label(self, accepted_key: str | None) -> str:
        """The label of a key the request was accepted with; None when it needed none."""
        if accepted_key is None:
            return ANONYMOUS
        return self._labels.get(accepted_key, ANONYMOUS)
