"""sessions.reuse: auto (docs/features.md §3): a runtime proves that follow-ups keep the history before any
turn is sent as a delta, and a reused session the runtime has lost is resent in full.

Real proxy, simulator children. The simulator answers the canary's recall question from its session
history, and LINGMA_SIM_FORGET_HISTORY=1 makes it forget, so both verdicts are seen.
"""

from __future__ import annotations

import json
import stat

import httpx
import openai
import pytest

from harness.proxy import Proxy
from tests.integration.ops_support import wait_for

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("sim_dialect")]

AUTO = {"sessions": {"reuse": "auto"}}
VERDICTS = "reuse-verdicts.json"


def settled_verdict(proxy: Proxy) -> dict:
    """The one runtime's entry in /healthz once its canary has given a verdict."""

    def verdict() -> dict | None:
        runtimes = proxy.health()["session_reuse"]["runtimes"]
        entry = next(iter(runtimes.values()), None)
        return entry if entry is not None and entry["reuse"] is not None else None

    return wait_for(verdict, "the canary's verdict", timeout=30.0)


def two_turns(proxy: Proxy) -> list[dict]:
    """A two-turn conversation; the simulator's record of the asks it made."""
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="unused", max_retries=0, timeout=30)
    before = proxy.sim_status(0)["ask_count"]
    messages: list[dict] = [{"role": "user", "content": "first question"}]
    first = client.chat.completions.create(model="auto", messages=messages)
    messages += [first.choices[0].message.model_dump(exclude_none=True), {"role": "user", "content": "second question"}]
    client.chat.completions.create(model="auto", messages=messages)
    status = proxy.sim_status(0)
    return status["asks"][-(status["ask_count"] - before) :]


def test_a_runtime_that_remembers_turns_reuse_on_and_keeps_the_verdict_private(make_proxy, tmp_path):
    proxy = make_proxy(AUTO)
    verdict = settled_verdict(proxy)
    assert verdict["reuse"] is True and verdict["checked_at"].endswith("Z")
    canary = proxy.sim_status(0)["asks"][:2]
    assert [ask["isReply"] for ask in canary] == [False, True]
    assert canary[0]["sessionId"] == canary[1]["sessionId"]
    assert "Remember the word" in canary[0]["question_head"] and canary[1]["question_bytes"] < 80

    turns = two_turns(proxy)
    assert [ask["isReply"] for ask in turns] == [False, True]
    assert turns[1]["sessionId"] == turns[0]["sessionId"]

    path = next((tmp_path / "proxy0" / "instances").glob(VERDICTS))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    (identity, stored), = json.loads(path.read_text()).items()
    dialect = proxy.health()["upstream"]["dialect"]
    assert identity.startswith("lingma ") and identity.endswith(f" {dialect}") and stored["remembered"] is True
    admin = httpx.get(f"{proxy.url}/internal/status", timeout=5).json()["session_reuse"]
    assert admin["mode"] == "auto" and "asked for" in admin["runtimes"][identity]["detail"]
    assert "  session reuse: auto, " in proxy.log_text()  # the startup summary's line
    assert f"session reuse on for {identity}" in proxy.log_text()


def test_a_runtime_that_forgets_keeps_reuse_off_and_every_second_turn_goes_in_full(make_proxy):
    proxy = make_proxy(AUTO, env={"LINGMA_SIM_FORGET_HISTORY": "1"})
    verdict = settled_verdict(proxy)
    assert verdict["reuse"] is False
    turns = two_turns(proxy)
    assert [ask["isReply"] for ask in turns] == [False, False]
    assert turns[1]["sessionId"] != turns[0]["sessionId"]
    assert "first question" in turns[1]["question_head"]  # the whole conversation, not the delta
    assert "a follow-up lost the history" in proxy.log_text()


def test_the_verdict_on_file_is_not_tested_again_on_the_next_start(make_proxy, tmp_path):
    shared = {**AUTO, "lingma": {"work_dir": str(tmp_path / "shared")}}
    first = make_proxy(shared)
    found = settled_verdict(first)
    first.stop()
    second = make_proxy(shared)
    assert settled_verdict(second) == found  # at once, from the file
    assert "session reuse on for" not in second.log_text()  # logged only when a canary gives a verdict


def test_a_reused_session_the_runtime_lost_is_resent_in_full_before_the_client_sees_anything(make_proxy, tmp_path):
    scenario = tmp_path / "lost.yaml"
    scenario.write_text('rules:\n  - match: "second question"\n    fault: session_lost\n    times: 1\n')
    proxy = make_proxy({"sessions": {"reuse": "on"}, "lingma": {"simulator": {"scenario": str(scenario)}}})
    turns = two_turns(proxy)
    assert [ask["isReply"] for ask in turns] == [False, True, False]
    assert turns[1]["sessionId"] == turns[0]["sessionId"] != turns[2]["sessionId"]
    assert "first question" in turns[2]["question_head"]
    assert "no longer has the session" in proxy.log_text()
