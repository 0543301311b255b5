"""Secrets never leak: a full session with known secret values, then a grep of the log, of every
/internal/* answer and of every error body. Also the JSON log format: one JSON object per line, with the
request id, and exactly one access line per request."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from harness.proxy import Proxy

from .conftest import scenario_proxy
from .ops_support import ANTHROPIC_HEADERS, request_body, wait_for, wait_idle

pytestmark = pytest.mark.timeout(60)

API_KEY = "sk-ops-secret-api-key-5b8e2d"
ADMIN_TOKEN = "ops-secret-admin-token-c41f07"
METRICS_TOKEN = "ops-secret-metrics-token-9a6d13"
ACCOUNT_PASSWORD = "ops-secret-account-password-e27b"
SIM_PASSWORD = "ops-secret-sim-password-3f90"
SECRETS = (API_KEY, ADMIN_TOKEN, METRICS_TOKEN, ACCOUNT_PASSWORD, SIM_PASSWORD)
PASSWORD_ENV = "OPS_SECRETS_ACCOUNT_PASSWORD"

USER = {"Authorization": f"Bearer {API_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
WRONG_KEYS = ("wrong-key-000", "sk-wrong-1111111111111111")
UPSTREAM_QUOTED = ("pt-0123456789abcdef0123456789abcdef", "hunter2-upstream-secret")  # in ops_slow.yaml's LEAKY-RPC


proxy = scenario_proxy(
    "ops_slow",
    {
        "server": {"log_format": "json", "log_level": "debug"},
        "auth": {"api_keys": [API_KEY], "admin_token": ADMIN_TOKEN, "metrics_token": METRICS_TOKEN},
        "accounts": [{"name": "acct", "username": "ops@example.com", "password_env": PASSWORD_ENV}],
        "lingma": {"simulator": {"password": SIM_PASSWORD}},
        "debug": {"request_ring": True},
    },
    env={PASSWORD_ENV: ACCOUNT_PASSWORD},
)


def call(proxy: Proxy, name: str, method: str, path: str, headers: dict, body: dict | None) -> httpx.Response:
    """One request of the session, with the request id `ops-secrets-<name>`."""
    headers = {**headers, "x-request-id": f"ops-secrets-{name}"}
    return httpx.request(method, f"{proxy.url}{path}", json=body, headers=headers, timeout=30)


def run_session(proxy: Proxy) -> dict[str, httpx.Response]:
    """Every kind of request a day brings: completions on each API, bad ones, wrong keys, admin reads."""
    anthropic_user = {"x-api-key": API_KEY, **ANTHROPIC_HEADERS}
    count_body = {"model": "auto", "messages": [{"role": "user", "content": "x"}]}
    wrong_bearer = {"Authorization": f"Bearer {WRONG_KEYS[0]}"}
    wrong_x_api_key = {"x-api-key": WRONG_KEYS[1], **ANTHROPIC_HEADERS}
    plan = {
        "chat": ("POST", "/v1/chat/completions", USER, request_body("chat", "secrets session chat")),
        "chat-stream": ("POST", "/v1/chat/completions", USER, request_body("chat", "secrets session stream", True)),
        "messages": ("POST", "/v1/messages", anthropic_user, request_body("messages", "secrets session messages")),
        "messages-stream": ("POST", "/v1/messages", anthropic_user, request_body("messages", "secrets stream", True)),
        "responses": ("POST", "/v1/responses", USER, request_body("responses", "secrets session responses")),
        "responses-stream": ("POST", "/v1/responses", USER, request_body("responses", "secrets stream", True)),
        "count-tokens": ("POST", "/v1/messages/count_tokens", anthropic_user, count_body),
        "models": ("GET", "/v1/models", USER, None),
        "capabilities": ("GET", "/v1/capabilities", USER, None),
        "error-wrong-key": ("POST", "/v1/chat/completions", wrong_bearer, request_body("chat", "x")),
        "error-wrong-x-api-key": ("POST", "/v1/messages", wrong_x_api_key, request_body("messages", "x")),
        "error-user-key-on-internal": ("GET", "/internal/stats", USER, None),
        "error-admin-token-on-v1": ("GET", "/v1/models", ADMIN, None),
        "error-bad-request": ("POST", "/v1/chat/completions", USER, {"model": "auto", "messages": "not a list"}),
        "error-upstream": ("POST", "/v1/chat/completions", USER, request_body("chat", "RPC-FAIL now")),
        "error-upstream-quotes-credentials": ("POST", "/v1/messages", anthropic_user, request_body("messages", "LEAKY-RPC")),
        "error-not-found": ("GET", "/v1/nope", USER, None),
        "internal-stats": ("GET", "/internal/stats", ADMIN, None),
        "internal-effective-config": ("GET", "/internal/effective-config", ADMIN, None),
        "internal-debug-requests": ("GET", "/internal/debug/requests?limit=100", ADMIN, None),
        "metrics": ("GET", "/metrics", {"Authorization": f"Bearer {METRICS_TOKEN}"}, None),
        "healthz": ("GET", "/healthz", {}, None),
    }
    return {name: call(proxy, name, *request) for name, request in plan.items()}


@pytest.fixture(scope="module")
def session(proxy) -> dict[str, httpx.Response]:
    answers = run_session(proxy)
    # on_finish writes the access line as the response completes; wait for the last one
    wait_for(lambda: '"ops-secrets-healthz"' in proxy.log_text(), "the last access line")
    return answers


def live_tokens(proxy: Proxy) -> list[str]:
    """The simulator's access and refresh tokens, as auth/status returns them (from its login file)."""
    [user_file] = list((proxy.tmp / "instances").rglob("cache/user"))
    user = json.loads(base64.b64decode(user_file.read_bytes()))
    assert user["token"].startswith("pt-") and user["refresh_token"].startswith("rt-")
    return [user["token"], user["refresh_token"]]


