"""Error statuses and bodies on both wire formats, before and after the stream started, against the real server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from harness.proxy import Proxy, start_proxy

from .conftest import scenario_config, scenario_proxy

pytestmark = pytest.mark.timeout(60)

KEY = "k1"
BODY_LIMIT = 100_000
OPENAI_AUTH = {"Authorization": f"Bearer {KEY}"}
ANTHROPIC_AUTH = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}


def user_says(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


# endpoint name → (path, auth headers, a valid body for `text`)
ENDPOINTS = {
    "chat": ("/v1/chat/completions", OPENAI_AUTH, lambda text: {"model": "auto", "messages": user_says(text)}),
    "responses": ("/v1/responses", OPENAI_AUTH, lambda text: {"model": "auto", "input": text}),
    "messages": ("/v1/messages", ANTHROPIC_AUTH,
                 lambda text: {"model": "auto", "max_tokens": 256, "messages": user_says(text)}),
}
ALL = sorted(ENDPOINTS)


errors_proxy = scenario_proxy("api_errors", {"auth": {"api_keys": [KEY]}, "limits": {"max_body_bytes": BODY_LIMIT}})


@pytest.fixture(scope="module")
def logged_out_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    config = {"auth": {"api_keys": [KEY]}, "lingma": {"simulator": {"start_logged_out": True}}}
    proxy = start_proxy(Path(tmp_path_factory.mktemp("logged_out")), config, wait_ready=False)
    wait_for_instance_state(proxy, "logged_out")
    yield proxy
    proxy.stop()


def wait_for_instance_state(proxy: Proxy, state: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        try:
            seen = [inst["state"] for inst in proxy.health()["instances"]]
        except (httpx.HTTPError, ValueError):
            seen = None
        if seen and all(s == state for s in seen):
            return
        time.sleep(0.1)
    raise TimeoutError(f"instances never reached {state}: {seen}\n{proxy.log_text()[-3000:]}")


def post(proxy: Proxy, endpoint: str, *, body=None, content: bytes | None = None, headers=None) -> httpx.Response:
    path, auth, _ = ENDPOINTS[endpoint]
    kwargs = {"content": content} if content is not None else {"json": body}
    return httpx.post(f"{proxy.url}{path}", headers=auth if headers is None else headers, timeout=30, **kwargs)


def valid_body(endpoint: str, text: str, **extra) -> dict:
    return ENDPOINTS[endpoint][2](text) | extra


def assert_error_shape(response: httpx.Response, endpoint: str, status: int, error_type: str | None = None) -> dict:
    """The vendor's error envelope; returns the inner error object."""
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    if endpoint == "messages":
        assert set(body) == {"type", "error", "request_id"} and body["type"] == "error"
        assert body["request_id"] == response.headers["x-request-id"]
        assert set(body["error"]) == {"type", "message"}
    else:
        assert set(body) == {"error"}
        assert set(body["error"]) == {"message", "type", "param", "code"}
    error = body["error"]
    assert isinstance(error["message"], str) and error["message"]
    if error_type is not None:
        assert error["type"] == error_type
    return error


# ---- 400 --------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ALL)
def test_invalid_json_is_400(errors_proxy, endpoint):
    response = post(errors_proxy, endpoint, content=b'{"model": "auto", "messages": [')
    assert_error_shape(response, endpoint, 400, "invalid_request_error")
    assert_error_shape(post(errors_proxy, endpoint, content=b"[1, 2]"), endpoint, 400, "invalid_request_error")


@pytest.mark.parametrize("endpoint", ALL)
def test_missing_model_is_400(errors_proxy, endpoint):
    body = valid_body(endpoint, "all good")
    del body["model"]
    error = assert_error_shape(post(errors_proxy, endpoint, body=body), endpoint, 400, "invalid_request_error")
    assert "model" in error["message"]
    if endpoint != "messages":
        assert error["param"] == "model"


@pytest.mark.parametrize(
    ("endpoint", "field", "value"),
    [
        ("chat", "messages", None),
        ("chat", "messages", []),
        ("messages", "messages", None),
        ("messages", "messages", []),
        ("responses", "input", None),
        ("responses", "input", []),
    ],
    ids=["chat-missing", "chat-empty", "anthropic-missing", "anthropic-empty", "responses-missing", "responses-empty"],
)
def test_missing_or_empty_messages_is_400(errors_proxy, endpoint, field, value):
    body = valid_body(endpoint, "all good")
    if value is None:
        del body[field]
    else:
        body[field] = value
    error = assert_error_shape(post(errors_proxy, endpoint, body=body), endpoint, 400, "invalid_request_error")
    assert field in error["message"]
    if endpoint != "messages":
        assert error["param"] == field


