"""Auto-login through a real headless Chromium against the simulator's login page (docs/features.md §7)."""

from __future__ import annotations

import time

import httpx
import pytest

from harness.proxy import REPO, Proxy

pytestmark = pytest.mark.timeout(90)

ADMIN = {"Authorization": "Bearer admin-token-for-login-tests"}
SIM_PASSWORD = "Corr3ct-Horse-Battery-7781"
WRONG_PASSWORD = "Wr0ng-Guess-Staple-4410"


def _browser_unavailable() -> str:
    """install.sh records whether it could provide chromium + chromedriver; only its 'unavailable' skips."""
    status_file = REPO / ".venv" / "browser-status"
    status = status_file.read_text().strip() if status_file.exists() else ""
    return status if status.startswith("unavailable") else ""


needs_browser = pytest.mark.skipif(bool(_browser_unavailable()), reason=f"install.sh: {_browser_unavailable()}")


def login_config(password_env: str, max_retry: int, health_interval_sec: float = 2.0) -> dict:
    return {
        "auth": {"admin_token": ADMIN["Authorization"].split()[1]},
        "lingma": {
            "health_interval_sec": health_interval_sec,
            "simulator": {"start_logged_out": True, "password": SIM_PASSWORD},
        },
        "login": {"auto_login": True, "timeout": 30, "max_retry": max_retry},
        "accounts": [{"name": "work", "username": "alice@example.com", "password_env": password_env}],
    }


def wait_for_instance_state(proxy: Proxy, state: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proxy.process.poll() is not None:
            raise RuntimeError(f"proxy exited:\n{proxy.log_text()[-4000:]}")
        try:
            [instance] = proxy.health()["instances"]
            if instance["state"] == state:
                return instance
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"instance never became {state}:\n{proxy.log_text()[-4000:]}")


def chat(proxy: Proxy, text: str) -> httpx.Response:
    body = {"model": "auto", "messages": [{"role": "user", "content": text}]}
    return httpx.post(f"{proxy.url}/v1/chat/completions", json=body, timeout=60)


def login_status(proxy: Proxy) -> dict:
    response = httpx.get(f"{proxy.url}/internal/auto-login/status", headers=ADMIN, timeout=5)
    assert response.status_code == 200
    [instance] = response.json()["instances"]
    return instance


@needs_browser
def test_a_chat_request_logs_the_account_in_and_succeeds(make_proxy):
    # A long health interval keeps the background sweep away, so the request is what starts the login.
    config = login_config("LOGIN_TEST_PASSWORD", max_retry=0, health_interval_sec=300)
    proxy = make_proxy(config, env={"LOGIN_TEST_PASSWORD": SIM_PASSWORD}, wait_ready=False)
    wait_for_instance_state(proxy, "logged_out")

    response = chat(proxy, "hello after logging in")
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"]

    [instance] = proxy.health()["instances"]
    assert instance["state"] == "ready" and instance["logged_in"] is True
    status = login_status(proxy)
    assert status["user"] == "alice@example.com"
    assert status["login"]["state"] == "succeeded" and status["login"]["attempts"] == 1
    log = proxy.log_text()
    assert "login flow started for instance work-0" in log
    assert "login succeeded for instance work-0 as alice@example.com" in log
    assert SIM_PASSWORD not in log
    again = httpx.post(f"{proxy.url}/internal/auto-login/start?instance=work-0", headers=ADMIN, timeout=5)
    assert again.status_code == 409 and "already logged in" in again.json()["error"]["message"]

    raw = httpx.get(f"{proxy.url}/internal/models/raw?instance=work-0", headers=ADMIN, timeout=10)
    assert raw.status_code == 200
    assert "auto" in raw.json()["exposed"] and raw.json()["raw"]["chat"]
    assert httpx.get(f"{proxy.url}/internal/models/raw?instance=nope", headers=ADMIN, timeout=5).status_code == 404
    assert httpx.get(f"{proxy.url}/internal/models/raw?instance=work-0", timeout=5).status_code == 401


@needs_browser
def test_a_wrong_password_fails_with_a_clear_503_after_bounded_retries(make_proxy):
    config = login_config("LOGIN_TEST_PASSWORD", max_retry=1)
    proxy = make_proxy(config, env={"LOGIN_TEST_PASSWORD": WRONG_PASSWORD}, wait_ready=False)
    wait_for_instance_state(proxy, "logged_out")

    response = chat(proxy, "hello with a wrong password")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "login_failed"
    assert "login failed for instance work-0" in error["message"]
    assert "Invalid username or password" in error["message"]
    screenshot = proxy.tmp / "instances" / "work" / "0" / "logs" / "login-failure.png"
    assert str(screenshot) in error["message"]
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    note = screenshot.with_suffix(".txt").read_text()
    assert "Invalid username or password" in note and WRONG_PASSWORD not in note

    # Within the cool-down a failed login is reported at once, in each API's own error format.
    anthropic = httpx.post(
        f"{proxy.url}/v1/messages",
        json={"model": "auto", "max_tokens": 64, "messages": [{"role": "user", "content": "again"}]},
        headers={"anthropic-version": "2023-06-01"},
        timeout=30,
    )
    assert anthropic.status_code == 503
    assert anthropic.json()["error"]["type"] == "overloaded_error"
    assert "login failed" in anthropic.json()["error"]["message"]

    status = login_status(proxy)
    assert status["login"]["state"] == "failed" and status["login"]["attempts"] == 2  # 1 + login.max_retry
    assert status["login"]["retry_blocked_until"] is not None
    export = httpx.post(f"{proxy.url}/internal/session/export?instance=work-0", headers=ADMIN, timeout=5)
    assert export.status_code == 409

    log = proxy.log_text()
    assert log.count("login flow started for instance work-0") == 1
    assert "login-failure.png" in log
    assert WRONG_PASSWORD not in log and SIM_PASSWORD not in log
