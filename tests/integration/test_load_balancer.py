"""The README's load balancer examples, as shipped in examples/, in front of two real proxies.

Two proxies (simulator upstream, API keys, on 127.0.0.1) stand behind a real nginx or HAProxy running
examples/nginx.conf or examples/haproxy.cfg with only the addresses replaced (balancer_harness.py).
Which backend served a turn, and whether it reused the conversation's session, is read off the
backends' own /internal/stats: each turn moves exactly one backend's hit or miss counter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from harness.proxy import Proxy, deep_merge, free_port, start_proxy, wait_until_ready

from .balancer_harness import Balancer, haproxy_servers, missing_binary, start_balancer
from .conftest import scenario_config
from .ops_support import module_proxies, parse_sse, stream_text, wait_for

KEY = "lb-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
# What the README asks of each backend behind a balancer: API keys. The scenario gives a paced stream.
BACKEND_CONFIG = scenario_config("ops_slow", {"auth": {"api_keys": [KEY]}})
PACED = "BRIEF-HOLD"  # ops_slow.yaml: "A short hold." in 4 pieces, 150 ms apart


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Proxy]]:
    for pair in module_proxies(tmp_path_factory, {"a": BACKEND_CONFIG, "b": BACKEND_CONFIG}):
        yield list(pair.values())


def require(kind: str) -> None:
    reason = missing_binary(kind)
    if reason:
        pytest.skip(reason)


def wait_checked(balancer: Balancer, states: dict[str, str]) -> None:
    """HAProxy's health checks have reached `states` (server name -> UP or DOWN); nginx has none."""
    if balancer.kind == "haproxy":
        wait_for(
            lambda: {name: row["status"] for name, row in haproxy_servers(balancer).items()} == states,
            f"HAProxy's health checks to report {states}",
        )


@pytest.fixture(scope="module", params=["nginx", "haproxy"])
def balancer(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Balancer]:
    require(request.param)  # before the backends start: a skip costs nothing
    backends = request.getfixturevalue("backends")
    started = start_balancer(request.param, tmp_path_factory.mktemp(request.param), [b.port for b in backends])
    try:
        wait_checked(started, {"p1": "UP", "p2": "UP"})
        if started.kind == "haproxy":  # the checks themselves pass: /healthz accepts the Host they send
            assert {row["check_status"] for row in haproxy_servers(started).values()} == {"L7OK"}
        yield started
    finally:
        started.stop()


# ---- which backend served a turn ---------------------------------------------------------------------


def cache_counters(backend: Proxy) -> tuple[int, int]:
    """(hits, misses) of the backend's session cache; /internal/stats takes an API key (no admin token)."""
    response = httpx.get(f"{backend.url}/internal/stats", headers=AUTH, timeout=5)
    response.raise_for_status()
    cache = response.json()["session_cache"]
    return cache["hits"], cache["misses"]


def served(backends: list[Proxy], call: Callable[[], Any]) -> tuple[Any, int, str]:
    """Run one turn: its result, the index of the backend that answered, and "hit" or "miss"."""
    before = [cache_counters(b) for b in backends]
    result = call()
    after = [cache_counters(b) for b in backends]
    changed = [i for i, counters in enumerate(after) if counters != before[i]]
    assert len(changed) == 1 and sum(after[changed[0]]) == sum(before[changed[0]]) + 1, (before, after)
    (i,) = changed
    return result, i, "hit" if after[i][0] > before[i][0] else "miss"


