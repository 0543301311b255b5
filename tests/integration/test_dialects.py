"""Both chat dialects end to end (docs/protocol.md §5, §9): images, context usage, the dialect probe
against a binary that never answers `session/new`, and attaching to a Lingma or QoderCN someone else runs, on either transport (§11)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
import ujson

from harness.proxy import Proxy, wait_until_ready
from lingma_proxy.events import TextDelta
from lingma_proxy.upstream.attach import resolve_attach
from lingma_proxy.upstream.client import ChatRequest, connect_client

from .ide_harness import (
    LINUX_LINGMA,
    LINUX_QODERCN,
    MACOS_LINGMA,
    MACOS_QODERCN,
    VSCODE_LINGMA,
    IdeRuntime,
    remove_home,
    short_home,
)

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
    assert [(i["mimeType"], i["data_chars"], i["uri"]) for i in status["images"]] == [
        ("image/png", len(PNG), "lingma:///agent/file?path=image-1.png")
    ]
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


def test_an_image_through_the_classic_dialect_is_uploaded_and_named_on_the_ask(make_proxy):
    proxy = make_proxy(dialect="classic")
    reply = _openai(proxy).chat.completions.create(model=VISION_MODEL, messages=IMAGE_TURN)
    assert reply.choices[0].message.content
    status = proxy.sim_status()
    (image,) = status["images"]  # image/upload, answered by image/uploadResultNotification
    assert (image["mimeType"], image["data_chars"]) == ("image/png", len(PNG))
    assert status["asks"][-1]["imageUrls"] == [image["uri"]]
    message = _anthropic(proxy).messages.create(
        model=VISION_MODEL,
        max_tokens=64,
        messages=[{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": PNG}}]}],
    )
    assert message.content[0].text
    assert proxy.sim_status()["asks"][-1]["imageUrls"] == [proxy.sim_status()["images"][-1]["uri"]]


def _image_turn(*urls: str) -> list[dict]:
    parts = [{"type": "image_url", "image_url": {"url": url}} for url in urls]
    return [{"role": "user", "content": [{"type": "text", "text": "Look."}, *parts]}]


@pytest.mark.parametrize(
    ("urls", "code", "words"),
    [
        (["https://example.com/cat.png"], "image_not_supported", "never fetches an image URL"),
        ([f"data:image/png;base64,{PNG}"] * 6, "too_many_images", "at most 5"),
        ["data:image/png;base64," + "A" * (14 * 1024 * 1024), "image_too_large", "at most 10 MB"],
    ],
    ids=["url", "count", "size"],
)
def test_the_classic_upload_limits_are_a_clear_400_before_anything_goes_up(make_proxy, urls, code, words):
    proxy = make_proxy({"limits": {"max_body_bytes": 32 * 1024 * 1024}}, dialect="classic")
    urls = urls if isinstance(urls, list) else [urls]
    with pytest.raises(openai.BadRequestError) as caught:
        _openai(proxy).chat.completions.create(model=VISION_MODEL, messages=_image_turn(*urls))
    assert caught.value.code == code and words in caught.value.message
    assert proxy.sim_status()["ask_count"] == 0 and proxy.sim_status()["images"] == []


def test_classic_images_off_is_a_clear_400_in_each_api(make_proxy):
    proxy = make_proxy({"lingma": {"classic_images": "off"}}, dialect="classic")
    with pytest.raises(openai.BadRequestError) as caught:
        _openai(proxy).chat.completions.create(model=VISION_MODEL, messages=IMAGE_TURN)
    assert caught.value.code == "image_not_supported" and "classic_images" in caught.value.message
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


@pytest.fixture
def ide(tmp_path):
    lingma = IdeRuntime(tmp_path / "home")
    yield lingma
    lingma.stop()


def _attached_proxy(make_proxy, home: Path, **kwargs) -> Proxy:
    return make_proxy({"lingma": {"attach": "auto"}}, env={"HOME": str(home)}, **kwargs)


def _ask(proxy: Proxy, text: str) -> str:
    reply = _openai(proxy).chat.completions.create(model="auto", messages=[{"role": "user", "content": text}])
    return reply.choices[0].message.content


def test_logged_out_instances_point_at_a_logged_in_ide_runtime(make_proxy, ide):
    """Spawn mode, its own instance logged out, while an IDE runs a logged-in Lingma: the log, the startup
    summary and the 503 say so and suggest lingma.attach: auto (docs/features.md §2)."""
    ide.start()
    home = ide.work_dir.parents[2]
    proxy = make_proxy({"lingma": {"simulator": {"start_logged_out": True}}}, env={"HOME": str(home)}, wait_ready=False)
    deadline = time.monotonic() + 30
    while "is not logged in to Lingma" not in proxy.log_text():
        assert time.monotonic() < deadline, proxy.log_text()
        time.sleep(0.1)
    with pytest.raises(openai.APIStatusError) as err:
        _ask(proxy, "anyone there?")
    assert err.value.status_code == 503
    message = err.value.body["message"] if isinstance(err.value.body, dict) else str(err.value)
    assert f"a logged-in Lingma is running (ws://127.0.0.1:{ide.info['websocketPort']}/)" in message
    assert "set lingma.attach: auto to use its login" in message
    deadline = time.monotonic() + 30
    while "  login:       a logged-in Lingma is running" not in proxy.log_text():
        assert time.monotonic() < deadline, proxy.log_text()
        time.sleep(0.1)
    assert ide.asks() == 0, "the IDE's Lingma was only asked whether it is logged in"

    ide.stop()  # with no IDE runtime, the hint is the general one
    quiet = make_proxy({"lingma": {"simulator": {"start_logged_out": True}}}, env={"HOME": str(home)}, wait_ready=False)
    deadline = time.monotonic() + 30
    while "is not logged in to Lingma" not in quiet.log_text():
        assert time.monotonic() < deadline, quiet.log_text()
        time.sleep(0.1)
    assert "a logged-in Lingma is running" not in quiet.log_text()


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


# ---- the QoderCN family, attached by auto (docs/protocol.md §11) ---------------------------------

QODERCN_VISION_MODEL = "qmodel"  # the simulator's 2026 list gives it isVl (a simulator choice, §11.9)


@pytest.fixture
def home():
    path = short_home()
    yield path
    remove_home(path)


@pytest.mark.parametrize(
    ("family", "folder", "transport", "require_token"),
    [
        ("qodercn", LINUX_QODERCN, "unix", True),
        ("qodercn", LINUX_QODERCN, "websocket", True),
        ("qodercn", ".qoder-cn", "websocket", False),
        ("lingma", LINUX_LINGMA, "unix", False),
    ],
)
def test_attach_auto_finds_each_family_on_each_transport_and_chats_streams_and_sees(
    make_proxy, home, family, folder, transport, require_token
):
    runtime = IdeRuntime(home, folder, family=family, transport=transport, require_token=require_token, dialect="acp")
    try:
        runtime.start()
        proxy = _attached_proxy(make_proxy, home)
        health = proxy.health()
        assert health["upstream"]["mode"] == "attached", health
        instance = health["instances"][0]
        assert (instance["family"], instance["transport"], instance["dialect"]) == (family, transport, "acp"), health
        assert instance["runtime_version"]

        assert _ask(proxy, "hello from the proxy") and runtime.asks() == 1
        chunks = list(_openai(proxy).chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "stream please"}], stream=True
        ))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

        # A display name in any case names a model too; /v1/models keeps the keys as ids.
        vision = QODERCN_VISION_MODEL if family == "qodercn" else VISION_MODEL
        assert vision in [model.id for model in _openai(proxy).models.list()]
        reply = _openai(proxy).chat.completions.create(
            model="QWEN3.7-PLUS" if family == "qodercn" else vision, messages=IMAGE_TURN
        )
        assert reply.choices[0].message.content
        image = runtime.status()["images"][-1]
        assert (image["mimeType"], image["data_chars"]) == ("image/png", len(PNG))
        assert image["uri"] == f"{family}:///agent/file?path=image-1.png"

        if require_token:
            token = ujson.loads(runtime.token_file.read_text())["token"]
            assert token not in proxy.log_text()
        assert proxy.stop() == 0 and runtime.process.poll() is None  # never stops what it attached to
    finally:
        runtime.stop()


def test_qodercn_is_preferred_when_both_families_run_and_a_family_name_chooses(make_proxy, home):
    lingma = IdeRuntime(home, VSCODE_LINGMA).start()
    qodercn = IdeRuntime(home, LINUX_QODERCN, family="qodercn", transport="unix").start()
    try:
        proxy = _attached_proxy(make_proxy, home)
        assert proxy.health()["instances"][0]["family"] == "qodercn"
        assert _ask(proxy, "who answers?") and (qodercn.asks(), lingma.asks()) == (1, 0)
        chosen = make_proxy({"lingma": {"attach": "lingma"}}, env={"HOME": str(home)})
        instance = chosen.health()["instances"][0]
        assert (instance["family"], instance["transport"], instance["dialect"]) == ("lingma", "websocket", "classic")
    finally:
        lingma.stop()
        qodercn.stop()


def _wait_for_error(proxy: Proxy, needle: str) -> dict:
    """The instance's redacted last error once it names `needle` and it has been retried at least once."""
    deadline = time.monotonic() + 30
    while True:
        instance = httpx.get(f"{proxy.url}/internal/status", timeout=5).json()["instances"][0]
        if needle in str(instance["last_error"]) and instance["restarts"] >= 1:
            return instance
        assert time.monotonic() < deadline, instance
        time.sleep(0.2)


