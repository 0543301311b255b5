"""Graceful shutdown (docs/features.md §8): SIGTERM/SIGINT stop accepting, let streams finish within the
grace period, end the rest with an error event in their wire format, stop the children and exit 0."""

from __future__ import annotations

import signal
import threading
import uuid

import httpx
import pytest

from harness.proxy import Proxy, child_pids

from .conftest import scenario_config
from .ops_support import (
    APIS,
    PATHS,
    api_headers,
    parse_sse,
    request_body,
    stream_error,
    stream_text,
    wait_for,
    wait_gone,
)

pytestmark = pytest.mark.timeout(60)

SHUTTING_DOWN = {"chat": "server_error", "responses": "server_error", "messages": "overloaded_error"}


class BackgroundStream:
    """A stream read to its end on a thread; `started` is set once two events have arrived."""

    def __init__(self, proxy: Proxy, api: str, text: str) -> None:
        self.api = api
        self.status = 0
        self.text = ""
        self.started = threading.Event()
        body = request_body(api, f"{text} {uuid.uuid4()}", stream=True)
        self.thread = threading.Thread(target=self._read, args=(f"{proxy.url}{PATHS[api]}", body), daemon=True)
        self.thread.start()

    def _read(self, url: str, body: dict) -> None:
        with httpx.stream("POST", url, json=body, headers=api_headers(self.api), timeout=20) as response:
            self.status = response.status_code
            try:
                for chunk in response.iter_text():
                    self.text += chunk
                    if self.text.count("\n\n") >= 3:
                        self.started.set()
            except httpx.HTTPError as exc:  # a cut stream: the test reports what arrived before it
                self.text += f"\n[transport error: {exc!r}]"
        self.started.set()

    def events(self) -> list:
        self.thread.join(30)
        assert not self.thread.is_alive(), "the stream never ended"
        return parse_sse(self.text)


def send_signal(proxy: Proxy, sig: int) -> list[int]:
    """Signal the proxy; returns the child processes it had."""
    children = child_pids(proxy.process.pid)
    assert children, "the simulator should be running as a child"
    proxy.process.send_signal(sig)
    return children


def assert_clean_exit(proxy: Proxy, children: list[int]) -> None:
    assert proxy.process.wait(timeout=30) == 0, proxy.log_text()[-3000:]
    wait_gone(children)


def test_sigterm_ends_streams_past_the_grace_period_with_an_error_event(make_proxy):
    proxy = make_proxy(scenario_config("ops_slow", {"server": {"shutdown_grace_sec": 1}}))
    streams = [BackgroundStream(proxy, api, "LONG-STREAM") for api in APIS]
    for stream in streams:
        assert stream.started.wait(15), f"{stream.api}: no events before shutdown: {stream.text!r}"
    assert_clean_exit(proxy, send_signal(proxy, signal.SIGTERM))
    for stream in streams:
        events = stream.events()
        assert stream.status == 200
        assert "[transport error" not in stream.text, f"{stream.api} was cut silently: {stream.text[-500:]}"
        error = stream_error(stream.api, events)
        assert error is not None, f"{stream.api} ended without an error event: {stream.text[-500:]}"
        assert error["type"] == SHUTTING_DOWN[stream.api]
        assert "shutting down" in error["message"]
        assert stream_text(stream.api, events), "some text streamed before the shutdown"
        named = [name for name, data in events if name != "comment" and data != "[DONE]"]
        if stream.api == "messages":
            assert named[-1] == "error" and "message_stop" not in named
        if stream.api == "responses":
            assert named[-1] == "response.failed" and "response.completed" not in named


def test_sigint_lets_a_stream_finish_within_the_grace_period_and_refuses_new_connections(make_proxy):
    proxy = make_proxy(scenario_config("ops_slow", {"server": {"shutdown_grace_sec": 20}}))
    stream = BackgroundStream(proxy, "chat", "SLOW-HOLD")  # ~4 s
    assert stream.started.wait(15), stream.text
    children = send_signal(proxy, signal.SIGINT)

    def refused() -> bool:
        try:
            httpx.get(f"{proxy.url}/healthz", timeout=2)
        except httpx.ConnectError:
            return True
        return False

    wait_for(refused, "the proxy to stop accepting connections", timeout=3)
    assert stream.thread.is_alive(), "the stream should still be running when new connections are refused"
    events = stream.events()
    assert stream_error("chat", events) is None, stream.text[-500:]
    assert stream_text("chat", events) == "This reply holds a slot for a while, streamed slowly in small pieces."
    assert [c["finish_reason"] for _, data in events if isinstance(data, dict) for c in data["choices"]][-1] == "stop"
    assert events[-1] == ("", "[DONE]")
    assert_clean_exit(proxy, children)
