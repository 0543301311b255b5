"""HTTP/1.1 keep-alive after an early error, which llm-comply's shared client tripped over.

An error raised before the request body is read (an unknown route, a bad key) makes tornado close
the connection instead of reading the body. A response that does not say `Connection: close`
leaves a keep-alive client to send its next request into the closed connection, and that request
fails: llm-comply's compaction case (a 404) broke the two cases after it that way.
"""

from __future__ import annotations

import http.client

import pytest

from harness.proxy import Proxy

pytestmark = pytest.mark.timeout(60)
API_KEY = "keep-alive-test-key"


@pytest.fixture
def proxy(make_proxy) -> Proxy:
    return make_proxy({"auth": {"api_keys": [API_KEY]}})

BODY = b'{"model": "auto", "input": "hi"}'


@pytest.mark.parametrize(
    ("path", "key", "status"),
    [("/v1/responses/compact", API_KEY, 404), ("/v1/responses", "wrong-key", 401)],
    ids=["unknown-route", "bad-key"],
)
def test_a_connection_left_open_after_an_early_error_still_works(proxy: Proxy, path: str, key: str, status: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        connection.request("POST", path, body=BODY, headers=headers)
        first = connection.getresponse()
        first.read()
        assert first.status == status
        if first.will_close:  # announced: a client opens a new connection, as it should
            return
        connection.request("GET", "/healthz")
        second = connection.getresponse()
        assert second.status == 200
        second.read()
    finally:
        connection.close()