def openai_client(balancer: Balancer, headers: dict[str, str] | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{balancer.url}/v1", api_key=KEY, default_headers=headers, max_retries=0)


def chat_turn(client: openai.OpenAI, messages: list[dict], text: str) -> str:
    messages.append({"role": "user", "content": text})
    reply = client.chat.completions.create(model="auto", messages=messages).choices[0].message
    messages.append({"role": "assistant", "content": reply.content})
    return reply.content or ""


def claude_turn(client: anthropic.Anthropic, messages: list[dict], text: str) -> str:
    messages.append({"role": "user", "content": text})
    reply = client.messages.create(model="auto", max_tokens=256, messages=messages)
    messages.append({"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in reply.content]})
    return "".join(block.text for block in reply.content if block.type == "text")


# ---- the tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["x-session-affinity", "X-Claude-Code-Session-Id", "Session-Id"])
def test_an_affinity_header_keeps_a_conversation_on_one_backend_which_reuses_its_session(balancer, backends, header):
    headers = {header: f"{balancer.kind}-{header}-conversation"}
    if header == "X-Claude-Code-Session-Id":  # as Claude Code sends it: the Anthropic API, with x-api-key
        client = anthropic.Anthropic(base_url=balancer.url, api_key=KEY, default_headers=headers, max_retries=0)
        turn = partial(claude_turn, client)
    else:
        turn = partial(chat_turn, openai_client(balancer, headers))
    messages: list[dict] = []
    turns = [served(backends, lambda n=n: turn(messages, f"my name is Ada, turn {n}")) for n in range(3)]
    turns.append(served(backends, lambda: turn(messages, "what is my name?")))
    assert turns[-1][0] == "Your name is Ada."
    backend = turns[0][1]
    assert [(b, kind) for _, b, kind in turns] == [(backend, "miss")] + [(backend, "hit")] * 3


def test_without_affinity_a_conversation_that_moves_is_answered_by_a_full_resend(balancer, backends):
    client = openai_client(balancer)
    messages: list[dict] = []
    name = f"Grace{balancer.kind}"
    turns = [served(backends, lambda: chat_turn(client, messages, f"my name is {name}"))]
    moves: list[int] = []  # the turns that landed on another backend than the turn before
    while len(moves) < 2 and len(turns) < 12:  # there and back again
        turns.append(served(backends, lambda: chat_turn(client, messages, "what is my name?")))
        moves += [len(turns) - 1] if turns[-1][1] != turns[-2][1] else []
    where = [backend for _, backend, _ in turns]
    assert len(moves) == 2, f"the balancer should spread requests without affinity: {where}"
    assert [answer for answer, _, _ in turns[1:]] == [f"Your name is {name}."] * (len(turns) - 1)
    assert turns[moves[0]][2] == "miss", where  # a backend that never saw the conversation: a full resend


def test_a_stream_passes_through_event_by_event(balancer, backends):
    body = {"model": "auto", "stream": True, "messages": [{"role": "user", "content": f"{PACED} {balancer.kind}"}]}
    received = ""
    text_after_each_read: list[str] = []
    in_flight_at_first_text = None
    with httpx.stream("POST", f"{balancer.url}/v1/chat/completions", json=body, headers=AUTH, timeout=30) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        for chunk in response.iter_raw():
            received += chunk.decode()
            text_after_each_read.append(stream_text("chat", parse_sse(received)))
            if in_flight_at_first_text is None and text_after_each_read[-1]:
                # A buffering balancer hands nothing on before the backend has finished the stream.
                in_flight_at_first_text = sum(b.health()["in_flight"] for b in backends)
    assert text_after_each_read[-1] == "A short hold."
    assert in_flight_at_first_text == 1, "the first text arrived only after the backend had finished"
    assert len(set(text_after_each_read) - {""}) > 1, f"all the text came in one read: {text_after_each_read}"


def test_the_balancers_name_reaches_the_backends_as_loopback_and_a_cross_site_page_is_still_refused(
    balancer, backends
):
    body = {"model": "auto", "messages": [{"role": "user", "content": f"where-from {balancer.kind}"}]}
    # The backends answer only to a loopback Host: this succeeds only because the balancer sets one.
    named = httpx.post(
        f"{balancer.url}/v1/chat/completions", json=body, headers={**AUTH, "Host": "llm.example.com"}, timeout=30
    )
    assert named.status_code == 200, named.text
    # The Origin passes through untouched, so the backends' browser check still holds behind the balancer.
    cross_site = {**AUTH, "Host": "llm.example.com", "Origin": "https://elsewhere.example"}
    refused = httpx.post(f"{balancer.url}/v1/chat/completions", json=body, headers=cross_site, timeout=30)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden_origin", refused.text


@pytest.fixture(scope="module")
def logged_out_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    """A backend with no logged-in instance: /healthz and the API answer 503."""
    config = deep_merge(BACKEND_CONFIG, {"lingma": {"simulator": {"start_logged_out": True}}})
    proxy = start_proxy(Path(tmp_path_factory.mktemp("logged_out")), config, wait_ready=False)
    try:
        wait_until_ready(proxy, status=503)
        wait_for(lambda: proxy.health()["instances"][0]["state"] == "logged_out", "the backend to report its logout")
        yield proxy
    finally:
        proxy.stop()


@pytest.mark.parametrize("down", ["healthz 503", "dead port"])
def test_a_backend_that_is_down_is_taken_out_and_requests_succeed_on_the_other(
    balancer, backends, request, tmp_path, down
):
    down_port = request.getfixturevalue("logged_out_backend").port if down == "healthz 503" else free_port()
    live = backends[0]
    # A balancer of its own, so the module's pair stays intact for the other tests.
    degraded = start_balancer(balancer.kind, tmp_path / balancer.kind, [live.port, down_port])
    try:
        wait_checked(degraded, {"p1": "UP", "p2": "DOWN"})
        client = openai_client(degraded)
        for n in range(6):  # spread without affinity, or hashed, some would go to the backend that is down
            headers = {"x-session-affinity": f"user-{n}"} if n % 2 else {}
            call = partial(
                client.chat.completions.create,
                model="auto", messages=[{"role": "user", "content": f"still answered {n}"}], extra_headers=headers,
            )
            completion, _, _ = served([live], call)  # fails unless the live backend answered it
            assert completion.choices[0].message.content.endswith(f"still answered {n}")
    finally:
        degraded.stop()
