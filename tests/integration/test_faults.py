"""Upstream faults, from the simulator's scenario faults, on every API in both modes: each ends in
a clean error in the endpoint's wire format, the pool recovers, and nothing leaks (slots, processes, cache).

Each API has its own proxy, so the three APIs of one case run at the same time and their restart
backoffs overlap; the logged-out cases come last because they log the simulator out for good.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest

from harness.proxy import Proxy

from .conftest import scenario_config
from .ops_support import (
    APIS,
    assert_error_response,
    assert_no_traceback,
    assert_no_zombies,
    body_text,
    error_kind,
    failure_of,
    module_proxies,
    parse_sse,
    post,
    stream_error,
    stream_text,
    wait_for,
    wait_idle,
)

pytestmark = pytest.mark.timeout(90)

MODES = [pytest.param(True, id="stream"), pytest.param(False, id="non-stream")]
RATE_LIMITED = {"chat": "rate_limit_exceeded", "responses": "rate_limit_exceeded", "messages": "rate_limit_error"}
LOGIN_HINT = "python lingma_proxy.py login"


@pytest.fixture(scope="module")
def proxies(tmp_path_factory: pytest.TempPathFactory, sim_dialect: str) -> Iterator[dict[str, Proxy]]:
    quick_timeout = scenario_config("faults_upstream", {"lingma": {"rpc_timeout": 2}})
    configs = {api: quick_timeout for api in APIS}
    configs["slow"] = scenario_config("faults_upstream")  # the default rpc_timeout outlasts a slow first token
    yield from module_proxies(tmp_path_factory, configs, sim_dialect)


def on_every_api(check: Callable[[str], None]) -> None:
    """Run `check(api)` for the three APIs at once, each on its own proxy; report every API that failed."""
    with ThreadPoolExecutor(len(APIS)) as pool:
        futures = {api: pool.submit(check, api) for api in APIS}
    failures = {api: future.exception() for api, future in futures.items() if future.exception() is not None}
    assert not failures, "\n\n".join(f"[{api}] {type(exc).__name__}: {exc}" for api, exc in failures.items())


def instance(proxy: Proxy) -> dict:
    return proxy.health()["instances"][0]


def cache_entries(proxy: Proxy) -> int:
    return httpx.get(f"{proxy.url}/internal/stats", timeout=5).json()["session_cache"]["entries"]


def answer_text(api: str, response: httpx.Response, stream: bool) -> str:
    assert response.status_code == 200, response.text[:1000]
    if stream:
        events = parse_sse(response.text)
        assert stream_error(api, events) is None, response.text[-1000:]
        return stream_text(api, events)
    return body_text(api, response.json())


def assert_settled(proxy: Proxy) -> None:
    """No slot held, no defunct child left behind, no traceback logged."""
    wait_idle(proxy)
    assert_no_zombies(proxy)
    assert_no_traceback(proxy)


def assert_recovers(proxy: Proxy, api: str, stream: bool, restarts_before: int) -> None:
    """The instance was restarted and serves the next request."""
    wait_for(
        lambda: (inst := instance(proxy))["restarts"] > restarts_before and inst["state"] == "ready",
        "the instance to be restarted",
        timeout=30,
    )
    text = answer_text(api, post(proxy, api, f"after the fault {uuid.uuid4()}", stream=stream), stream)
    assert text.startswith("Simulated reply"), text


@dataclass(frozen=True)
class Fault:
    """One upstream fault, and what every API must answer and what the pool must do after it."""

    marker: str  # the question that triggers it (tests/fixtures/scenarios/faults_upstream.yaml)
    status: int  # before the stream started; a stream already under way ends with an error event instead
    kind: tuple[str, str] | None = None  # what clients branch on (error_kind): (Anthropic type, OpenAI code)
    type: tuple[str, str] | None = None  # the error type: (Anthropic, OpenAI)
    after: str = "untouched"  # "restarted": the instance is recycled and serves again
    streams_first: bool = False  # text went out before the fault: a stream answers 200 and an error event
    message: str = ""  # a phrase the message must name
    retry_after: bool = False


FAULTS = [
    pytest.param(
        Fault("FAULT-CRASH", 502, kind=("api_error", "upstream_crashed"), after="restarted", streams_first=True),
        id="crash",
    ),
    pytest.param(
        Fault("FAULT-HANG", 504, type=("timeout_error", "server_error"), after="restarted", message="rpc_timeout"),
        id="hang",
    ),
    pytest.param(Fault("FAULT-RPC", 502, type=("api_error", "server_error")), id="rpc-error"),
    pytest.param(
        Fault("FAULT-QUOTA-EARLY", 429, kind=("rate_limit_error", "rate_limit_exceeded"), retry_after=True),
        id="quota-before-text",
    ),
]


@pytest.mark.parametrize("stream", MODES)
@pytest.mark.parametrize("fault", FAULTS)
def test_an_upstream_fault_is_a_clean_error_in_every_wire_format_and_the_pool_recovers(proxies, fault, stream):
    def check(api: str) -> None:
        proxy = proxies[api]
        before, entries = instance(proxy), cache_entries(proxy)
        response = post(proxy, api, fault.marker, stream=stream)
        status, error = failure_of(api, response)
        assert status == (200 if stream and fault.streams_first else fault.status), (status, error)
        side = 0 if api == "messages" else 1
        if fault.kind:
            assert error_kind(api, error) == fault.kind[side], error
        if fault.type:
            assert error["type"] == fault.type[side], error
        assert fault.message in error["message"], error
        if fault.retry_after:
            assert int(response.headers["Retry-After"]) >= 1
        assert cache_entries(proxy) == entries, "a failed turn must not be cached"
        if fault.after == "restarted":
            assert_recovers(proxy, api, stream, before["restarts"])
        else:
            after = instance(proxy)
            assert (after["state"], after["restarts"]) == ("ready", before["restarts"])
        assert_settled(proxy)

    on_every_api(check)


def test_a_429_from_upstream_mid_stream_ends_the_stream_with_a_rate_limit_event(proxies):
    def check(api: str) -> None:
        proxy = proxies[api]
        entries = cache_entries(proxy)
        response = post(proxy, api, "FAULT-QUOTA-LATE", stream=True)
        status, error = failure_of(api, response)
        assert status == 200
        assert stream_text(api, parse_sse(response.text)), "the text before the failure was streamed"
        assert error_kind(api, error) == RATE_LIMITED[api], error
        assert cache_entries(proxy) == entries, "a half-written turn must not be cached"
        assert_settled(proxy)

    on_every_api(check)


def test_a_slow_first_token_keeps_the_stream_open(proxies):
    """Every API waits for a late first token; Anthropic's stream sends `ping` while it waits."""
    proxy = proxies["slow"]
    markers = {"chat": "FAULT-SLOW-FIRST", "responses": "FAULT-SLOW-FIRST", "messages": "FAULT-SLOW-FIRST-PING"}
    with ThreadPoolExecutor(len(APIS)) as pool:
        futures = {api: pool.submit(post, proxy, api, markers[api], True, 60) for api in APIS}
        responses = {api: future.result() for api, future in futures.items()}
    for api, response in responses.items():
        assert answer_text(api, response, stream=True) == "Worth the wait.", api
    names = [name for name, _ in parse_sse(responses["messages"].text)]
    assert "ping" in names and names.index("ping") < names.index("content_block_delta"), names
    assert_settled(proxy)


@pytest.mark.parametrize("stream", MODES)
def test_logged_out_mid_run_is_a_503_that_says_how_to_log_in(proxies, stream):
    """The first case logs the simulator out; from then on the instance is logged out, still never a 401."""

    def check(api: str) -> None:
        proxy = proxies[api]
        error = assert_error_response(api, post(proxy, api, "FAULT-LOGGED-OUT", stream=stream), 503)
        assert LOGIN_HINT in error["message"], error
        assert error["type"] == ("overloaded_error" if api == "messages" else "server_error"), error
        assert_settled(proxy)

    on_every_api(check)


def test_after_a_logout_the_instance_reports_it_and_every_request_gets_the_login_hint(proxies):
    def check(api: str) -> None:
        proxy = proxies[api]
        wait_for(lambda: instance(proxy)["state"] == "logged_out", "the health check to notice the logout")
        assert httpx.get(f"{proxy.url}/healthz", timeout=5).status_code == 503
        error = assert_error_response(api, post(proxy, api, "an ordinary question"), 503)
        assert LOGIN_HINT in error["message"], error
        if api != "messages":
            assert error["code"] == "not_logged_in", error
        assert_settled(proxy)

    on_every_api(check)
