"""Both chat dialects end to end (docs/protocol.md §5, §9): images, context usage, the dialect probe
against a binary that never answers `session/new`, and attaching to a Lingma someone else runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
import ujson

from harness.proxy import REPO, Proxy, free_port, wait_until_ready

pytestmark = pytest.mark.timeout(90)

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
VISION_MODEL = "q35model"  # the simulator lists it with isVl, as the real list does
IMAGE_TURN = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        ],
    }
]


def _openai(proxy: Proxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="unused", max_retries=0, timeout=30)


def _anthropic(proxy: Proxy) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.url, api_key="unused", max_retries=0, timeout=30)


def _session_turns(proxy: Proxy, session_id: str) -> list[dict]:
    url = f"http://127.0.0.1:{proxy.instance_http_port()}/sim/sessions/{session_id}"
    return httpx.get(url, timeout=5).json()["turns"]


def _last_question(proxy: Proxy) -> str:
    """The whole text of the newest question the simulator received."""
    session_id = proxy.sim_status()["asks"][-1]["sessionId"]
    return [turn for turn in _session_turns(proxy, session_id) if turn["role"] == "user"][-1]["text"]


# ---- images ----------------------------------------------------------------------------------


def test_an_image_in_the_newest_turn_reaches_a_vision_model_through_the_agent_dialect(make_proxy):
    proxy = make_proxy(dialect="acp")
    reply = _openai(proxy).chat.completions.create(model=VISION_MODEL, messages=IMAGE_TURN)
    assert reply.choices[0].message.content
    status = proxy.sim_status()
    assert [(i["mimeType"], i["data_chars"], i["uri"]) for i in status["images"]] == [("image/png", len(PNG), "")]
    assert status["images"][0]["requestId"] == status["asks"][-1]["requestId"]
    assert "[image attached]" in _last_question(proxy)

    message = _anthropic(proxy).messages.create(
        model=VISION_MODEL,
        max_tokens=256,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQSkZJRg=="}},
                    {"type": "text", "text": "Describe it."},
                ],
            }
        ],
    )
    assert message.content[0].text
    assert proxy.sim_status()["images"][-1]["mimeType"] == "image/jpeg"


def test_an_image_for_a_model_without_vision_is_a_clear_400(make_proxy):
    proxy = make_proxy(dialect="acp")
    with pytest.raises(openai.BadRequestError) as caught:
        _openai(proxy).chat.completions.create(model="auto", messages=IMAGE_TURN)
    assert caught.value.code == "image_not_supported" and "does not take images" in caught.value.message
    assert proxy.sim_status()["images"] == []


def test_an_image_through_the_classic_dialect_is_a_clear_400_in_each_api(make_proxy):
    proxy = make_proxy(dialect="classic")
    with pytest.raises(openai.BadRequestError) as caught:
        _openai(proxy).chat.completions.create(model=VISION_MODEL, messages=IMAGE_TURN)
    assert caught.value.code == "image_not_supported" and "agent dialect" in caught.value.message
    with pytest.raises(anthropic.BadRequestError) as refused:
        _anthropic(proxy).messages.create(
            model=VISION_MODEL,
            max_tokens=64,
            messages=[{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]}],
        )
    assert refused.value.body["error"]["type"] == "invalid_request_error"
    assert proxy.sim_status()["ask_count"] == 0


def test_an_image_sent_before_a_tool_round_is_history_by_the_time_results_come_back(make_proxy):
    """Claude Code: the user's picture, then tool calls; the tool-result turn must not be refused."""
    proxy = make_proxy(dialect="classic")
    message = _anthropic(proxy).messages.create(
        model=VISION_MODEL,
        max_tokens=256,
        tools=[{"name": "Read", "description": "Read a file", "input_schema": {"type": "object", "properties": {}}}],
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                    {"type": "text", "text": "Fix the layout shown here."},
                ],
            },
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "body { }"}]},
        ],
    )
    assert message.stop_reason in ("end_turn", "tool_use")
    question = _last_question(proxy)
    assert "[image omitted]" in question and "[image attached]" not in question


# ---- usage from the agent dialect ------------------------------------------------------------


def test_the_agent_dialects_context_usage_is_the_reported_input(make_proxy):
    """context_usage.usedTokens covers the session after the answer; the input is that less the answer."""
    proxy = make_proxy(dialect="acp")
    reply = _openai(proxy).chat.completions.create(model="auto", messages=[{"role": "user", "content": "hello there"}])
    (session_id,) = proxy.sim_status()["sessions"]
    turns = _session_turns(proxy, session_id)
    used = sum(len(turn["text"]) for turn in turns) // 4  # the simulator's own estimate (acp.py)
    assert reply.usage.completion_tokens > 0
    assert reply.usage.prompt_tokens == used - reply.usage.completion_tokens


# ---- the dialect probe -----------------------------------------------------------------------


def test_a_classic_binary_that_never_answers_session_new_is_taken_as_classic(make_proxy, tmp_path):
    scenario = tmp_path / "hang.yaml"
    scenario.write_text("session_new: hang\nrules: []\n")
    proxy = make_proxy(
        {"lingma": {"dialect_probe_sec": 1.0, "simulator": {"scenario": str(scenario)}}}, dialect="classic"
    )
    health = proxy.health()
    assert health["upstream"]["dialect"] == "classic" and health["instances"][0]["dialect"] == "classic"
    reply = _openai(proxy).chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content


