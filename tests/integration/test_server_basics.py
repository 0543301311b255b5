"""The server skeleton: startup on the simulator, health, probes, request ids, JSON 404, clean SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

from harness.proxy import REPO, Proxy, child_pids, free_port, wait_until_ready


def test_healthz_names_the_simulator_upstream_and_each_instance(proxy):
    health = httpx.get(f"{proxy.url}/healthz", timeout=5)
    assert health.status_code == 200
    body = health.json()
    assert body["ok"] is True
    assert body["upstream"]["kind"] == "simulator"
    assert body["upstream"]["dialect"] == "classic"
    assert body["pool_size"] == body["pool_ready"] == 1
    [instance] = body["instances"]
    assert instance["state"] == "ready"
    assert instance["logged_in"] is True
    assert instance["in_flight"] == 0


def test_every_response_carries_a_request_id_and_keeps_the_clients(proxy):
    fresh = httpx.get(f"{proxy.url}/healthz", timeout=5)
    assert fresh.headers["x-request-id"]
    echoed = httpx.get(f"{proxy.url}/healthz", headers={"x-request-id": "my-trace-42"}, timeout=5)
    assert echoed.headers["x-request-id"] == "my-trace-42"


def test_api_hello_answers_head_and_get(proxy):
    assert httpx.head(f"{proxy.url}/api/hello", timeout=5).status_code == 200
    assert httpx.get(f"{proxy.url}/api/hello", timeout=5).status_code == 200


def test_unknown_route_is_a_json_404_in_the_callers_format(proxy):
    openai_style = httpx.get(f"{proxy.url}/v1/nope", timeout=5)
    assert openai_style.status_code == 404
    assert openai_style.json()["error"]["message"].startswith("Unknown route")
    assert openai_style.headers["x-request-id"]
    anthropic_style = httpx.post(f"{proxy.url}/v1/nope", headers={"anthropic-version": "2023-06-01"}, timeout=5)
    assert anthropic_style.status_code == 404
    assert anthropic_style.json() == {
        "type": "error",
        "error": {"type": "not_found_error", "message": "Unknown route: POST /v1/nope"},
        "request_id": anthropic_style.headers["x-request-id"],
    }


def test_shipped_config_starts_on_the_simulator_and_sigterm_leaves_no_children(tmp_path):
    """`python lingma_proxy.py` with the shipped config.yaml, only the port and work dir moved for the test."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LINGMA_PROXY_", "LINGMA_SIM_", "LINGMA_BINARY"))}
    env.update(
        LINGMA_PROXY_SERVER_PORT=str(port),
        LINGMA_PROXY_LINGMA_WORK_DIR=str(tmp_path / "instances"),
        HOME=str(tmp_path),  # no real Lingma install can be found here, so `auto` falls back to the simulator
    )
    log_path = tmp_path / "proxy.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, str(REPO / "lingma_proxy.py")], cwd=REPO, env=env,
            stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    proxy = Proxy(process, port, tmp_path, log_path)
    try:
        health = wait_until_ready(proxy)
        assert health["upstream"]["kind"] == "simulator"
        children = child_pids(process.pid)
        assert children, "the simulator should run as a child process"
        log_text = proxy.log_text()
        assert "SIMULATOR" in log_text and "lingma.binary" in log_text
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{pid}") for pid in children):
        time.sleep(0.1)
    leftovers = [pid for pid in children if os.path.exists(f"/proc/{pid}")]
    assert leftovers == [], f"children left behind: {leftovers}"


def test_a_wrong_method_is_a_405_not_a_404_in_the_callers_format(proxy):
    openai_style = httpx.get(f"{proxy.url}/v1/chat/completions", timeout=5)
    assert openai_style.status_code == 405
    assert openai_style.json()["error"]["type"] == "invalid_request_error"
    assert "not allowed" in openai_style.json()["error"]["message"]
    anthropic_style = httpx.get(f"{proxy.url}/v1/messages", headers={"anthropic-version": "2023-06-01"}, timeout=5)
    assert anthropic_style.status_code == 405
    assert anthropic_style.json()["error"]["type"] == "invalid_request_error"


def test_the_spawned_lingma_gets_an_empty_workspace_of_its_own_never_the_proxys_cwd(proxy):
    httpx.post(f"{proxy.url}/v1/chat/completions", json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
               timeout=30).raise_for_status()
    workspaces = set(proxy.sim_status()["workspaces"])
    assert workspaces, "the simulator records the rootUri and cwd it was given"
    [work_dir] = [p.parent for p in (proxy.tmp / "instances").rglob(".info.json")]
    expected = work_dir.with_name(f"{work_dir.name}.workspace").resolve()
    assert {w.removeprefix("file://") for w in workspaces} == {str(expected)}
    assert expected.is_dir() and not any(expected.iterdir())
    assert str(REPO) not in " ".join(workspaces)
