"""The auth matrix (docs/features.md §8): every route × every kind of credential, and the startup posture."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from harness.proxy import Proxy

from .ops_support import ANTHROPIC_HEADERS, error_of, module_proxies, request_body

pytestmark = pytest.mark.timeout(60)

API_KEY = "ops-auth-api-key-7f3c"
ADMIN_TOKEN = "ops-auth-admin-token-91ab"
METRICS_TOKEN = "ops-auth-metrics-token-44de"

CREDENTIALS: dict[str, dict[str, str]] = {
    "none": {},
    "wrong": {"Authorization": "Bearer not-a-key-at-all"},
    "key_prefix": {"Authorization": f"Bearer {API_KEY[:-1]}"},
    "api_bearer": {"Authorization": f"Bearer {API_KEY}"},
    "api_x_api_key": {"x-api-key": API_KEY},
    "admin": {"Authorization": f"Bearer {ADMIN_TOKEN}"},
    "metrics": {"Authorization": f"Bearer {METRICS_TOKEN}"},
}
ACCEPTED_BY = {
    "api": {"api_bearer", "api_x_api_key"},
    "admin": {"admin"},
    "metrics": {"metrics"},
    "public": set(CREDENTIALS),  # a public route ignores credentials, even wrong ones
}


COUNT_TOKENS_BODY = {"model": "auto", "messages": [{"role": "user", "content": "x"}]}


def _route(method: str, path: str, guard: str, wire: str = "openai", body: dict | None = None) -> Any:
    return pytest.param(method, path, guard, wire, body, id=f"{method} {path}")


ROUTES = [
    _route("GET", "/v1/models", "api"),
    _route("POST", "/v1/chat/completions", "api", body=request_body("chat", "auth matrix")),
    _route("POST", "/v1/responses", "api", body=request_body("responses", "auth matrix")),
    _route("POST", "/responses", "api", body=request_body("responses", "auth matrix")),
    _route("POST", "/v1/messages", "api", "anthropic", request_body("messages", "auth matrix")),
    _route("POST", "/v1/messages/count_tokens", "api", "anthropic", COUNT_TOKENS_BODY),
    _route("GET", "/v1/capabilities", "api"),
    _route("GET", "/internal/stats", "admin"),
    _route("GET", "/internal/effective-config", "admin"),
    _route("GET", "/internal/usage", "admin"),
    _route("GET", "/internal/debug/requests", "admin"),
    _route("GET", "/metrics", "metrics"),
    _route("GET", "/healthz", "public"),
    _route("GET", "/capabilities", "public"),
    _route("GET", "/api/hello", "public"),
]


@pytest.fixture(scope="module")
def proxies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Proxy]]:
    yield from module_proxies(
        tmp_path_factory,
        {
            "full": {
                "auth": {"api_keys": [API_KEY], "admin_token": ADMIN_TOKEN, "metrics_token": METRICS_TOKEN},
                "debug": {"request_ring": True},
            },
            # No admin token: /internal/* falls back to the API keys; /metrics is public on purpose.
            "fallback": {"auth": {"api_keys": [API_KEY], "metrics_public": True}, "debug": {"request_ring": True}},
            # No metrics token and not public: /metrics takes the API keys, and not the admin token.
            "keys_only_metrics": {"auth": {"api_keys": [API_KEY], "admin_token": ADMIN_TOKEN}},
        },
    )


def call(proxy: Proxy, method: str, path: str, wire: str, body: dict | None, credential: str) -> httpx.Response:
    headers = dict(CREDENTIALS[credential])
    if wire == "anthropic":
        headers.update(ANTHROPIC_HEADERS)
    return httpx.request(method, f"{proxy.url}{path}", json=body, headers=headers, timeout=30)


def assert_unauthorized(response: httpx.Response, wire: str) -> None:
    assert response.status_code == 401, (response.status_code, response.text[:500])
    assert response.headers["x-request-id"]
    error = error_of("messages" if wire == "anthropic" else "chat", response.json())
    if wire == "anthropic":
        assert error["type"] == "authentication_error"
    else:
        assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_api_key")


@pytest.mark.parametrize("credential", list(CREDENTIALS))
@pytest.mark.parametrize(("method", "path", "guard", "wire", "body"), ROUTES)
def test_auth_matrix(proxies, method, path, guard, wire, body, credential):
    response = call(proxies["full"], method, path, wire, body, credential)
    if credential in ACCEPTED_BY[guard]:
        assert response.status_code == 200, (response.status_code, response.text[:500])
    else:
        assert_unauthorized(response, wire)


def test_models_answers_an_anthropic_caller_with_an_anthropic_401(proxies):
    """/v1/models serves both vendors; a caller that identifies itself as Anthropic reads Anthropic errors."""
    response = httpx.get(f"{proxies['full'].url}/v1/models", headers={"x-api-key": "not-a-key"}, timeout=10)
    assert_unauthorized(response, "anthropic")


def test_internal_falls_back_to_the_api_keys_without_an_admin_token(proxies):
    proxy = proxies["fallback"]
    for path in ("/internal/stats", "/internal/effective-config"):
        for credential in ("api_bearer", "api_x_api_key"):
            assert call(proxy, "GET", path, "openai", None, credential).status_code == 200
        for credential in ("none", "wrong", "admin", "metrics"):
            assert_unauthorized(call(proxy, "GET", path, "openai", None, credential), "openai")
    assert "auth.admin_token is not set: /internal/* accepts the API keys" in proxy.log_text()


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/internal/debug/requests"), ("POST", "/internal/session/export")]
)
def test_without_an_admin_token_no_api_key_opens_the_login_or_the_request_ring(proxies, method, path):
    """Any key holder could otherwise take the account's login, or read every other user's prompts."""
    for credential in ("api_bearer", "api_x_api_key", "none"):
        response = call(proxies["fallback"], method, path, "openai", None, credential)
        assert response.status_code == 403, (credential, response.text[:300])
        error = response.json()["error"]
        assert error["code"] == "admin_token_required" and "auth.admin_token" in error["message"]


def test_the_request_ring_is_off_unless_asked_for(proxies):
    """keys_only_metrics has an admin token but no debug.request_ring: nothing is kept, and it says so."""
    response = call(proxies["keys_only_metrics"], "GET", "/internal/debug/requests", "openai", None, "admin")
    assert response.status_code == 404 and "debug.request_ring" in response.json()["error"]["message"]


def test_metrics_is_public_with_metrics_public_and_the_log_warns(proxies):
    proxy = proxies["fallback"]
    for credential in ("none", "wrong", "api_bearer"):
        assert call(proxy, "GET", "/metrics", "openai", None, credential).status_code == 200
    assert "auth.metrics_public is on: /metrics is readable without a token" in proxy.log_text()


def test_metrics_takes_the_api_keys_when_no_metrics_token_is_set(proxies):
    proxy = proxies["keys_only_metrics"]
    for credential in ("api_bearer", "api_x_api_key"):
        assert call(proxy, "GET", "/metrics", "openai", None, credential).status_code == 200
    for credential in ("none", "wrong", "admin"):
        assert_unauthorized(call(proxy, "GET", "/metrics", "openai", None, credential), "openai")


@pytest.mark.parametrize(
    ("name", "internal", "metrics"),
    [
        ("full", "admin token", "metrics token"),
        ("fallback", "the API keys (no admin_token set)", "public (metrics_public)"),
        ("keys_only_metrics", "admin token", "the API keys"),
    ],
)
def test_the_startup_log_states_the_auth_posture_in_one_block(proxies, name, internal, metrics):
    log_text = proxies[name].log_text()
    assert log_text.count("auth posture:") == 1, log_text
    block = log_text.split("auth posture:", 1)[1].split("\n")[1:5]
    assert block[0].split()[:4] == ["/v1/*", "1", "API", "key(s)"], block
    assert "Authorization" in block[0] and "x-api-key" in block[0], block
    assert "***" not in "\n".join(block), "the redactor garbled the posture block"
    assert block[1].split(None, 1) == ["/internal/*", internal], block
    assert block[2].split(None, 1) == ["/metrics", metrics], block
    assert "/healthz" in block[3] and "public" in block[3], block
    assert "auth.api_keys is empty" not in log_text
    for secret in (API_KEY, ADMIN_TOKEN, METRICS_TOKEN):
        assert secret not in log_text
