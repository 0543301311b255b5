"""Lingma's business errors (docs/protocol.md §11.8) on every API, streamed and not, in both dialects.

One table: each simulator refusal, what the client must get, and how many asks the simulator must have
seen (a retried request is asked again with a fresh request id, before the client sees a byte).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from harness.proxy import Proxy, start_proxy

from .ops_support import APIS, body_text, error_kind, failure_of, parse_sse, post, stream_text

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("sim_dialect")]

QUEUE_NOW = '{"code":"10605","isQueued":true,"retryAfterSeconds":0,"message":"Too many users, queued"}'


# fault, rule extras, then: HTTP status (200 = answered), error code (OpenAI) / type (Anthropic), words the
# message must hold, Retry-After, and the asks the simulator sees.
CASES = {
    "queue": ({"times": 1, "message": QUEUE_NOW}, 200, None, None, None, 2),
    "queue_timeout": ({"fault": "queue", "message": QUEUE_NOW}, 429, "upstream_queue_timeout", "queue_wait_sec", "1", 3),
    "duplicate_request": ({"times": 1}, 200, None, None, None, 2),
    "quota": ({}, 429, "quota_exceeded", "quota is used up (code 112)", "30", 1),
    "daily_limit": ({}, 429, "daily_limit_exceeded", "daily usage limit is reached (code 110)", "3600", 1),
    "content_policy": ({}, 400, "content_policy", "content policy", None, 1),
}
ANTHROPIC_TYPES = {200: None, 400: "invalid_request_error", 429: "rate_limit_error"}
MODES = [pytest.param(True, id="stream"), pytest.param(False, id="non-stream")]


def marker(case: str, api: str, stream: bool) -> str:
    return f"BUSINESS-{case}-{api}-{'stream' if stream else 'plain'}"


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory, sim_dialect: str) -> Iterator[Proxy]:
    tmp = Path(tmp_path_factory.mktemp("business_errors"))
    rules = [
        {"match": marker(case, api, stream), "fault": case, **extra}
        for case, (extra, *_) in CASES.items()
        for api in APIS
        for stream in (True, False)
    ]
    scenario = tmp / "business.yaml"
    scenario.write_text(yaml.safe_dump({"rules": rules}))
    # Two pauses of 0.25 s fit in 0.5 s: the third queued answer is one too many.
    config = {"lingma": {"queue_wait_sec": 0.5, "simulator": {"scenario": str(scenario)}}}
    started = start_proxy(tmp, config, dialect=sim_dialect)
    yield started
    started.stop()


@pytest.mark.parametrize("stream", MODES)
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("case", CASES)
def test_each_business_error_becomes_its_outcome(proxy, case, api, stream):
    _, status, code, words, retry_after, asks = CASES[case]
    text = f"{marker(case, api, stream)} {uuid.uuid4()}"
    response = post(proxy, api, text, stream=stream)
    seen = [ask for ask in proxy.sim_status(0)["asks"] if marker(case, api, stream) in ask["question_head"]]
    assert len(seen) == asks, seen
    assert len({ask["requestId"] for ask in seen}) == asks  # every retry is a fresh request id
    if status == 200:
        assert response.status_code == 200, response.text[:2000]
        answer = stream_text(api, parse_sse(response.text)) if stream else body_text(api, response.json())
        assert answer.startswith("Simulated reply"), answer
        return
    got_status, error = failure_of(api, response)
    assert got_status == status, response.text[:2000]  # before the first byte: a real HTTP status
    assert error_kind(api, error) == (ANTHROPIC_TYPES[status] if api == "messages" else code), error
    assert words in error["message"], error
    assert response.headers.get("retry-after") == retry_after