@pytest.mark.parametrize("fault", ["stale info", "missing socket", "unreadable token", "refused token"])
def test_bad_attach_input_is_one_clear_line_and_the_instance_retries(make_proxy, home, fault):
    folder = home / LINUX_QODERCN
    folder.mkdir(parents=True)
    runtime = None
    if fault == "stale info":
        (folder / ".info.json").write_text('{"websocketPort": 1, "pid": 999999999, "ipcServerPath": ""}')
        needle = "~/.config/QoderCN/SharedClientCache/.info.json is stale (pid 999999999 is gone)"
    elif fault == "missing socket":
        info = {"websocketPort": 0, "pid": os.getpid(), "ipcServerPath": str(folder / "gone.sock")}
        (folder / ".info.json").write_text(ujson.dumps(info))
        needle = f"cannot connect to unix://{folder / 'gone.sock'}: no such socket"
    elif fault == "unreadable token":
        (folder / ".info.json").write_text(f'{{"websocketPort": 36510, "pid": {os.getpid()}, "ipcServerPath": ""}}')
        (folder / "cache").mkdir()
        (folder / "cache" / "machine_token.json").write_text("{half a token")
        needle = "cannot read the machine token ~/.config/QoderCN/SharedClientCache/cache/machine_token.json: not JSON"
    else:
        runtime = IdeRuntime(home, LINUX_QODERCN, family="qodercn", require_token=True).start()
        runtime.token_file.write_text('{"token": "not-the-one-it-wrote"}')  # the runtime keeps its own in memory
        needle = "refused the connection (HTTP 403): it did not accept the Cosy-MachineToken"
    try:
        proxy = _attached_proxy(make_proxy, home, wait_ready=False)
        wait_until_ready(proxy, status=503)
        _wait_for_error(proxy, needle)
        assert proxy.health()["instances"][0]["error"] == "start_failed"
        lines = [line for line in proxy.log_text().splitlines() if needle in line]
        assert lines and "Traceback" not in proxy.log_text()
        assert "not-the-one-it-wrote" not in proxy.log_text()
    finally:
        if runtime is not None:
            runtime.stop()


