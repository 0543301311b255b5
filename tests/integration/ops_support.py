"""Shared by the operations, fault and hostile-input suites: one request per API, wire-format checks,
SSE parsing, Prometheus reads and process checks, all against a real proxy with its simulator children.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.proxy import Proxy, child_pids, start_proxy, wait_until_ready

APIS = ("chat", "responses", "messages")
PATHS = {"chat": "/v1/chat/completions", "responses": "/v1/responses", "messages": "/v1/messages"}
ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01"}


def module_proxies(
    factory: pytest.TempPathFactory, configs: dict[str, dict], dialect: str | None = None
) -> Iterator[dict[str, Proxy]]:
    """Body of a module-scoped fixture: several proxies started side by side, stopped at teardown."""
    proxies = {
        name: start_proxy(Path(factory.mktemp(name)), config, wait_ready=False, dialect=dialect)
        for name, config in configs.items()
    }
    try:
        for proxy in proxies.values():
            wait_until_ready(proxy)
        yield proxies
    finally:
        for proxy in proxies.values():
            proxy.stop()


# ---- one request per API ---------------------------------------------------------------------------


def request_body(api: str, text: str, stream: bool = False, **extra: Any) -> dict:
    """The smallest valid body asking `text` on `api` ("chat", "responses" or "messages")."""
    if api == "responses":
        body: dict[str, Any] = {"model": "auto", "input": text}
    else:
        body = {"model": "auto", "messages": [{"role": "user", "content": text}]}
    if api == "messages":
        body["max_tokens"] = 1024
    if stream:
        body["stream"] = True
    return {**body, **extra}


def api_headers(api: str) -> dict[str, str]:
    """What an SDK of that API sends besides the body (open auth: no key)."""
    return dict(ANTHROPIC_HEADERS) if api == "messages" else {}


def post(proxy: Proxy, api: str, text: str, stream: bool = False, timeout: float = 30, **extra: Any) -> httpx.Response:
    """POST one request and read the whole answer (a stream is read to its end)."""
    return httpx.post(
        f"{proxy.url}{PATHS[api]}", json=request_body(api, text, stream, **extra), headers=api_headers(api), timeout=timeout
    )


# ---- wire formats ------------------------------------------------------------------------------------


def parse_sse(text: str) -> list[tuple[str, Any]]:
    """(event name or "", decoded data) per SSE event; comments are kept as ("comment", text), [DONE] as text."""
    events: list[tuple[str, Any]] = []
    name, data = "", []
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if line.startswith(":"):
            events.append(("comment", line[1:].strip()))
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
        elif not line and (data or name):
            joined = "\n".join(data)
            events.append((name, joined if joined == "[DONE]" or not joined else json.loads(joined)))
            name, data = "", []
    return events


def stream_text(api: str, events: list[tuple[str, Any]]) -> str:
    """The visible answer text carried by a stream's events."""
    parts = []
    for name, data in events:
        if not isinstance(data, dict):
            continue
        if api == "chat":
            parts += [c["delta"].get("content") or "" for c in data.get("choices", [])]
        elif api == "responses" and name == "response.output_text.delta":
            parts.append(data["delta"])
        elif api == "messages" and name == "content_block_delta" and data["delta"]["type"] == "text_delta":
            parts.append(data["delta"]["text"])
    return "".join(parts)


def body_text(api: str, body: dict) -> str:
    """The visible answer text of a non-stream response body."""
    if api == "chat":
        return body["choices"][0]["message"]["content"] or ""
    if api == "responses":
        return "".join(p["text"] for item in body["output"] if item["type"] == "message" for p in item["content"])
    return "".join(block["text"] for block in body["content"] if block["type"] == "text")