@pytest.mark.parametrize(
    ("endpoint", "override"),
    [
        ("chat", {"messages": "hello"}),
        ("chat", {"model": 42}),
        ("chat", {"max_tokens": "ten"}),
        ("chat", {"stream": "yes"}),
        ("chat", {"messages": [{"role": "user", "content": 7}]}),
        ("responses", {"input": 12}),
        ("responses", {"max_output_tokens": "many"}),
        ("messages", {"messages": {"role": "user", "content": "hi"}}),
        ("messages", {"max_tokens": "ten"}),
        ("messages", {"temperature": "hot"}),
        ("messages", {"system": 5}),
    ],
    ids=lambda value: value if isinstance(value, str) else next(iter(value)),
)
def test_wrong_types_are_400(errors_proxy, endpoint, override):
    body = valid_body(endpoint, "all good") | override
    assert_error_shape(post(errors_proxy, endpoint, body=body), endpoint, 400, "invalid_request_error")


# ---- 401, 404, 413 ------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ALL)
def test_bad_or_missing_key_is_401(errors_proxy, endpoint):
    expected_type = "authentication_error" if endpoint == "messages" else "invalid_request_error"
    body = valid_body(endpoint, "all good")
    if endpoint == "messages":
        wrong = {"x-api-key": "wrong", "anthropic-version": "2023-06-01"}
    else:
        wrong = {"Authorization": "Bearer wrong"}
    for headers in (wrong, {}):
        response = post(errors_proxy, endpoint, body=body, headers=headers)
        error = assert_error_shape(response, endpoint, 401, expected_type)
        if endpoint != "messages":
            assert error["code"] == "invalid_api_key"


def test_anthropic_sdk_sees_authentication_error(errors_proxy):
    sdk = anthropic.Anthropic(base_url=errors_proxy.url, api_key="wrong", max_retries=0, timeout=10)
    with pytest.raises(anthropic.AuthenticationError):
        sdk.messages.create(model="auto", max_tokens=16, messages=[{"role": "user", "content": "all good"}])


def test_unknown_route_is_404_in_both_formats(errors_proxy):
    plain = httpx.get(f"{errors_proxy.url}/v1/does-not-exist", headers=OPENAI_AUTH, timeout=10)
    assert_error_shape(plain, "chat", 404, "invalid_request_error")
    vendor = httpx.post(f"{errors_proxy.url}/v1/does-not-exist", headers=ANTHROPIC_AUTH, json={}, timeout=10)
    assert_error_shape(vendor, "messages", 404, "not_found_error")


@pytest.mark.parametrize("endpoint", ALL)
def test_body_over_the_limit_is_413(errors_proxy, endpoint):
    body = valid_body(endpoint, "x" * (BODY_LIMIT + 1000))
    expected_type = "request_too_large" if endpoint == "messages" else "invalid_request_error"
    error = assert_error_shape(post(errors_proxy, endpoint, body=body), endpoint, 413, expected_type)
    assert str(BODY_LIMIT) in error["message"]


# ---- upstream failures before the first token: a real status ------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
@pytest.mark.parametrize("endpoint", ALL)
def test_upstream_rpc_error_is_502(errors_proxy, endpoint, stream):
    expected_type = "api_error" if endpoint == "messages" else "server_error"
    response = post(errors_proxy, endpoint, body=valid_body(endpoint, "upstream plan failure", stream=stream))
    error = assert_error_shape(response, endpoint, 502, expected_type)
    assert "plan info" in error["message"]


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
@pytest.mark.parametrize("endpoint", ALL)
def test_no_logged_in_instance_is_503_with_login_advice(logged_out_proxy, endpoint, stream):
    response = post(logged_out_proxy, endpoint, body=valid_body(endpoint, "all good", stream=stream))
    expected_type = "overloaded_error" if endpoint == "messages" else "server_error"
    error = assert_error_shape(response, endpoint, 503, expected_type)
    assert "python lingma_proxy.py login" in error["message"]


