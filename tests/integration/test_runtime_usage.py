"""Input tokens from the runtime's own figure in both dialects (docs/protocol.md §11.5), and the ratio of
that figure to our count per model on /internal/stats.

The classic simulator sends `context/usage/sync` only with LINGMA_SIM_USAGE_SYNC=1 (the plugin binary's
use of it is reported, not seen); the agent dialect always sends `context_usage`.
"""

from __future__ import annotations

import httpx
import openai
import pytest

pytestmark = pytest.mark.timeout(60)


@pytest.mark.usefixtures("sim_dialect")
def test_the_runtimes_figure_is_the_input_and_calibrates_our_count(make_proxy):
    proxy = make_proxy(env={"LINGMA_SIM_USAGE_SYNC": "1"})
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="unused", max_retries=0, timeout=30)
    reply = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hello there " * 40}])
    (session_id,) = proxy.sim_status()["sessions"]
    turns = httpx.get(f"http://127.0.0.1:{proxy.instance_http_port()}/sim/sessions/{session_id}", timeout=5).json()
    used = sum(len(turn["text"]) for turn in turns["turns"]) // 4  # the simulator's estimate (sessions.py)
    assert reply.usage.prompt_tokens == used - reply.usage.completion_tokens

    stats = httpx.get(f"{proxy.url}/internal/stats", timeout=5).json()["token_calibration"]
    (model, calibration), = stats.items()
    assert calibration["turns"] == 1 and calibration["runtime_tokens"] == reply.usage.prompt_tokens
    assert calibration["ratio"] == round(calibration["runtime_tokens"] / calibration["our_tokens"], 3)


def test_without_a_runtime_figure_usage_is_our_count_and_nothing_is_calibrated(make_proxy):
    proxy = make_proxy(dialect="classic")  # the agent dialect always reports context_usage
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="unused", max_retries=0, timeout=30)
    client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hello"}])
    assert httpx.get(f"{proxy.url}/internal/stats", timeout=5).json()["token_calibration"] == {}
