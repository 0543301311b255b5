"""The status page: GET / is one self-contained HTML page, GET /internal/status the JSON it polls."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import openai
import pytest

from harness.proxy import Proxy

from .ops_support import module_proxies

pytestmark = pytest.mark.timeout(60)

API_KEY = "status-page-api-key-5d1e"
ADMIN_TOKEN = "status-page-admin-token-c07a"
ACCOUNT_PASSWORD = "status-page-account-password-9b2f"
PAGE_IDS = ("instances", "counters", "usage", "recent", "models", "snippets", "auth-banner", "token-form")
# Anything that would make the browser fetch from elsewhere: absolute or protocol-relative src/href/action,
# CSS url()/@import, and fetch()/XHR to a full URL.
EXTERNAL_REF = re.compile(
    r"""(?:src|href|action)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:)?//|@import|url\(\s*["']?\s*(?:https?:)?//|fetch\(\s*["'`]https?:""",
    re.IGNORECASE,
)


@pytest.fixture(scope="module")
def proxies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Proxy]]:
    yield from module_proxies(
        tmp_path_factory,
        {
            "open": {},
            "locked": {
                "auth": {"api_keys": [API_KEY], "admin_token": ADMIN_TOKEN},
                "accounts": [{"name": "work", "username": "dev@example.com", "password": ACCOUNT_PASSWORD}],
            },
        },
    )


def status_of(proxy: Proxy, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{proxy.url}/internal/status", headers=headers, timeout=10)


def test_the_page_is_one_self_contained_html_document(proxies):
    response = httpx.get(f"{proxies['open'].url}/", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    html = response.text
    assert html.lstrip().lower().startswith("<!doctype html>")
    for element_id in PAGE_IDS:
        assert f'id="{element_id}"' in html, element_id
    assert "<style>" in html and "<script>" in html
    assert EXTERNAL_REF.findall(html) == []
    assert not re.search(r"https?://", html), "no absolute URL at all: snippets are built from window.location"
    head = httpx.head(f"{proxies['open'].url}/", timeout=10)  # Claude Code's probe on every run
    assert head.status_code == 200 and head.content == b""


def test_the_page_needs_no_token_but_the_status_does(proxies):
    locked = proxies["locked"]
    assert httpx.get(f"{locked.url}/", timeout=10).status_code == 200
    assert status_of(locked).status_code == 401
    assert status_of(locked, "not-the-token").status_code == 401
    assert status_of(locked, API_KEY).status_code == 401, "with an admin token set, API keys are not admin"
    response = status_of(locked, ADMIN_TOKEN)
    assert response.status_code == 200
    assert response.json()["auth"] == {"open": False, "api_keys": 1, "admin_token": True}


def test_status_describes_upstream_instances_models_and_server(proxies):
    proxy = proxies["open"]
    status = status_of(proxy).json()
    assert status["version"]
    assert status["upstream"] == {"kind": "simulator", "mode": "spawned", "dialect": "classic"}
    assert status["server"] == {"host": "127.0.0.1", "port": proxy.port}
    assert status["auth"]["open"] is True
    (inst,) = status["instances"]
    assert inst["name"] == "default-0" and inst["account"] is None
    assert (inst["state"], inst["logged_in"], inst["in_flight"], inst["last_error"]) == ("ready", True, 0, None)
    assert inst["user"], "the logged-in identity"
    assert status["accounts"] == [{"name": None, "instances": ["default-0"], "ready": 1, "users": [inst["user"]]}]
    model_ids = [model["id"] for model in status["models"]]
    assert model_ids and status["models_error"] is None
    listed = httpx.get(f"{proxy.url}/v1/models", timeout=10).json()["data"]
    assert model_ids == [model["id"] for model in listed]
    counters = status["counters"]
    for key in ("requests", "errors", "input_tokens", "output_tokens", "first_token_p50_ms", "in_flight"):
        assert key in counters, key
    assert set(counters["session_cache"]) >= {"hits", "misses", "hit_rate"}


def test_an_sdk_request_appears_in_recent_without_its_body(proxies):
    proxy = proxies["open"]
    before = status_of(proxy).json()["counters"]
    marker = "status-page-prompt-marker-e4a1"
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="sk-status-page-client-key", max_retries=0, timeout=30)
    model = client.models.list().data[0].id
    reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": marker}])
    assert reply.choices[0].message.content

    response = status_of(proxy)
    status = response.json()
    latest = status["recent"][0]
    assert (latest["method"], latest["route"], latest["model"], latest["status"]) == ("POST", "/v1/chat/completions", model, 200)
    assert latest["duration_ms"] > 0 and latest["instance"] == "default-0"
    assert latest["output_tokens"] == reply.usage.completion_tokens
    assert status["recent"][1]["route"] == "/v1/models"
    assert marker not in response.text and "sk-status-page-client-key" not in response.text
    assert reply.choices[0].message.content not in response.text
    counters = status["counters"]
    assert counters["requests"] == before["requests"] + 2
    assert counters["output_tokens"] == before["output_tokens"] + reply.usage.completion_tokens


def test_streams_give_first_token_latency_and_errors_are_counted(proxies):
    proxy = proxies["open"]
    before = status_of(proxy).json()["counters"]
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="unused", max_retries=0, timeout=30)
    chunks = list(client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert chunks
    bad = httpx.post(f"{proxy.url}/v1/chat/completions", content=b"{not json", timeout=10)
    assert bad.status_code == 400

    status = status_of(proxy).json()
    failed, streamed = status["recent"][:2]
    assert (failed["route"], failed["status"], failed["first_token_ms"]) == ("/v1/chat/completions", 400, None)
    assert streamed["status"] == 200 and isinstance(streamed["first_token_ms"], int)
    counters = status["counters"]
    assert counters["errors"] == before["errors"] + 1
    assert counters["first_token_p50_ms"] is not None


def test_polling_and_ops_routes_are_not_recorded(proxies):
    proxy = proxies["open"]
    before = status_of(proxy).json()
    for path in ("/", "/healthz", "/internal/status", "/internal/stats", "/metrics", "/capabilities"):
        httpx.get(f"{proxy.url}{path}", timeout=10)
    after = status_of(proxy).json()
    assert after["counters"]["requests"] == before["counters"]["requests"]
    assert after["recent"] == before["recent"]


def test_recent_keeps_only_the_last_twenty(proxies):
    proxy = proxies["open"]
    with httpx.Client(base_url=proxy.url, timeout=10) as http:
        for n in range(25):
            http.get("/v1/models" if n % 2 else f"/v1/no-such-route-{n}")
    recent = status_of(proxy).json()["recent"]
    # Newest first; an unknown route is never stored as sent (it may carry a secret in its path).
    expected = ["/v1/models" if n % 2 else "(unknown route)" for n in range(24, 4, -1)]
    assert [entry["route"] for entry in recent] == expected
    assert {entry["status"] for entry in recent} == {200, 404}


def test_no_secret_appears_in_the_status(proxies):
    locked = proxies["locked"]
    client = openai.OpenAI(base_url=f"{locked.url}/v1", api_key=API_KEY, max_retries=0, timeout=30)
    client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hello"}])
    response = status_of(locked, ADMIN_TOKEN)
    assert response.status_code == 200
    for secret in (API_KEY, ADMIN_TOKEN, ACCOUNT_PASSWORD):
        assert secret not in response.text
    status = response.json()
    assert status["recent"][0]["route"] == "/v1/chat/completions"
    assert [inst["account"] for inst in status["instances"]] == ["work"]
    assert status["accounts"][0]["name"] == "work"
