"""Hostile input: every malformed, oversized or odd request gets a clean answer in the endpoint's
wire format (a 4xx, or a 200 where the input is odd but valid), never a 5xx, and never a traceback in the log."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from harness.proxy import Proxy

from .conftest import module_proxy
from .ops_support import APIS, PATHS, api_headers, assert_no_traceback, error_of, request_body, wait_idle

pytestmark = pytest.mark.timeout(60)

MILLION = 1_000_000
MAX_TOKENS_FIELD = {"chat": "max_tokens", "responses": "max_output_tokens", "messages": "max_tokens"}
CONVERSATION_FIELD = {"chat": "messages", "responses": "input", "messages": "messages"}


RING_TOKEN = "hostile-input-admin-token"


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    config = {"auth": {"admin_token": RING_TOKEN}, "debug": {"request_ring": True}}
    yield from module_proxy(tmp_path_factory, "hostile", config)


Builder = Callable[[str], tuple[bytes, str]]  # api -> (body bytes, content type)


def valid(api: str) -> dict:
    return request_body(api, "hostile input probe")


def raw(content: bytes | str, content_type: str = "application/json") -> Builder:
    data = content.encode() if isinstance(content, str) else content
    return lambda api: (data, content_type)


def as_json(build: Callable[[str], dict], content_type: str = "application/json") -> Builder:
    # ensure_ascii keeps lone surrogates as \ud800 escapes, exactly as a hostile client would send them
    return lambda api: (json.dumps(build(api)).encode(), content_type)


def field(name: str, value: Any) -> Builder:
    """A valid body with `name` set to `value`."""
    return as_json(lambda api: {**valid(api), name: value})


def max_tokens(value: Any) -> Builder:
    return as_json(lambda api: {**valid(api), MAX_TOKENS_FIELD[api]: value})


def turns(value: Any) -> Builder:
    """A valid body whose conversation (messages, or Responses' input) is `value`."""
    return as_json(lambda api: {**valid(api), CONVERSATION_FIELD[api]: value})


def user_says(content: Any) -> Builder:
    return turns([{"role": "user", "content": content}])


def nested_under_unknown_key(depth: int) -> Builder:
    """A valid body plus an extension field nested `depth` deep: within what the JSON parser accepts."""

    def build(api: str) -> tuple[bytes, str]:
        body = json.dumps(valid(api))
        return f'{body[:-1]}, "x_nested": {"[" * depth}{"]" * depth}}}'.encode(), "application/json"

    return build


def case(build: Builder, allowed: set[int], name: str) -> Any:
    return pytest.param(build, allowed, id=name)


CLEAN_4XX = {400}
ODD_BUT_VALID = {200, 400}
NAN_BODY = (
    '{"model": "auto", "temperature": NaN, "max_tokens": 5, "max_output_tokens": 5,'
    ' "messages": [{"role": "user", "content": "x"}], "input": "x"}'
)
MULTIPART = b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\nb\r\n--x--"
CASES = [
    case(raw(b'{"model": "auto", "messages": [{"role": "user", "content": "\xff\xfe\xc3"}]}'), CLEAN_4XX, "invalid-utf8"),
    case(raw("[" * 100_000 + "]" * 100_000), CLEAN_4XX, "nested-100k-deep"),
    case(raw('{"model": "auto", "messages": ' + "[" * 100_000), CLEAN_4XX, "nested-100k-unclosed"),
    case(nested_under_unknown_key(1000), ODD_BUT_VALID, "nested-1000-deep-in-an-extension-field"),
    case(turns([1] * MILLION), CLEAN_4XX, "a-million-numbers-as-messages"),
    case(turns([{}] * MILLION), CLEAN_4XX, "a-million-empty-messages"),
    case(raw(b""), CLEAN_4XX, "empty-body"),
    case(raw(b"  \r\n "), CLEAN_4XX, "whitespace-body"),
    case(raw(b"[]"), CLEAN_4XX, "array-body"),
    case(raw(b'"just a string"'), CLEAN_4XX, "string-body"),
    case(raw(b"{"), CLEAN_4XX, "truncated-json"),
    case(as_json(valid, "text/plain"), {200}, "json-sent-as-text-plain"),
    case(raw("model=auto&messages=hello", "application/x-www-form-urlencoded"), CLEAN_4XX, "form-encoded"),
    case(raw(MULTIPART, "multipart/form-data; boundary=x"), CLEAN_4XX, "multipart"),
    case(field("model", "m" * 10_240), {200, 400, 404}, "model-of-10kb"),  # unknown models map to the default
    case(field("model", ["auto"]), CLEAN_4XX, "model-not-a-string"),
    case(user_says("a\x00b\x01c\x1f\x7fd\u2028e"), ODD_BUT_VALID, "control-characters"),
    case(user_says("lone \ud800 surrogate"), ODD_BUT_VALID, "lone-surrogate"),
    case(max_tokens(-1), CLEAN_4XX, "negative-max-tokens"),
    case(max_tokens(0), CLEAN_4XX, "zero-max-tokens"),
    case(max_tokens(2**31), ODD_BUT_VALID, "huge-max-tokens"),
    case(max_tokens(10**30), ODD_BUT_VALID, "max-tokens-past-int64"),
    case(max_tokens("10"), CLEAN_4XX, "max-tokens-as-a-string"),
    case(raw(NAN_BODY), CLEAN_4XX, "nan-temperature"),
    case(turns([{"role": "wizard", "content": "hi"}]), CLEAN_4XX, "unknown-role"),
    case(turns(42), CLEAN_4XX, "conversation-not-a-list"),
    case(user_says(42), CLEAN_4XX, "content-not-text"),
    case(field("stream", "true"), CLEAN_4XX, "stream-as-a-string"),
]


def send(proxy: Proxy, api: str, content: bytes, content_type: str) -> httpx.Response:
    headers = {**api_headers(api), "Content-Type": content_type}
    return httpx.post(f"{proxy.url}{PATHS[api]}", content=content, headers=headers, timeout=60)


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(("build", "allowed"), CASES)
def test_hostile_input_gets_a_clean_answer(proxy, api, build, allowed):
    log_offset = len(proxy.log_text())
    content, content_type = build(api)
    response = send(proxy, api, content, content_type)
    assert response.status_code in allowed, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json")
    if response.status_code >= 400:
        error = error_of(api, response.json())
        assert len(error["message"]) < 2000, "an error message must not echo a huge input back"
        assert error["type"] == "invalid_request_error", error
    assert_no_traceback(proxy, log_offset)


@pytest.mark.parametrize("api", APIS)
def test_a_body_over_the_limit_is_a_413_in_the_wire_format(proxy, api):
    log_offset = len(proxy.log_text())
    body = json.dumps(valid(api)).encode()
    content = body[:-1] + b', "padding": "' + b"x" * (20 * 1024 * 1024) + b'"}'
    response = send(proxy, api, content, "application/json")
    assert response.status_code == 413, response.text[:500]
    error = error_of(api, response.json())
    assert error["type"] == ("request_too_large" if api == "messages" else "invalid_request_error"), error
    assert_no_traceback(proxy, log_offset)


def test_after_the_hostile_input_the_proxy_is_idle_and_its_diagnostics_still_answer(proxy):
    """Hostile bodies sit in the debug ring; reading the ring must still work."""
    log_offset = len(proxy.log_text())
    assert wait_idle(proxy)["ok"] is True
    ring = httpx.get(
        f"{proxy.url}/internal/debug/requests?limit=100", headers={"Authorization": f"Bearer {RING_TOKEN}"}, timeout=30
    )
    assert ring.status_code == 200, ring.text[:500]
    assert ring.json()["requests"]
    assert httpx.post(f"{proxy.url}{PATHS['chat']}", json=valid("chat"), timeout=30).status_code == 200
    assert_no_traceback(proxy, log_offset)