def error_of(api: str, body: Any) -> dict:
    """The error object of an error body in `api`'s wire format; fails when the shape is wrong."""
    if api == "messages":
        assert isinstance(body, dict) and body.get("type") == "error", body
        error = body["error"]
        assert set(error) == {"type", "message"} and isinstance(error["message"], str), body
    else:
        assert isinstance(body, dict) and set(body) == {"error"}, body
        error = body["error"]
        assert {"message", "type", "param", "code"} <= set(error) and isinstance(error["message"], str), body
    assert error["message"], body
    return error


def assert_error_response(api: str, response: httpx.Response, status: int) -> dict:
    """`response` is a JSON error with `status` in `api`'s wire format; returns its error object."""
    assert response.status_code == status, (response.status_code, response.text[:2000])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    return error_of(api, response.json())


def stream_error(api: str, events: list[tuple[str, Any]]) -> dict | None:
    """The error a stream ended with, in `api`'s wire format: None when it carried none."""
    for name, data in events:
        if api == "chat" and isinstance(data, dict) and "error" in data:
            return error_of(api, data)
        if api == "responses" and name == "response.failed":
            error = data["response"]["error"]
            assert {"code", "message"} <= set(error) and error["message"], data
            return error
        if api == "messages" and name == "error":
            return error_of(api, data)
    return None


def failure_of(api: str, response: httpx.Response) -> tuple[int, dict]:
    """(HTTP status, error object) of a failed request in either mode: an error status before the
    stream started, or an error event inside a 200 stream. Fails when the request did not fail cleanly."""
    if response.status_code != 200:
        return response.status_code, assert_error_response(api, response, response.status_code)
    assert response.headers["content-type"].startswith("text/event-stream"), response.text[:2000]
    events = parse_sse(response.text)
    error = stream_error(api, events)
    assert error is not None, f"the stream ended without an error event: {response.text[-2000:]}"
    name_of_last = [name for name, data in events if name != "comment"][-1]
    if api == "messages":
        assert name_of_last == "error", events[-3:]
    if api == "responses":
        assert name_of_last == "response.failed", events[-3:]
    return 200, error


def error_kind(api: str, error: dict) -> str | None:
    """What a client branches on: the error code on the OpenAI APIs, the error type on Anthropic's."""
    return error["type"] if api == "messages" else error["code"]


# ---- waiting, processes, metrics ---------------------------------------------------------------------


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll `condition` until it returns something truthy (returned); fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def wait_idle(proxy: Proxy, timeout: float = 15.0) -> dict:
    """/healthz once no request holds a slot (its status may be 503 when no instance is ready)."""
    return wait_for(
        lambda: (h := httpx.get(f"{proxy.url}/healthz", timeout=5).json())["in_flight"] == 0 and h,
        "in_flight back to 0",
        timeout,
    )


def assert_no_traceback(proxy: Proxy, since: int = 0) -> None:
    """No traceback in the log after offset `since` (so one failure does not fail every later case)."""
    log_text = proxy.log_text()[since:]
    assert "Traceback" not in log_text, log_text[max(0, log_text.index("Traceback") - 300) :][:4000]


def _process_state(pid: int) -> str | None:
    """The /proc state letter of `pid` (Z for a zombie), or None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def assert_no_zombies(proxy: Proxy) -> None:
    states = {pid: _process_state(pid) for pid in child_pids(proxy.process.pid)}
    assert "Z" not in states.values(), f"defunct children of the proxy: {states}"


def wait_gone(pids: list[int], timeout: float = 10.0) -> None:
    wait_for(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in pids), f"processes {pids} to exit", timeout)


def scrape(proxy: Proxy) -> dict[tuple[str, frozenset], float]:
    """Every sample of /metrics (open auth), parsed by prometheus-client's own parser, keyed by (name, labels)."""
    response = httpx.get(f"{proxy.url}/metrics", timeout=5)
    assert response.status_code == 200, response.text
    return {
        (point.name, frozenset(point.labels.items())): point.value
        for family in text_string_to_metric_families(response.text)
        for point in family.samples
    }


def sample(samples: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float:
    """One sample's value; 0 when that series does not exist yet."""
    return samples.get((name, frozenset(labels.items())), 0.0)
