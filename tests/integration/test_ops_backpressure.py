"""Backpressure and client disconnects (docs/features.md §2): 429 with Retry-After in each wire format,
per-instance limits, and every slot released, including when the client goes away mid-stream."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from harness.proxy import Proxy

from .conftest import scenario_config
from .ops_support import (
    PATHS,
    api_headers,
    assert_error_response,
    error_kind,
    module_proxies,
    parse_sse,
    post,
    request_body,
    sample,
    scrape,
    wait_for,
    wait_idle,
)

pytestmark = pytest.mark.timeout(60)

HOLD = "SLOW-HOLD"  # ~4 s; the queue timeouts below are 1 s and 2 s
RATE_LIMITED = {"chat": "rate_limit_exceeded", "responses": "rate_limit_exceeded", "messages": "rate_limit_error"}
REJECTED_CASES = [("chat", False), ("chat", True), ("responses", False), ("messages", False), ("messages", True)]


@pytest.fixture(scope="module")
def proxies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Proxy]]:
    yield from module_proxies(
        tmp_path_factory,
        {
            "global": scenario_config("ops_slow", {"limits": {"max_in_flight": 1, "queue_timeout_sec": 1}}),
            "per_instance": scenario_config(
                "ops_slow", {"limits": {"max_in_flight": 8, "max_concurrent_per_instance": 1, "queue_timeout_sec": 2}}
            ),
        },
    )


def hold_slot(proxy: Proxy, results: list) -> threading.Thread:
    """A slow request in the background; returns once it holds its slot."""
    thread = threading.Thread(target=lambda: results.append(post(proxy, "chat", f"{HOLD} {uuid.uuid4()}", stream=True)))
    thread.start()
    wait_for(lambda: proxy.health()["in_flight"] == 1, "the slow request to take its slot")
    return thread


@pytest.fixture(scope="module")
def rejections(proxies) -> dict[tuple[str, bool], httpx.Response]:
    """With max_in_flight 1 held by a slow stream, one request per case, all at once; each should wait 1 s, then 429."""
    proxy = proxies["global"]
    held: list[httpx.Response] = []
    holder = hold_slot(proxy, held)
    with ThreadPoolExecutor(len(REJECTED_CASES)) as pool:
        futures = {case: pool.submit(post, proxy, case[0], f"second request {case}", case[1]) for case in REJECTED_CASES}
        answers = {case: future.result() for case, future in futures.items()}
    holder.join(30)
    assert held and held[0].status_code == 200, "the slot holder itself must succeed"
    return answers


@pytest.mark.parametrize(("api", "stream"), REJECTED_CASES)
def test_past_the_global_limit_the_answer_is_429_with_retry_after_in_the_wire_format(rejections, api, stream):
    response = rejections[(api, stream)]
    error = assert_error_response(api, response, 429)
    assert error_kind(api, error) == RATE_LIMITED[api]
    if api != "messages":
        assert error["type"] == "requests"
    assert int(response.headers["Retry-After"]) >= 1


def test_after_the_rejections_every_slot_is_free_and_they_are_counted(proxies, rejections):
    proxy = proxies["global"]
    health = wait_idle(proxy)
    assert [inst["in_flight"] for inst in health["instances"]] == [0]
    stats = httpx.get(f"{proxy.url}/internal/stats", timeout=5).json()
    assert stats["rejections"] == len(REJECTED_CASES)
    metrics = scrape(proxy)
    assert sample(metrics, "lingma_proxy_queue_rejections_total") == len(REJECTED_CASES)
    assert sample(metrics, "lingma_proxy_in_flight") == 0
    assert post(proxy, "chat", "after the rush").status_code == 200


def test_the_per_instance_limit_is_counted_and_enforced(proxies):
    proxy = proxies["per_instance"]
    held: list[httpx.Response] = []
    holder = hold_slot(proxy, held)
    assert [inst["in_flight"] for inst in proxy.health()["instances"]] == [1]
    rejected = post(proxy, "messages", "second request on a full instance")
    holder.join(30)
    error = assert_error_response("messages", rejected, 429)
    assert error["type"] == "rate_limit_error"
    assert int(rejected.headers["Retry-After"]) >= 1
    assert held[0].status_code == 200
    assert wait_idle(proxy)["instances"][0]["in_flight"] == 0


def test_a_queued_request_gets_the_slot_when_it_frees_up(proxies):
    proxy = proxies["per_instance"]
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(post, proxy, "chat", f"BRIEF-HOLD {uuid.uuid4()}")
        wait_for(lambda: proxy.health()["in_flight"] == 1, "the first request to take the only slot")
        second = pool.submit(post, proxy, "chat", "queued behind the brief hold")
        assert first.result().status_code == 200
        assert second.result().status_code == 200
    wait_idle(proxy)
    assert proxy.sim_status()["max_active_chats"] == 1, "the simulator never ran two chats at once"


# ---- client disconnects ------------------------------------------------------------------------------


def ask_id(proxy: Proxy, marker: str) -> str:
    """The requestId the simulator received for the ask carrying `marker`."""
    asks = [ask for ask in proxy.sim_status()["asks"] if marker in ask["question_head"]]
    assert len(asks) == 1, asks
    return asks[0]["requestId"]


def abandon_stream(proxy: Proxy, api: str, marker: str) -> None:
    """Open a stream, read until two text events arrived, then hang up."""
    with httpx.Client(timeout=10) as client:
        body = request_body(api, marker, stream=True)
        with client.stream("POST", f"{proxy.url}{PATHS[api]}", json=body, headers=api_headers(api)) as response:
            assert response.status_code == 200
            seen = ""
            for chunk in response.iter_text():
                seen += chunk
                if seen.count("\n\n") >= 4:
                    break
    assert parse_sse(seen[: seen.rindex("\n\n") + 2]), seen


def abandon_non_stream(proxy: Proxy, api: str, marker: str) -> None:
    """Wait a little for a non-stream answer, then give up (as a client timeout does)."""
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{proxy.url}{PATHS[api]}", json=request_body(api, marker), headers=api_headers(api), timeout=1.0)


@pytest.mark.parametrize(
    ("api", "abandon"),
    [("chat", abandon_stream), ("responses", abandon_stream), ("messages", abandon_stream), ("chat", abandon_non_stream)],
    ids=["chat-stream", "responses-stream", "messages-stream", "chat-non-stream"],
)
def test_a_client_that_goes_away_stops_the_upstream_chat_and_frees_its_slot(proxies, api, abandon):
    proxy = proxies["global"]
    before = scrape(proxy)
    marker = f"DISCONNECT-ME {uuid.uuid4()}"
    abandon(proxy, api, marker)
    request_id = ask_id(proxy, marker)
    wait_for(lambda: request_id in proxy.sim_status()["stops"], "chat/stop for the abandoned request", timeout=5)
    wait_for(lambda: proxy.sim_status()["active_chats"] == 0, "the simulator to end the stopped chat", timeout=5)
    assert wait_idle(proxy, timeout=5)["instances"][0]["in_flight"] == 0
    after = scrape(proxy)
    disconnects = "lingma_proxy_client_disconnects_total"
    assert sample(after, disconnects) == sample(before, disconnects) + 1
    assert post(proxy, "chat", "still serving after the disconnect").status_code == 200