def test_count_tokens_needs_no_logged_in_instance(logged_out_proxy):
    response = httpx.post(
        f"{logged_out_proxy.url}/v1/messages/count_tokens",
        json={"model": "auto", "messages": [{"role": "user", "content": "count me"}]},
        headers=ANTHROPIC_AUTH,
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json()["input_tokens"] > 0


# ---- failures after the stream started ----------------------------------------------------------


def sse_events(text: str) -> list[tuple[str | None, str]]:
    events = []
    for frame in text.split("\n\n"):
        lines = frame.split("\n")
        name = next((line[7:] for line in lines if line.startswith("event: ")), None)
        data = "\n".join(line[6:] for line in lines if line.startswith("data: "))
        if data:
            events.append((name, data))
    return events


def test_chat_mid_stream_failure_is_an_error_chunk_without_done(errors_proxy):
    response = post(errors_proxy, "chat", body=valid_body("chat", "fail midway", stream=True))
    assert response.status_code == 200
    events = sse_events(response.text)
    assert all(data != "[DONE]" for _, data in events)
    last = json.loads(events[-1][1])
    assert set(last) == {"error"}
    assert last["error"]["message"] and last["error"]["type"] == "server_error"
    assert any(json.loads(data)["choices"][0]["delta"].get("content") for _, data in events[:-1])

    sdk = openai.OpenAI(base_url=f"{errors_proxy.url}/v1", api_key=KEY, max_retries=0, timeout=30)
    with pytest.raises(openai.APIError):
        for _ in sdk.chat.completions.create(model="auto", messages=user_says("fail midway"), stream=True):
            pass
    assert_still_serving(errors_proxy)


def test_anthropic_mid_stream_failure_is_an_error_event(errors_proxy):
    response = post(errors_proxy, "messages", body=valid_body("messages", "fail midway", stream=True))
    assert response.status_code == 200
    events = sse_events(response.text)
    name, data = events[-1]
    assert name == "error"
    payload = json.loads(data)
    assert payload["type"] == "error" and payload["error"]["type"] == "api_error" and payload["error"]["message"]
    assert "message_stop" not in [n for n, _ in events]

    sdk = anthropic.Anthropic(base_url=errors_proxy.url, api_key=KEY, max_retries=0, timeout=30)
    with pytest.raises(anthropic.APIStatusError):
        with sdk.messages.stream(model="auto", max_tokens=256, messages=user_says("fail midway")) as stream:
            stream.get_final_message()
    assert_still_serving(errors_proxy)


def test_responses_mid_stream_failure_is_response_failed(errors_proxy):
    response = post(errors_proxy, "responses", body=valid_body("responses", "fail midway", stream=True))
    assert response.status_code == 200
    events = sse_events(response.text)
    name, data = events[-1]
    assert name == "response.failed"
    failed = json.loads(data)["response"]
    assert failed["status"] == "failed" and failed["error"]["message"]
    assert "response.completed" not in [n for n, _ in events]
    assert_still_serving(errors_proxy)


@pytest.mark.parametrize("endpoint", ALL)
def test_failure_without_streaming_is_a_502_body(errors_proxy, endpoint):
    expected_type = "api_error" if endpoint == "messages" else "server_error"
    response = post(errors_proxy, endpoint, body=valid_body(endpoint, "fail midway"))
    assert_error_shape(response, endpoint, 502, expected_type)


def assert_still_serving(proxy: Proxy) -> None:
    response = post(proxy, "chat", body=valid_body("chat", "all good"))
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "All good here."
    assert proxy.health()["pool_ready"] == 1


# ---- a crash mid-stream: clean error, then a restarted instance serves again ---------------------


def test_crash_mid_stream_is_a_clean_error_and_the_instance_comes_back(make_proxy):
    proxy = make_proxy(scenario_config("api_errors"))
    restarts_before = proxy.health()["instances"][0]["restarts"]

    response = httpx.post(
        f"{proxy.url}/v1/chat/completions",
        json={"model": "auto", "stream": True, "messages": [{"role": "user", "content": "crash now"}]},
        timeout=30,
    )
    # The crash resets the connection, so the deltas sent just before it may be lost in the kernel:
    # then the failure precedes the first token and gets a real status instead of an error chunk.
    if response.status_code == 200:
        events = sse_events(response.text)
        assert all(data != "[DONE]" for _, data in events)
        error = json.loads(events[-1][1])["error"]
    else:
        error = assert_error_shape(response, "chat", 502, "server_error")
    assert error["code"] == "upstream_crashed"

    wait_for_restart(proxy, restarts_before)
    ok = httpx.post(
        f"{proxy.url}/v1/messages",
        json={"model": "auto", "max_tokens": 256, "messages": [{"role": "user", "content": "all good"}]},
        timeout=30,
    )
    assert ok.status_code == 200
    assert ok.json()["content"][0]["text"] == "All good here."


def wait_for_restart(proxy: Proxy, restarts_before: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    health: dict = {}
    while time.monotonic() < deadline:
        response = httpx.get(f"{proxy.url}/healthz", timeout=5)
        health = response.json()
        if response.status_code == 200 and health["instances"][0]["restarts"] > restarts_before:
            return
        time.sleep(0.1)
    raise TimeoutError(f"instance did not come back: {health}")