def test_healthz_names_each_instances_dialect_and_the_probe_leaves_no_session_behind(make_proxy):
    proxy = make_proxy({"accounts": [{"name": "a"}, {"name": "b"}]}, dialect="acp")
    deadline = time.monotonic() + 30
    while not all(i["dialect"] == "acp" for i in proxy.health()["instances"]):
        assert time.monotonic() < deadline, proxy.health()
        time.sleep(0.2)
    assert proxy.health()["upstream"]["dialect"] == "acp"
    for instance in (0, 1):  # the desktop app lists sessions: the probe's own is deleted again at once
        status = proxy.sim_status(instance)
        assert len(status["deleted_sessions"]) == 1 and status["ask_count"] == 0


# ---- attach mode -----------------------------------------------------------------------------


class IdeLingma:
    """A simulator started by 'the IDE': its work dir is the shared client cache, where it writes .info.json."""

    def __init__(self, home: Path) -> None:
        self.work_dir = home / ".lingma" / "vscode" / "sharedClientCache"
        self.process: subprocess.Popen | None = None
        self.http_port = 0

    def start(self) -> None:
        info = self.work_dir / ".info.json"
        info.unlink(missing_ok=True)
        socket_port, self.http_port = free_port(), free_port()
        argv = [
            sys.executable, "-m", "lingma_proxy.simulator", "start", "--transportType=websocket",
            f"--workDir={self.work_dir}", f"--socketPort={socket_port}", f"--httpPort={self.http_port}",
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("LINGMA_")}
        self.process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not (info.exists() and ujson.loads(info.read_text() or "{}").get("websocketPort") == socket_port):
            assert self.process.poll() is None and time.monotonic() < deadline, "the IDE's simulator did not start"
            time.sleep(0.1)

    def asks(self) -> int:
        return httpx.get(f"http://127.0.0.1:{self.http_port}/sim/status", timeout=5).json()["ask_count"]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=10)


@pytest.fixture
def ide(tmp_path):
    lingma = IdeLingma(tmp_path / "home")
    yield lingma
    lingma.stop()


def _attached_proxy(make_proxy, home: Path, **kwargs) -> Proxy:
    return make_proxy({"lingma": {"attach": "auto"}}, env={"HOME": str(home)}, **kwargs)


def _ask(proxy: Proxy, text: str) -> str:
    reply = _openai(proxy).chat.completions.create(model="auto", messages=[{"role": "user", "content": text}])
    return reply.choices[0].message.content


def test_attach_auto_uses_the_ides_lingma_reconnects_when_it_restarts_and_never_stops_it(make_proxy, ide):
    ide.start()
    proxy = _attached_proxy(make_proxy, ide.work_dir.parents[2])
    health = proxy.health()
    assert health["upstream"]["mode"] == "attached" and health["upstream"]["kind"] == "lingma"
    assert _ask(proxy, "hello from the proxy") and ide.asks() == 1

    first = ide.process
    ide.stop()  # the IDE restarts its Lingma on new ports
    ide.start()
    deadline = time.monotonic() + 30
    while True:
        try:
            if _ask(proxy, "still there?"):
                break
        except openai.APIError:
            pass
        assert time.monotonic() < deadline, proxy.log_text()[-3000:]
        time.sleep(0.3)
    assert first.returncode is not None and ide.asks() == 1

    assert proxy.stop() == 0
    assert ide.process.poll() is None  # the proxy never stops a Lingma it attached to
    assert ide.asks() == 1


def test_attach_auto_with_a_stale_info_file_says_so_in_one_clear_line(make_proxy, tmp_path):
    home = tmp_path / "home"
    cache = home / ".lingma" / "vscode" / "sharedClientCache"
    cache.mkdir(parents=True)
    (cache / ".info.json").write_text('{"websocketPort": 1, "pid": 999999999, "ipcServerPath": ""}')
    proxy = _attached_proxy(make_proxy, home, wait_ready=False)
    wait_until_ready(proxy, status=503)
    status = httpx.get(f"{proxy.url}/internal/status", timeout=5).json()
    deadline = time.monotonic() + 20
    while "no running Lingma was found" not in str(status["instances"][0]["last_error"]):
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
        status = httpx.get(f"{proxy.url}/internal/status", timeout=5).json()
    # The public /healthz names the failure by a fixed code, never by the text (it may quote the child).
    assert proxy.health()["instances"][0]["error"] == "start_failed"
    lines = [line for line in proxy.log_text().splitlines() if "no running Lingma was found" in line]
    assert lines and "Traceback" not in proxy.log_text()
    assert "lingma.attach: ws://127.0.0.1:PORT" in lines[0]


def test_the_embedded_simulator_echoes_the_users_words_not_the_transcripts_speaker_label(make_proxy):
    """What a new user sees first: a system prompt makes a transcript, which ends on "[Assistant]"."""
    proxy = make_proxy()
    reply = _openai(proxy).chat.completions.create(
        model="auto", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello there"}]
    )
    assert reply.choices[0].message.content == "Simulated reply (turn 1): hello there"
