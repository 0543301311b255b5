"""/metrics (docs/features.md §8): parsed with prometheus-client's own parser, the counters move as they should."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import scenario_proxy
from .ops_support import assert_error_response, post, sample, scrape

pytestmark = pytest.mark.timeout(60)

FAMILIES = {
    "lingma_proxy_requests": "counter",
    "lingma_proxy_first_token_seconds": "histogram",
    "lingma_proxy_completion_seconds": "histogram",
    "lingma_proxy_prompt_tokens": "counter",
    "lingma_proxy_completion_tokens": "counter",
    "lingma_proxy_upstream_prompt_tokens": "counter",
    "lingma_proxy_in_flight": "gauge",
    "lingma_proxy_queue_rejections": "counter",
    "lingma_proxy_instance_state": "gauge",
    "lingma_proxy_instance_restarts": "counter",
    "lingma_proxy_instance_in_flight": "gauge",
    "lingma_proxy_logins": "counter",
    "lingma_proxy_session_cache_entries": "gauge",
    "lingma_proxy_session_cache_hits": "counter",
    "lingma_proxy_session_cache_misses": "counter",
    "lingma_proxy_session_cache_evictions": "counter",
    "lingma_proxy_tool_parse_failures": "counter",
    "lingma_proxy_tool_repairs": "counter",
    "lingma_proxy_upstream_rpc_errors": "counter",
    "lingma_proxy_client_disconnects": "counter",
}
CHAT = "/v1/chat/completions"


def moved(before: dict, after: dict, name: str, **labels: str) -> float:
    """How far one series moved between two scrapes."""
    return sample(after, name, **labels) - sample(before, name, **labels)


proxy = scenario_proxy("ops_slow")


def test_every_family_parses_with_its_type(proxy):
    response = httpx.get(f"{proxy.url}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    types = {family.name: family.type for family in text_string_to_metric_families(response.text)}
    assert {name: types.get(name) for name in FAMILIES} == FAMILIES


def test_requests_tokens_and_latency_move_with_each_completion(proxy):
    n = 3
    before = scrape(proxy)
    bodies = [post(proxy, "chat", f"metrics request {i}").json() for i in range(n)]
    after = scrape(proxy)
    assert moved(before, after, "lingma_proxy_requests_total", route=CHAT, protocol="openai_chat", status="200") == n
    assert moved(before, after, "lingma_proxy_prompt_tokens_total") == sum(b["usage"]["prompt_tokens"] for b in bodies)
    completion_tokens = sum(b["usage"]["completion_tokens"] for b in bodies)
    assert moved(before, after, "lingma_proxy_completion_tokens_total") == completion_tokens
    assert moved(before, after, "lingma_proxy_upstream_prompt_tokens_total") > 0
    assert moved(before, after, "lingma_proxy_first_token_seconds_count", protocol="openai_chat") == n
    assert moved(before, after, "lingma_proxy_completion_seconds_count", protocol="openai_chat") == n
    assert moved(before, after, "lingma_proxy_completion_seconds_bucket", protocol="openai_chat", le="+Inf") == n
    assert sample(after, "lingma_proxy_in_flight") == 0


@pytest.mark.parametrize(
    ("api", "route", "protocol"),
    [("messages", "/v1/messages", "anthropic"), ("responses", "/v1/responses", "openai_responses")],
)
def test_each_api_is_labelled_with_its_route_and_protocol(proxy, api, route, protocol):
    before = scrape(proxy)
    assert post(proxy, api, "labelled request", stream=True).status_code == 200
    rejected = post(proxy, api, "labelled bad request", max_tokens=-1, max_output_tokens=-1)
    assert_error_response(api, rejected, 400)
    after = scrape(proxy)
    for status in ("200", "400"):
        assert moved(before, after, "lingma_proxy_requests_total", route=route, protocol=protocol, status=status) == 1
    assert moved(before, after, "lingma_proxy_first_token_seconds_count", protocol=protocol) == 1


def test_unknown_routes_share_one_label(proxy):
    before = scrape(proxy)
    for path in ("/v1/nope", "/random/a", "/random/b"):
        assert httpx.get(f"{proxy.url}{path}", timeout=5).status_code == 404
    after = scrape(proxy)
    assert moved(before, after, "lingma_proxy_requests_total", route="unmatched", protocol="ops", status="404") == 3
    assert not any(dict(key[1]).get("route", "").startswith("/random") for key in after)


def test_a_continued_conversation_is_a_session_cache_hit(proxy):
    first = [{"role": "user", "content": "metrics session turn one"}]
    reply = post(proxy, "chat", "", messages=first).json()["choices"][0]["message"]["content"]
    before = scrape(proxy)
    second = first + [{"role": "assistant", "content": reply}, {"role": "user", "content": "metrics session turn two"}]
    assert post(proxy, "chat", "", messages=second).status_code == 200
    after = scrape(proxy)
    assert moved(before, after, "lingma_proxy_session_cache_hits_total") == 1
    assert sample(after, "lingma_proxy_session_cache_entries") >= 1
    for name in ("misses", "evictions"):
        assert (f"lingma_proxy_session_cache_{name}_total", frozenset()) in after


def test_the_instance_gauges_show_one_ready_instance(proxy):
    metrics = scrape(proxy)
    states = {
        dict(labels)["state"]: value for (name, labels), value in metrics.items() if name == "lingma_proxy_instance_state"
    }
    assert states["ready"] == 1
    assert sum(states.values()) == 1
    assert sample(metrics, "lingma_proxy_instance_restarts_total", instance="default-0") == 0
    assert sample(metrics, "lingma_proxy_instance_in_flight", instance="default-0") == 0


def test_an_rpc_error_is_counted_by_method(proxy):
    before = scrape(proxy)
    failed = post(proxy, "chat", "RPC-FAIL please")
    assert_error_response("chat", failed, 502)
    after = scrape(proxy)
    assert moved(before, after, "lingma_proxy_upstream_rpc_errors_total", method="chat/ask") == 1
    assert sample(after, "lingma_proxy_requests_total", route=CHAT, protocol="openai_chat", status="502") >= 1
