"""Who can reach the proxy and its Lingma: web pages, a process squatting the child's port, other key holders.

Each test plays the attack against a real proxy with its simulator child and checks that nothing got
through: the refusal in the route's own wire format, and no request upstream.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.proxy import REPO, Proxy, free_port, wait_until_ready

from .ops_support import error_of, module_proxies, request_body
from .test_login import login_config, needs_browser, wait_for_instance_state

pytestmark = pytest.mark.timeout(90)

API_KEY = "reach-api-key-1"
OTHER_KEY = "reach-api-key-2"
ALLOWED_ORIGIN = "https://tools.example.test"
EVIL_ORIGIN = "https://evil.example.test"
CHAT = {"model": "auto", "messages": [{"role": "user", "content": "spend the quota"}]}
MESSAGES = {"model": "auto", "max_tokens": 32, "messages": [{"role": "user", "content": "spend the quota"}]}


@pytest.fixture(scope="module")
def proxies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Proxy]]:
    yield from module_proxies(
        tmp_path_factory,
        {
            # The shipped posture: no keys, loopback.
            "open": {},
            "cors": {"server": {"cors_origins": [ALLOWED_ORIGIN], "allowed_hosts": ["proxy.lan"]}},
            "keys": {"auth": {"api_keys": [API_KEY, OTHER_KEY]}},
        },
    )


def asks(proxy: Proxy) -> int:
    return proxy.sim_status()["ask_count"]


def test_a_cross_site_form_post_is_refused_before_it_reaches_lingma(proxies):
    proxy = proxies["open"]
    before = asks(proxy)
    # What a page can send without a preflight: text/plain, with the browser's Origin and Sec-Fetch-Site.
    browser = {"Origin": EVIL_ORIGIN, "Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"}
    chat = httpx.post(f"{proxy.url}/v1/chat/completions", content=str(CHAT).encode(), headers=browser, timeout=10)
    assert chat.status_code == 403
    error = error_of("chat", chat.json())
    assert error["code"] == "forbidden_origin" and "server.cors_origins" in error["message"]
    messages = httpx.post(
        f"{proxy.url}/v1/messages", json=MESSAGES, headers={**browser, "anthropic-version": "2023-06-01"}, timeout=10
    )
    assert messages.status_code == 403
    assert error_of("messages", messages.json())["type"] == "permission_error"
    login = httpx.post(f"{proxy.url}/internal/auto-login/start", headers=browser, timeout=10)
    assert login.status_code == 403
    assert asks(proxy) == before


def test_a_navigation_marked_cross_site_is_refused_even_without_an_origin(proxies):
    proxy = proxies["open"]
    response = httpx.get(f"{proxy.url}/internal/status", headers={"Sec-Fetch-Site": "cross-site"}, timeout=10)
    assert response.status_code == 403


@pytest.mark.parametrize("path", ["/internal/status", "/internal/debug/requests", "/healthz", "/v1/models"])
def test_dns_rebinding_is_refused_by_the_host_check(proxies, path):
    """A rebound name reaches 127.0.0.1 with the page's own Host and origin: same-origin to the browser."""
    proxy = proxies["open"]
    rebound = {"Host": f"evil.example.test:{proxy.port}", "Origin": f"http://evil.example.test:{proxy.port}"}
    response = httpx.get(f"{proxy.url}{path}", headers=rebound, timeout=10)
    assert response.status_code == 403
    assert "server.allowed_hosts" in response.json()["error"]["message"]
    assert "prompt" not in response.text


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}", "localhost"])
def test_loopback_host_names_are_accepted(proxies, host):
    proxy = proxies["open"]
    response = httpx.get(f"{proxy.url}/v1/models", headers={"Host": host.format(port=proxy.port)}, timeout=10)
    assert response.status_code == 200


