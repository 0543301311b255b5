"""Bounded under abuse: what one client can make the proxy spend in connections, memory, loop time and log.

Every loop here is bounded in count and time, and only talks to the proxy on this machine.
"""

from __future__ import annotations

import concurrent.futures
import socket
import time
from pathlib import Path

import httpx
import pytest

from harness.proxy import Proxy

from .conftest import scenario_config
from .ops_support import error_of, request_body

pytestmark = pytest.mark.timeout(120)

API_KEY = "abuse-api-key-5b1e"
ADMIN_TOKEN = "abuse-admin-token-77c0"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
USER = {"Authorization": f"Bearer {API_KEY}"}


def rss_kb(proxy: Proxy) -> int:
    for line in Path(f"/proc/{proxy.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def open_slow(port: int) -> socket.socket:
    """A connection that has sent part of its request headers, and then nothing more."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    return sock


def closed_by_peer(sock: socket.socket, within: float) -> bool:
    """True once the proxy has closed this connection; waits at most `within` seconds."""
    sock.settimeout(within)
    try:
        return sock.recv(1024) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


# ---- connections ----------------------------------------------------------------------------------


def test_slow_headers_cannot_starve_a_proxy_of_descriptors(make_proxy):
    proxy = make_proxy({"server": {"header_timeout_sec": 60.0}}, max_open_files=256)
    log_before = len(proxy.log_text())
    slow: list[socket.socket] = []
    try:
        for _ in range(300):
            try:
                slow.append(open_slow(proxy.port))
            except OSError:
                break  # the kernel's accept queue is full: the flood is as big as it gets
        assert len(slow) >= 200, "the flood never reached the descriptor limit"
        # A real client still gets in: the connection that waited longest for its headers makes room.
        answered = httpx.get(f"{proxy.url}/v1/models", timeout=15)
        assert answered.status_code == 200
        assert proxy.process.poll() is None
    finally:
        for sock in slow:
            sock.close()
    grown = len(proxy.log_text()) - log_before
    assert grown < 64 * 1024, f"the log grew by {grown} bytes under the flood"
    assert "Traceback" not in proxy.log_text()


def test_a_new_connection_must_send_its_headers_promptly_but_a_kept_alive_one_may_idle(make_proxy):
    proxy = make_proxy({"server": {"header_timeout_sec": 1.0, "idle_timeout_sec": 60.0}})
    slow = open_slow(proxy.port)
    try:
        assert closed_by_peer(slow, within=20), "a connection that never finished its headers stayed open"
    finally:
        slow.close()
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        first = client.get("/v1/models")
        time.sleep(2.5)  # longer than the header wait, well within the idle wait
        second = client.get("/v1/models")
    assert first.status_code == second.status_code == 200
    assert first.extensions["network_stream"] is second.extensions["network_stream"], "the connection was not kept"


def test_a_kept_alive_connection_is_closed_after_the_idle_wait(make_proxy):
    proxy = make_proxy({"server": {"header_timeout_sec": 30.0, "idle_timeout_sec": 1.0}})
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        received = b""
        while b"\r\n\r\n" not in received:
            received += sock.recv(65536)
        head, _, body = received.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        while len(body) < length:
            body += sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 200")
        # The first request is answered; waiting for a second one is the idle wait, not the 30 s header wait.
        assert closed_by_peer(sock, within=20), "an idle kept-alive connection stayed open past idle_timeout_sec"
    finally:
        sock.close()


def test_a_stalled_request_body_is_dropped_after_the_body_timeout(make_proxy):
    proxy = make_proxy({"server": {"body_timeout_sec": 1.0}})
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    try:
        head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {15 * 1024 * 1024}\r\n"
        sock.sendall(head.encode() + b"Content-Type: application/json\r\n\r\n" + b"x" * 1024 * 1024)
        assert closed_by_peer(sock, within=20), "a body that stopped arriving held its connection"
    finally:
        sock.close()


# ---- memory ---------------------------------------------------------------------------------------


def test_stored_responses_stay_within_their_byte_budget(make_proxy):
    budget = 2 * 1024 * 1024
    proxy = make_proxy(
        {
            "limits": {"response_store_bytes": budget},
            "auth": {"admin_token": ADMIN_TOKEN},
            "lingma": {"context_windows": {"auto": 10_000_000}},  # this test is about bytes, not tokens
        }
    )
    filler = "lorem ipsum " * (300 * 1024 // 12)  # about 300 KB
    rss_before = rss_kb(proxy)
    ids = []
    for n in range(12):
        body = request_body("responses", f"remember {n}: {filler}")
        response = httpx.post(f"{proxy.url}/v1/responses", json=body, timeout=60)
        assert response.status_code == 200, response.text[:300]
        ids.append(response.json()["id"])
    store = httpx.get(f"{proxy.url}/internal/stats", headers=ADMIN, timeout=10).json()["response_store"]
    assert 0 < store["bytes"] <= budget == store["max_bytes"]
    assert store["entries"] < 12
    newest = request_body("responses", "and then?") | {"previous_response_id": ids[-1]}
    assert httpx.post(f"{proxy.url}/v1/responses", json=newest, timeout=60).status_code == 200
    oldest = request_body("responses", "and then?") | {"previous_response_id": ids[0]}
    evicted = httpx.post(f"{proxy.url}/v1/responses", json=oldest, timeout=60)
    assert evicted.status_code == 400 and evicted.json()["error"]["code"] == "previous_response_not_found"
    oversized = request_body("responses", "x" * (budget + 1))
    kept = httpx.post(f"{proxy.url}/v1/responses", json=oversized, timeout=60).json()["id"]
    assert httpx.post(f"{proxy.url}/v1/responses", timeout=60,
                      json=request_body("responses", "?") | {"previous_response_id": kept}).status_code == 400  # fmt: skip
    grown_mb = (rss_kb(proxy) - rss_before) / 1024
    assert grown_mb < 120, f"RSS grew by {grown_mb:.0f} MB for a 2 MB store"


def test_the_request_queue_is_bounded_with_a_429(make_proxy):
    config = scenario_config("ops_slow", {"limits": {"max_in_flight": 1, "max_queued": 1, "queue_timeout_sec": 30}})
    proxy = make_proxy(config)

    def hold(n: int) -> httpx.Response:
        return httpx.post(f"{proxy.url}/v1/chat/completions", json=request_body("chat", f"SLOW-HOLD {n}"), timeout=60)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        statuses = sorted(response.status_code for response in pool.map(hold, range(4)))
    assert statuses.count(200) >= 2 and 429 in statuses, statuses
    stats = httpx.get(f"{proxy.url}/internal/stats", timeout=10).json()
    assert stats["queued"] == 0 and stats["rejections"] >= 1


# ---- the event loop -------------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["chat", "responses", "messages"])
def test_a_prompt_over_the_context_window_is_a_400_context_length_exceeded(make_proxy, api):
    proxy = make_proxy({"lingma": {"context_windows": {"auto": 200}}})
    path = {"chat": "/v1/chat/completions", "responses": "/v1/responses", "messages": "/v1/messages"}[api]
    headers = {"anthropic-version": "2023-06-01"} if api == "messages" else {}
    asks_before = proxy.sim_status()["ask_count"]
    response = httpx.post(f"{proxy.url}{path}", json=request_body(api, "word " * 1000), headers=headers, timeout=30)
    assert response.status_code == 400, response.text[:300]
    error = error_of(api, response.json())
    assert "prompt is too long" in error["message"] and "maximum context length is 200 tokens" in error["message"]
    if api == "messages":
        assert error["type"] == "invalid_request_error"
    else:
        assert error["code"] == "context_length_exceeded"
    assert proxy.sim_status()["ask_count"] == asks_before
    small = httpx.post(f"{proxy.url}{path}", json=request_body(api, "hi"), headers=headers, timeout=30)
    assert small.status_code == 200


# ---- logs and lists -------------------------------------------------------------------------------


def test_a_newline_in_client_text_cannot_forge_a_log_line(make_proxy):
    proxy = make_proxy()
    forged = "2026-01-01 00:00:00,000 INFO [req_x] lingma_proxy.http: access POST /v1/admin 200"
    body = {"model": "auto", "messages": [{"role": f"user\n{forged}", "content": "hi"}]}
    response = httpx.post(f"{proxy.url}/v1/chat/completions", json=body, timeout=30)
    assert response.status_code == 400
    lines = proxy.log_text().splitlines()
    assert not [line for line in lines if line.startswith(forged[:30])], "a client forged a log line"
    assert [line for line in lines if "\\n" + forged[:30] in line], "the escaped role should still be logged"


def test_a_secret_request_id_is_redacted_and_an_odd_one_replaced(make_proxy):
    proxy = make_proxy({"auth": {"api_keys": [API_KEY]}})
    secret_id = httpx.get(f"{proxy.url}/v1/models", headers={**USER, "x-request-id": API_KEY}, timeout=10)
    assert secret_id.status_code == 200
    odd = httpx.get(f"{proxy.url}/v1/models", headers={**USER, "x-request-id": "a b<c>" + "x" * 80}, timeout=10)
    assert odd.headers["x-request-id"].startswith("req_")
    kept = httpx.get(f"{proxy.url}/v1/models", headers={**USER, "x-request-id": "trace-1:ok.2"}, timeout=10)
    assert kept.headers["x-request-id"] == "trace-1:ok.2"
    log = proxy.log_text()
    assert API_KEY not in log and "a b<c>" not in log


def test_unauthenticated_requests_cannot_flush_the_recent_list_and_unknown_routes_are_not_stored_raw(make_proxy):
    proxy = make_proxy({"auth": {"api_keys": [API_KEY], "admin_token": ADMIN_TOKEN}})
    assert httpx.post(f"{proxy.url}/v1/chat/completions", json=request_body("chat", "real"), headers=USER,
                      timeout=30).status_code == 200  # fmt: skip
    httpx.get(f"{proxy.url}/v1/sk-live-0123456789abcdef/files", headers=USER, timeout=10)
    for _ in range(30):
        assert httpx.get(f"{proxy.url}/v1/models", headers={"Authorization": "Bearer nope"}, timeout=10).status_code == 401
    status = httpx.get(f"{proxy.url}/internal/status", headers=ADMIN, timeout=10).json()
    routes = [entry["route"] for entry in status["recent"]]
    assert "/v1/chat/completions" in routes and "(unknown route)" in routes
    assert "sk-live-0123456789abcdef" not in str(status)
    assert status["counters"]["unauthenticated"] == 30
