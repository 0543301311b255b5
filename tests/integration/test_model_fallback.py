"""lingma.fallback_models (docs/features.md §2): a model that cannot answer now hands the request to the next
one in the list, before the client sees a byte; the answer names the model that gave it.

A scenario rule with `model:` refuses only the first model, so the simulator shows which model each ask
went to.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from harness.proxy import Proxy, start_proxy

from .ops_support import APIS, body_text, error_kind, failure_of, parse_sse, post, stream_text

pytestmark = pytest.mark.timeout(60)

FIRST, SECOND, THIRD = "dashscope_qwen3_coder", "dashscope_qwen_max_latest", "dashscope_qmodel"
# What makes FIRST fail; each marker is the first model's refusal for one request.
REFUSALS = {"quota": "quota", "daily": "daily_limit", "gone": "model_unavailable", "policy": "content_policy"}
MODES = [pytest.param(True, id="stream"), pytest.param(False, id="non-stream")]


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    tmp = Path(tmp_path_factory.mktemp("fallback"))
    rules = [{"match": f"FALLBACK-{name}", "model": f"^{FIRST}$", "fault": fault} for name, fault in REFUSALS.items()]
    # Both fallbacks out of quota as well: the last failure is the client's.
    rules.append({"match": "EVERY-MODEL-OUT", "fault": "quota"})
    scenario = tmp / "fallback.yaml"
    scenario.write_text(yaml.safe_dump({"rules": rules}))
    config = {"lingma": {"fallback_models": [SECOND, "no-such-model", THIRD], "simulator": {"scenario": str(scenario)}}}
    started = start_proxy(tmp, config)
    yield started
    started.stop()


def asks_for(proxy: Proxy, text: str) -> list[str]:
    return [ask["model"] for ask in proxy.sim_status(0)["asks"] if text in ask["question_head"]]


def fallbacks(proxy: Proxy, to_model: str) -> float:
    metrics = httpx.get(f"{proxy.url}/metrics", timeout=5).text
    line = f'lingma_proxy_model_fallbacks_total{{from_model="{FIRST}",to_model="{to_model}"}} '
    return next((float(row.split()[-1]) for row in metrics.splitlines() if row.startswith(line)), 0.0)


@pytest.mark.parametrize("stream", MODES)
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("refusal", ["quota", "daily", "gone"])
def test_the_next_model_answers_and_the_response_names_it(proxy, refusal, api, stream):
    text = f"FALLBACK-{refusal} {uuid.uuid4()}"
    before = fallbacks(proxy, SECOND)
    response = post(proxy, api, text, stream=stream, model=FIRST)
    assert response.status_code == 200, response.text[:2000]
    assert response.headers["x-lingma-model"] == SECOND
    if stream:
        events = parse_sse(response.text)
        assert stream_text(api, events).startswith("Simulated reply")
        models = {json_model(data) for _, data in events} - {None}
    else:
        assert body_text(api, response.json()).startswith("Simulated reply")
        models = {json_model(response.json())}
    assert models == {SECOND}
    assert asks_for(proxy, text) == [FIRST, SECOND]
    assert fallbacks(proxy, SECOND) == before + 1


def json_model(data: object) -> str | None:
    """The `model` an SSE event or a body names, wherever its API puts it."""
    if not isinstance(data, dict):
        return None
    for holder in (data, data.get("response"), data.get("message")):
        if isinstance(holder, dict) and isinstance(holder.get("model"), str):
            return holder["model"]
    return None


def test_a_content_policy_refusal_never_moves_to_another_model(proxy):
    text = f"FALLBACK-policy {uuid.uuid4()}"
    status, error = failure_of("chat", post(proxy, "chat", text, model=FIRST))
    assert (status, error_kind("chat", error)) == (400, "content_policy")
    assert asks_for(proxy, text) == [FIRST]


def test_when_every_model_fails_the_client_gets_the_last_failure(proxy):
    text = f"EVERY-MODEL-OUT {uuid.uuid4()}"
    status, error = failure_of("chat", post(proxy, "chat", text, model=FIRST))
    assert (status, error_kind("chat", error)) == (429, "quota_exceeded")
    assert asks_for(proxy, text) == [FIRST, SECOND, THIRD]  # the model the account lacks is skipped