def test_a_listed_host_name_is_accepted(proxies):
    proxy = proxies["cors"]
    assert httpx.get(f"{proxy.url}/v1/models", headers={"Host": "proxy.lan:443"}, timeout=10).status_code == 200
    assert httpx.get(f"{proxy.url}/v1/models", headers={"Host": "other.lan"}, timeout=10).status_code == 403


def test_an_allowed_origin_gets_real_cors_with_its_preflight(proxies):
    proxy = proxies["cors"]
    preflight = httpx.request(
        "OPTIONS",
        f"{proxy.url}/v1/chat/completions",
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Sec-Fetch-Site": "cross-site",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
        timeout=10,
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-headers"] == "authorization, content-type"
    chat = httpx.post(
        f"{proxy.url}/v1/chat/completions",
        json=CHAT,
        headers={"Origin": ALLOWED_ORIGIN, "Sec-Fetch-Site": "cross-site"},
        timeout=30,
    )
    assert chat.status_code == 200
    assert chat.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "x-request-id" in chat.headers["access-control-expose-headers"]


def test_a_preflight_from_another_origin_gets_no_cors(proxies):
    proxy = proxies["cors"]
    preflight = httpx.request(
        "OPTIONS",
        f"{proxy.url}/v1/chat/completions",
        headers={"Origin": EVIL_ORIGIN, "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert preflight.status_code == 403
    assert "access-control-allow-origin" not in preflight.headers


def test_the_status_page_keeps_working_from_its_own_origin(proxies):
    proxy = proxies["open"]
    page = httpx.get(f"{proxy.url}/", headers={"Sec-Fetch-Site": "none"}, timeout=10)
    assert page.status_code == 200 and "<html" in page.text.lower()
    own = {"Origin": proxy.url, "Sec-Fetch-Site": "same-origin"}
    assert httpx.get(f"{proxy.url}/internal/status", headers=own, timeout=10).status_code == 200


def test_a_stored_response_belongs_to_the_key_that_made_it(proxies):
    proxy = proxies["keys"]
    mine, theirs = ({"Authorization": f"Bearer {key}"} for key in (API_KEY, OTHER_KEY))
    first = httpx.post(f"{proxy.url}/v1/responses", json=request_body("responses", "remember me"), headers=mine,
                       timeout=30)  # fmt: skip
    assert first.status_code == 200
    follow_up = request_body("responses", "and then?") | {"previous_response_id": first.json()["id"]}
    assert httpx.post(f"{proxy.url}/v1/responses", json=follow_up, headers=mine, timeout=30).status_code == 200
    stolen = httpx.post(f"{proxy.url}/v1/responses", json=follow_up, headers=theirs, timeout=30)
    assert stolen.status_code == 400
    assert error_of("responses", stolen.json())["code"] == "previous_response_not_found"


# ---- the child's port ----------------------------------------------------------------------------

_SQUATTING_LINGMA = """\
#!/bin/sh
# A stand-in Lingma whose port another process takes first, as a local attacker would: the squatter is a
# full simulator (a fake Lingma) started detached, so it is not a descendant of the child.
set -e
for arg in "$@"; do
  case "$arg" in --socketPort=*) port="${{arg#--socketPort=}}" ;; esac
done
export PYTHONPATH="{repo}"
WAIT_FOR_PORT='
import socket, sys, time
for _ in range(200):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.2).close()
        break
    except OSError:
        time.sleep(0.05)
'
if [ ! -e "{marker}" ]; then
  touch "{marker}"
  ( setsid "{python}" -m lingma_proxy.simulator start --workDir="{squat_dir}" --socketPort="$port" \\
      --httpPort={squat_http} > "{squat_dir}.log" 2>&1 & echo $! > "{pid_file}" )
  # Wait until the squatter listens, so the child finds its port taken.
  "{python}" -c "$WAIT_FOR_PORT" "$port"
fi
exec "{python}" -m lingma_proxy.simulator "$@"
"""


def _squatting_binary(tmp: Path, squat_http: int) -> tuple[Path, Path]:
    script = tmp / "squatting-lingma"
    pid_file = tmp / "squatter.pid"
    body = _SQUATTING_LINGMA.format(
        repo=REPO, marker=tmp / "squatted", python=sys.executable, squat_dir=tmp / "squatter",
        squat_http=squat_http, pid_file=pid_file,
    )  # fmt: skip
    script.write_text(body)
    script.chmod(0o755)
    return script, pid_file


def test_a_squatted_port_is_refused_and_the_instance_never_serves_from_it(make_proxy, tmp_path):
    squat_http = free_port()
    binary, pid_file = _squatting_binary(tmp_path, squat_http)
    proxy = make_proxy({"lingma": {"binary": str(binary)}}, wait_ready=False)
    try:
        wait_until_ready(proxy, timeout=60)
        squatter = httpx.get(f"http://127.0.0.1:{squat_http}/sim/status", timeout=5).json()
        assert squatter["workspaces"] == [] and squatter["ask_count"] == 0, "the proxy talked to the squatter"
        log = proxy.log_text()
        assert "is held by another process, not by the Lingma child" in log
        [instance] = proxy.health()["instances"]
        assert instance["restarts"] >= 1  # the first start was refused, the restart got ports of its own
        chat = httpx.post(f"{proxy.url}/v1/chat/completions", json=CHAT, timeout=30)
        assert chat.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{squat_http}/sim/status", timeout=5).json()["ask_count"] == 0
    finally:
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGTERM)


# ---- what /healthz says about a failed child -----------------------------------------------------

_CHATTY_FAILING_LINGMA = """\
#!/bin/sh
echo "starting as machine_id=9f8e7d6c5b4a3f2e user someone@example.test token=pt-{secret}"
echo "fatal: cannot open workspace"
exit 3
"""


def test_healthz_names_a_failure_by_code_and_never_quotes_the_child(make_proxy, tmp_path):
    secret = "A" * 24
    binary = tmp_path / "failing-lingma"
    binary.write_text(_CHATTY_FAILING_LINGMA.format(secret=secret))
    binary.chmod(0o755)
    proxy = make_proxy({"lingma": {"binary": str(binary)}}, wait_ready=False)
    health = wait_until_ready(proxy, status=503)
    deadline = time.monotonic() + 30
    while health["instances"][0]["error"] is None:
        assert time.monotonic() < deadline, health
        time.sleep(0.2)
        health = proxy.health()
    assert health["instances"][0]["error"] == "start_failed"
    public = httpx.get(f"{proxy.url}/healthz", timeout=5).text
    assert "fatal" not in public and "machine_id" not in public and "someone@" not in public
    status = httpx.get(f"{proxy.url}/internal/status", timeout=5).json()
    detail = status["instances"][0]["last_error"]
    assert "fatal: cannot open workspace" in detail
    assert "9f8e7d6c5b4a3f2e" not in detail and secret not in detail



# ---- the login cool-down ---------------------------------------------------------------------------


@needs_browser
def test_a_failed_login_cannot_be_restarted_within_its_cool_down_without_the_admin_token(make_proxy):
    """Three quick POSTs from a web page used to skip the cool-down that protects the account from lockout."""
    config = login_config("REACH_LOGIN_PASSWORD", max_retry=0)
    del config["auth"]  # the shipped posture: no admin token, /internal/* open on loopback
    proxy = make_proxy(config, env={"REACH_LOGIN_PASSWORD": "Wr0ng-Guess-For-Cooldown"}, wait_ready=False)
    wait_for_instance_state(proxy, "logged_out")
    assert httpx.post(f"{proxy.url}/v1/chat/completions", json=CHAT, timeout=60).status_code == 503
    for _ in range(3):
        again = httpx.post(f"{proxy.url}/internal/auto-login/start?instance=work-0", timeout=10)
        assert again.status_code == 429, again.text[:300]
        assert again.json()["error"]["code"] == "login_cooling_down" and int(again.headers["retry-after"]) > 0
    assert proxy.log_text().count("login flow started for instance work-0") == 1