def test_the_session_went_as_expected(session):
    statuses = {name: response.status_code for name, response in session.items()}
    expected = {name: 200 for name in session}
    expected.update({
        "error-wrong-key": 401, "error-wrong-x-api-key": 401, "error-user-key-on-internal": 401,
        "error-admin-token-on-v1": 401, "error-bad-request": 400, "error-upstream": 502, "error-not-found": 404,
        "error-upstream-quotes-credentials": 502,
    })  # fmt: skip
    assert statuses == expected


def test_no_secret_in_any_answer(session):
    for name, response in session.items():
        text = response.text + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        for secret in (*SECRETS, *WRONG_KEYS, *UPSTREAM_QUOTED):
            assert secret not in text, f"{secret!r} leaked in {name}"


def test_no_secret_and_no_live_token_in_the_log(proxy, session):
    log_text = proxy.log_text()
    for secret in (*SECRETS, *UPSTREAM_QUOTED, *live_tokens(proxy)):
        assert secret not in log_text, f"{secret!r} leaked in the log"


def test_no_live_token_in_the_internal_answers(proxy, session):
    tokens = live_tokens(proxy)
    for name, response in session.items():
        if name.startswith("internal-"):
            assert not any(token in response.text for token in tokens), name


def test_effective_config_masks_every_secret(session):
    cfg = session["internal-effective-config"].json()
    assert cfg["auth"]["api_keys"] == ["***"]
    assert cfg["auth"]["admin_token"] == cfg["auth"]["metrics_token"] == "***"
    assert cfg["accounts"][0]["password"] == "***"
    assert cfg["accounts"][0]["password_env"] == PASSWORD_ENV
    assert cfg["lingma"]["simulator"]["password"] == "***"


def test_the_debug_ring_keeps_bodies_but_masks_credential_headers(session):
    entries = {entry["request_id"]: entry for entry in session["internal-debug-requests"].json()["requests"]}
    chat = entries["ops-secrets-chat"]
    assert chat["body"]["messages"][0]["content"] == "secrets session chat"
    assert {k.lower(): v for k, v in chat["headers"].items()}["authorization"] == "***"
    anthropic = entries["ops-secrets-messages"]
    assert {k.lower(): v for k, v in anthropic["headers"].items()}["x-api-key"] == "***"


# ---- the JSON log ------------------------------------------------------------------------------------


def log_records(proxy: Proxy) -> list[dict]:
    records = []
    for number, line in enumerate(proxy.log_text().splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError:
            pytest.fail(f"log line {number} is not JSON: {line!r}")
        assert isinstance(record, dict) and {"ts", "level", "logger", "request_id", "msg"} <= set(record), line
        records.append(record)
    return records


def test_every_log_line_is_a_json_object(proxy, session):
    assert len(log_records(proxy)) > len(session)


def test_each_request_has_exactly_one_access_line_with_its_request_id(proxy, session):
    records = log_records(proxy)
    for name, response in session.items():
        request_id = f"ops-secrets-{name}"
        assert response.headers["x-request-id"] == request_id
        access = [r for r in records if r["request_id"] == request_id and r["msg"].startswith("access ")]
        assert len(access) == 1, (name, access)
        method, path, status, took = access[0]["msg"].split()[1:5]
        assert (method, int(status)) == (response.request.method, response.status_code)
        assert path == response.request.url.path
        assert took.endswith("ms") and float(took[:-2]) >= 0
    served = [r["msg"] for r in records if r["request_id"] == "ops-secrets-chat" and r["msg"].startswith("access ")]
    assert served[0].endswith("instance=acct-0"), served


def test_what_a_request_logs_carries_its_request_id(proxy, session):
    """The upstream failure is logged on the request's behalf, so it carries the request's id."""
    records = log_records(proxy)
    mine = [r for r in records if r["request_id"] == "ops-secrets-error-upstream"]
    assert len(mine) >= 2, mine  # at least the failure and the access line


def test_a_stream_its_client_abandoned_still_gets_exactly_one_access_line(proxy, session):
    request_id = "ops-secrets-abandoned-stream"
    headers = {**USER, "x-request-id": request_id}
    body = request_body("chat", "DISCONNECT-ME from the JSON log test", stream=True)
    with httpx.Client(timeout=10) as client:
        with client.stream("POST", f"{proxy.url}/v1/chat/completions", json=body, headers=headers) as response:
            assert response.status_code == 200
            next(response.iter_text())
    wait_idle(proxy)

    def access_lines() -> list[dict]:
        return [r for r in log_records(proxy) if r["request_id"] == request_id and r["msg"].startswith("access ")]

    wait_for(access_lines, "the access line of the abandoned stream")
    assert len(access_lines()) == 1