async def _chat_on_darwin(home: Path) -> tuple[str, str, Path | None, str]:
    """Find the runtime as on macOS, connect the real client, and stream one answer."""
    endpoint = resolve_attach("auto", home, "Darwin", {})
    workspace = home / "workspace"
    workspace.mkdir(exist_ok=True)
    client = await connect_client(endpoint, rpc_timeout=20, workspace=workspace)
    try:
        request = ChatRequest(
            question="hello from macOS", model_key="auto", session_id="s1", request_id="r1", is_reply=False
        )
        text = "".join([event.text async for event in client.chat(request) if isinstance(event, TextDelta)])
    finally:
        client.close()
    return client.family, client.transport, endpoint.info_dir, text


def test_a_macos_layout_is_found_when_the_platform_says_darwin(home):
    """The proxy runs on Linux here, so the macOS folders are exercised through the discovery's platform
    parameter, against real runtimes and the real client."""
    lingma = IdeRuntime(home, MACOS_LINGMA, dialect="acp")
    qodercn = IdeRuntime(home, MACOS_QODERCN, family="qodercn", transport="unix", require_token=True)
    try:
        for runtime in (lingma, qodercn):  # QoderCN starts second and wins from then on (§11.1)
            runtime.start()
            family, transport, info_dir, text = asyncio.run(asyncio.wait_for(_chat_on_darwin(home), 30))
            assert (family, transport, info_dir) == (runtime.family, runtime.transport, runtime.work_dir)
            assert "hello from macOS" in text
    finally:
        lingma.stop()
        qodercn.stop()
