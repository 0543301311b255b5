"""The simulator as a real process, driven over its WebSocket and HTTP ports like the proxy and a browser would."""

from __future__ import annotations

import asyncio
import functools
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import ujson
from tornado.websocket import WebSocketClientConnection, WebSocketClosedError, websocket_connect

from lingma_proxy.framing import FrameDecoder, encode_frame

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "tests" / "fixtures" / "scenarios" / "simulator_protocol.yaml"
OMIT = object()

pytestmark = pytest.mark.timeout(60)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Sim:
    process: subprocess.Popen[bytes]
    work_dir: Path
    socket_port: int
    http_port: int
    output_path: Path

    @property
    def output(self) -> str:
        return self.output_path.read_text(encoding="utf-8", errors="replace")

    def status(self) -> dict[str, Any]:
        return httpx.get(f"http://127.0.0.1:{self.http_port}/sim/status", timeout=5).json()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=5)


def start_sim(work_dir: Path, dialect: str | None = None, **env: str) -> Sim:
    socket_port, http_port = _free_port(), _free_port()
    output_path = work_dir.parent / f"{work_dir.name}-{socket_port}.out"
    command = [sys.executable, "-m", "lingma_proxy.simulator", "start", "--transportType=websocket"]
    command += [f"--workDir={work_dir}", f"--socketPort={socket_port}", f"--httpPort={http_port}"]
    command += [f"--dialect={dialect}"] if dialect else []
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "LINGMA_SIM_SCENARIO": str(SCENARIO), **env}
    with open(output_path, "wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=full_env, cwd=REPO)
    sim = Sim(process, work_dir, socket_port, http_port, output_path)
    deadline = time.monotonic() + 15
    while "lingma simulator listening on ws://" not in sim.output:
        if process.poll() is not None or time.monotonic() > deadline:
            sim.stop()
            raise AssertionError(f"simulator did not start:\n{sim.output}")
        time.sleep(0.05)
    return sim


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., Sim]]:
    started: list[Sim] = []

    def _launch(name: str = "work", dialect: str | None = None, **env: str) -> Sim:
        started.append(start_sim(tmp_path / name, dialect, **env))
        return started[-1]

    yield _launch
    for sim in started:
        sim.stop()


@pytest.fixture(scope="module")
def shared_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    sim = start_sim(tmp_path_factory.mktemp("shared") / "work")
    yield sim
    sim.stop()


class Client:
    """A minimal Lingma RPC client: framed messages, integer ids, acks for every server→client request."""

    def __init__(self, ws: WebSocketClientConnection, ack: dict[str, Any] | None) -> None:
        self.ws = ws
        self.ack = ack  # None: never ack
        self.inbox: list[dict[str, Any]] = []
        self._decoder = FrameDecoder()
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, sim: Sim, initialize: bool = True, ack: dict[str, Any] | None = None) -> Client:
        ws = await websocket_connect(f"ws://127.0.0.1:{sim.socket_port}/ws", max_message_size=64 * 1024 * 1024)
        client = cls(ws, ack if ack is not None else {"result": None})
        if initialize:
            reply = await client.call("initialize", {"processId": None, "clientInfo": {"name": "t", "version": "1"}})
            assert reply["result"]["serverInfo"]["name"] == "lingma"
        return client

    async def _read(self) -> None:
        while (raw := await self.ws.read_message()) is not None:
            for message in self._decoder.feed(raw):
                if "method" not in message:
                    self._pending.pop(message["id"]).set_result(message)
                    continue
                self.inbox.append(message)
                if "id" in message and self.ack is not None:
                    self.send({"jsonrpc": "2.0", "id": message["id"], **self.ack})
            self._changed.set()
        self._changed.set()

    def send(self, message: dict[str, Any]) -> None:
        try:
            self.ws.write_message(encode_frame(message).decode("utf-8"))
        except WebSocketClosedError:
            pass  # the simulator is gone (e.g. the crash fault); the reader notices

    async def call(self, method: str, params: Any = OMIT, timeout: float = 10) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not OMIT:
            message["params"] = params
        self._pending[self._next_id] = asyncio.get_running_loop().create_future()
        self.send(message)
        return await asyncio.wait_for(self._pending[self._next_id], timeout)

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10) -> dict[str, Any]:
        async def scan() -> dict[str, Any]:
            seen = 0
            while True:
                self._changed.clear()
                found = next((m for m in self.inbox[seen:] if predicate(m)), None)
                if found is not None:
                    return found
                seen = len(self.inbox)
                if self._reader.done():
                    raise ConnectionError("the simulator closed the connection")
                await self._changed.wait()

        return await asyncio.wait_for(scan(), timeout)

    def stream(self, request_id: str, session_id: str = "") -> list[dict[str, Any]]:
        return [m for m in self.inbox if _params(m).get("requestId") == request_id or _is_title(m, session_id)]

    async def close(self) -> None:
        self.ws.close()
        self._reader.cancel()


def _params(message: dict[str, Any]) -> dict[str, Any]:
    return message.get("params") or {}


def _is_title(message: dict[str, Any], session_id: str) -> bool:
    return message.get("method") == "session/title/update" and _params(message).get("sessionId") == session_id


def is_finish(request_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m.get("method") == "chat/finish" and _params(m)["requestId"] == request_id


def answer_text(messages: list[dict[str, Any]]) -> str:
    return "".join(_params(m)["text"] for m in messages if m["method"] == "chat/answer")


async def ask(
    client: Client, question: str, session_id: str = "", is_reply: bool = False
) -> tuple[dict[str, Any], str, str]:
    request_id, session_id = str(uuid.uuid4()), session_id or str(uuid.uuid4())
    params = {
        "requestId": request_id,
        "sessionId": session_id,
        "isReply": is_reply,
        "questionText": question,
        "stream": True,
        "chatTask": "FREE_INPUT",
        "sessionType": "chat",
        "mode": "chat",
        "extra": {"modelConfig": {"key": "dashscope_qwen3_coder"}},
    }
    reply = await client.call("chat/ask", params)
    return reply, request_id, session_id


async def chat(
    client: Client, question: str, session_id: str = "", is_reply: bool = False
) -> tuple[list[dict[str, Any]], str]:
    """One complete turn: the stream's messages (finish last) and the session id."""
    reply, request_id, session_id = await ask(client, question, session_id, is_reply)
    assert reply["result"]["success"] is True, reply
    await client.wait_for(is_finish(request_id))
    return client.stream(request_id, session_id), session_id


async def eventually(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def run_cli(*args: str) -> str:
    command = [sys.executable, "-m", "lingma_proxy.simulator", *args]
    return subprocess.run(command, capture_output=True, check=True, cwd=REPO, timeout=30).stdout.decode()


def on_loop(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on its own event loop; pytest still sees the test's own fixture arguments."""

    @functools.wraps(test)
    def sync(*args: Any, **kwargs: Any) -> None:
        run(test(*args, **kwargs))

    return sync


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 45))


# --- handshake and framing ---------------------------------------------------------------------------


@on_loop
async def test_requests_before_initialize_fail_and_initialized_is_ignored(shared_sim: Sim) -> None:
    client = await Client.connect(shared_sim, initialize=False)
    early = await client.call("auth/status", {})
    assert early["error"]["code"] == -32002
    client.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    init = await client.call("initialize", {"processId": None, "capabilities": {}})
    assert init["result"]["serverInfo"] == {"name": "lingma", "version": "2.11.1-sim"}
    assert "capabilities" in init["result"]
    assert (await client.call("auth/status", {}))["result"]["status"] == 2
    assert client.inbox == []  # nothing answered the `initialized` notification
    await client.close()


@on_loop
async def test_unframed_input_is_rejected_and_the_connection_keeps_working(shared_sim: Sim) -> None:
    client = await Client.connect(shared_sim)
    client.ws.write_message(ujson.dumps({"jsonrpc": "2.0", "id": 999, "method": "auth/status", "params": {}}))
    reply = await client.call("auth/status", {})
    assert reply["id"] != 999 and reply["result"]["status"] == 2
    await client.close()

    assert "Unknown message header" in shared_sim.output


@on_loop
async def test_params_must_be_an_object_and_unknown_methods_are_refused(shared_sim: Sim) -> None:
    client = await Client.connect(shared_sim)
    assert (await client.call("auth/status", []))["error"]["code"] == -32602
    assert (await client.call("auth/status"))["error"]["code"] == -32602
    assert (await client.call("no/such/method", {}))["error"]["code"] == -32601
    assert (await client.call("session/new", {"cwd": "/tmp"}))["error"]["code"] == -32601  # classic dialect
    await client.close()

    assert "unknown method: no/such/method" in shared_sim.output


@on_loop
async def test_frames_split_across_messages_and_batched_in_one_are_read(shared_sim: Sim) -> None:
    client = await Client.connect(shared_sim)
    frame = encode_frame({"jsonrpc": "2.0", "id": 501, "method": "auth/status", "params": {}}).decode("utf-8")
    client._pending[501] = asyncio.get_running_loop().create_future()
    client.ws.write_message(frame[:10])
    client.ws.write_message(frame[10:])
    assert (await asyncio.wait_for(client._pending[501], 10))["result"]["status"] == 2
    batch = [{"jsonrpc": "2.0", "id": i, "method": "auth/status", "params": {}} for i in (502, 503)]
    futures = [asyncio.get_running_loop().create_future() for _ in batch]
    for message, future in zip(batch, futures, strict=False):
        client._pending[message["id"]] = future
    client.ws.write_message(b"".join(encode_frame(message) for message in batch).decode("utf-8"))
    replies = [await asyncio.wait_for(future, 10) for future in futures]
    assert [reply["result"]["status"] for reply in replies] == [2, 2]
    await client.close()


# --- classic methods -----------------------------------------------------------------------------------


@on_loop
async def test_logged_in_status_and_models_have_the_real_shapes(shared_sim: Sim) -> None:
    client = await Client.connect(shared_sim)
    status = (await client.call("auth/status", {}))["result"]
    assert status["status"] == 2 and status["name"] == "demo@simulator" and status["whitelist"] == 3
    assert status["token"].startswith("pt-") and status["refreshToken"].startswith("rt-")
    assert {"id", "accountId", "expireTime", "userType", "privacyPolicyAgreed", "cloudType"} <= set(status)
    models = (await client.call("config/queryModels", {}))["result"]
    assert {"assistant", "chat", "developer", "inline", "quest"} <= set(models)
    by_key = {model["key"]: model for model in models["chat"]}
    assert by_key["dashscope_qwen_plus_20250428_thinking"]["isReasoning"] is True
    assert by_key["q35model"]["isVl"] is True
    fields = {"key", "displayName", "format", "source", "isReasoning", "isVl", "url", "apiKey", "model"}
    assert set(by_key["auto"]) == fields
    updated = await client.call("config/updateEndpoint", {"endpoint": "https://corp.example"})
    assert updated["result"] == {"success": True}
    assert (await client.call("config/getEndpoint", {}))["result"]["endpoint"] == "https://corp.example"
    await client.close()

    assert shared_sim.status()["endpoint"] == "https://corp.example"


@on_loop
async def test_streamed_chat_has_the_real_shape_and_every_request_is_acked(shared_sim: Sim) -> None:
    client = await Client.connect(shared_sim)
    reply, request_id, session_id = await ask(client, "intro line\n\nplease summarise this\n")
    accepted = {"requestId": request_id, "success": True, "isSuccess": True, "status": 200, "errorMessage": ""}
    assert reply["result"] == accepted
    await client.wait_for(is_finish(request_id))
    stream = client.stream(request_id, session_id)
    methods = [m["method"] for m in stream]
    first_delta = methods.index("chat/answer")
    step, title = "chat/process_step_callback", "session/title/update"
    assert methods[:first_delta] == [step, title, step]
    assert [_params(m)["step"] for m in stream[:first_delta] if "step" in _params(m)] == ["step_start", "step_end"]
    deltas = [_params(m) for m in stream if m["method"] == "chat/answer"]
    assert len(deltas) >= 3 and "" in [d["text"] for d in deltas]
    assert all(d["overwrite"] is False and d["extra"] == {"sessionType": "chat"} for d in deltas)
    assert methods[-1] == "chat/finish" and methods.count("chat/finish") == 1
    finish = _params(stream[-1])
    assert finish["statusCode"] == 200 and finish["reason"] == "success"
    assert finish["fullAnswer"] == answer_text(stream) == "Simulated reply (turn 1): please summarise this"
    assert all(isinstance(m["id"], int) for m in stream)
    await eventually(lambda: (status := shared_sim.status())["acks"] == status["server_requests"])
    await client.close()

    status = shared_sim.status()
    assert status["acks"] == status["server_requests"] >= 10 and status["unacked_timeouts"] == 0
    last = status["asks"][-1]
    assert last["question_head"].startswith("intro line") and last["isReply"] is False
    assert last["model"] == "dashscope_qwen3_coder" and last["mode"] == "chat"


@on_loop
async def test_follow_ups_with_is_reply_continue_the_server_side_session(shared_sim: Sim) -> None:
    client = await Client.connect(shared_sim)
    _, session_id = await chat(client, "Hello, my name is Ada")
    stream, _ = await chat(client, "what is my name?", session_id, is_reply=True)
    assert answer_text(stream) == "Your name is Ada."
    stream, _ = await chat(client, "and again", session_id, is_reply=True)
    assert answer_text(stream) == "Simulated reply (turn 3): and again"
    async with httpx.AsyncClient() as http:
        page = await http.get(f"http://127.0.0.1:{shared_sim.http_port}/sim/sessions/{session_id}")
    turns = page.json()["turns"]
    assert [t["role"] for t in turns] == ["user", "assistant"] * 3 and turns[2]["text"] == "what is my name?"
    restarted, _ = await chat(client, "what is my name?", session_id, is_reply=False)
    assert answer_text(restarted) == "Simulated reply (turn 1): what is my name?"
    assert shared_sim.status()["sessions"][session_id] == 1
    assert (await client.call("chat/deleteSessionById", {"sessionId": session_id}))["result"] == {}
    _, other = await chat(client, "another session")
    assert (await client.call("chat/deleteSessionById", {"id": other}))["result"] == {}
    await client.close()
    status = shared_sim.status()
    assert {session_id, other} <= set(status["deleted_sessions"]) and session_id not in status["sessions"]


@on_loop
async def test_chat_stop_ends_the_stream_with_a_stopped_finish(shared_sim: Sim) -> None:
    client = await Client.connect(shared_sim)
    _, request_id, session_id = await ask(client, "go slowly")
    await client.wait_for(lambda m: m["method"] == "chat/answer" and _params(m)["text"] != "")
    assert (await client.call("chat/stop", {"requestId": request_id, "sessionId": session_id}))["result"] == {}
    finish = _params(await client.wait_for(is_finish(request_id)))
    assert finish["reason"] == "stopped" and finish["statusCode"] == 200
    assert finish["fullAnswer"] != "one two three four five six seven eight nine ten"
    await client.close()
    assert request_id in shared_sim.status()["stops"]


@on_loop
async def test_think_styles(shared_sim: Sim) -> None:
    client = await Client.connect(shared_sim)
    stream, _ = await chat(client, "think in requests")
    methods = [m["method"] for m in stream]
    thinks = [_params(m) for m in stream if m["method"] == "chat/think"]
    assert thinks[0]["step"] == "start" and thinks[-1]["step"] == "done"
    assert "".join(t["text"] for t in thinks) == "First I consider the question, then I answer."
    assert methods.index("chat/think") < methods.index("chat/answer") and answer_text(stream) == "Reasoned answer."
    stream, _ = await chat(client, "think inline")
    assert re.fullmatch(r"````think::\d+\nInline reasoning\.\n````\nInline answer\.", answer_text(stream))
    assert not any(m["method"] == "chat/think" for m in stream)
    stream, _ = await chat(client, "think with tags")
    assert answer_text(stream) == "<think>Tagged reasoning.</think>\nTagged answer."
    await client.close()


@on_loop
async def test_a_megabyte_of_multibyte_text_is_echoed_intact(shared_sim: Sim) -> None:
    question = "ECHO:" + "你好，世界🙂 emoji ✓ 文字\n" * 30000
    assert len(question.encode("utf-8")) > 1_000_000

    client = await Client.connect(shared_sim)
    stream, _ = await chat(client, question)
    assert answer_text(stream) == question and _params(stream[-1])["fullAnswer"] == question
    await client.close()

    assert shared_sim.status()["asks"][-1]["question_bytes"] == len(question.encode("utf-8"))


@on_loop
async def test_native_tool_results_arrive_by_invoke_result_or_in_the_reply(shared_sim: Sim) -> None:
    client = await Client.connect(shared_sim)
    _, request_id, _ = await ask(client, "please read the file")
    invoke = _params(await client.wait_for(lambda m: m["method"] == "tool/invoke"))
    assert invoke["name"] == "read_file" and invoke["parameters"] == {"path": "README.md"}
    assert invoke["async"] is True and invoke["requestId"] == request_id
    outcome = {"toolCallId": invoke["toolCallId"], "name": "read_file", "success": True, "result": "# Title"}
    result = await client.call("tool/invokeResult", outcome)
    assert result["result"] == {"errorCode": None, "errorMessage": None}
    await client.wait_for(is_finish(request_id))
    assert answer_text(client.stream(request_id)) == "I read it.\nTool result: # Title"
    await client.close()

    client = await Client.connect(shared_sim, ack={"result": {"result": "inline content"}})
    stream, _ = await chat(client, "read the file again")
    assert answer_text(stream) == "I read it.\nTool result: inline content"
    await client.close()


# --- faults --------------------------------------------------------------------------------------------


@on_loop
async def test_rpc_error_fault_and_times_limited_rules(shared_sim: Sim) -> None:
    client = await Client.connect(shared_sim)
    reply, _, _ = await ask(client, "plan info please")
    assert reply["error"] == {"code": -32603, "message": "failed to get user plan info: HTTP status 500"}
    reply, _, _ = await ask(client, "flaky once")
    assert reply["error"]["message"] == "failed to get user plan info: HTTP status 503"
    stream, _ = await chat(client, "flaky once")
    assert answer_text(stream) == "Recovered."
    await client.close()


@on_loop
async def test_finish_error_fault_sends_two_deltas_then_a_failed_finish(shared_sim: Sim) -> None:
    client = await Client.connect(shared_sim)
    stream, _ = await chat(client, "finish badly")
    deltas = [_params(m)["text"] for m in stream if m["method"] == "chat/answer" and _params(m)["text"]]
    assert len(deltas) == 2
    finish = _params(stream[-1])
    assert finish["statusCode"] == 503 and finish["reason"] == "model overloaded"
    await client.close()


@on_loop
async def test_hang_fault_never_finishes(shared_sim: Sim) -> None:
    client = await Client.connect(shared_sim)
    _, request_id, session_id = await ask(client, "hang now")
    await client.wait_for(lambda m: _is_title(m, session_id))
    with pytest.raises(asyncio.TimeoutError):
        await client.wait_for(lambda m: m["method"] == "chat/answer", timeout=1.0)
    assert shared_sim.status()["active_chats"] >= 1
    await client.call("chat/stop", {"requestId": request_id, "sessionId": session_id})
    await eventually(lambda: shared_sim.status()["active_chats"] == 0)
    assert not any(is_finish(request_id)(m) for m in client.inbox)
    await client.close()


@on_loop
async def test_slow_tokens_fault_still_completes(shared_sim: Sim) -> None:
    client = await Client.connect(shared_sim)
    _, request_id, _ = await ask(client, "go slowly please")
    await client.wait_for(lambda m: m["method"] == "chat/answer" and _params(m)["text"] == "one ")
    assert shared_sim.status()["active_chats"] >= 1  # still streaming between tokens
    await client.wait_for(is_finish(request_id))
    assert answer_text(client.stream(request_id)) == "one two three four five six seven eight nine ten"
    await client.close()


@on_loop
async def test_crash_fault_exits_with_code_1_after_two_deltas(launch: Callable[..., Sim]) -> None:
    sim = launch()

    client = await Client.connect(sim)
    _, request_id, _ = await ask(client, "crash now")
    with pytest.raises(ConnectionError):
        await client.wait_for(is_finish(request_id))
    assert len([m for m in client.stream(request_id) if m["method"] == "chat/answer" and _params(m)["text"]]) == 2

    assert sim.process.wait(timeout=10) == 1


@on_loop
async def test_logged_out_fault_logs_the_instance_out(launch: Callable[..., Sim]) -> None:
    sim = launch()

    client = await Client.connect(sim)
    reply, _, _ = await ask(client, "log me out")
    assert reply["result"]["status"] == 401 and reply["result"]["success"] is False
    assert (await client.call("auth/status", {}))["result"]["status"] == 1
    await client.close()

    assert not (sim.work_dir / "cache" / "user").exists()


@on_loop
async def test_unacked_requests_are_logged_and_error_acks_counted(launch: Callable[..., Sim]) -> None:
    sim = launch(LINGMA_SIM_ACK_TIMEOUT_SEC="0.3")

    silent = await Client.connect(sim)
    silent.ack = None
    _, request_id, _ = await ask(silent, "nobody acks this")
    await silent.wait_for(is_finish(request_id))
    await eventually(lambda: sim.status()["unacked_timeouts"] >= 5)
    grumpy = await Client.connect(sim, ack={"error": {"code": -32000, "message": "no"}})
    await chat(grumpy, "errors are acks too")
    await eventually(lambda: sim.status()["ack_errors"] >= 5)

    assert "no response from client, timeout reached" in sim.output


@on_loop
async def test_concurrency_limit_refuses_an_extra_chat(launch: Callable[..., Sim]) -> None:
    sim = launch(LINGMA_SIM_MAX_CONCURRENT="1")

    client = await Client.connect(sim)
    _, slow_id, session_id = await ask(client, "go slowly")
    reply, _, _ = await ask(client, "a second chat")
    assert reply["error"] == {"code": -32603, "message": "too many concurrent requests"}
    await client.call("chat/stop", {"requestId": slow_id, "sessionId": session_id})
    await client.wait_for(is_finish(slow_id))
    await eventually(lambda: sim.status()["active_chats"] == 0)
    await chat(client, "now there is room")
    await client.close()

    assert sim.status()["max_active_chats"] == 1


@on_loop
async def test_scenario_file_is_reread_and_a_broken_one_falls_back_to_defaults(
    launch: Callable[..., Sim], tmp_path: Path
) -> None:
    scenario_path = tmp_path / "live.yaml"
    scenario_path.write_text('rules:\n  - match: "ping"\n    reply: "pong"\n', encoding="utf-8")
    sim = launch(LINGMA_SIM_SCENARIO=str(scenario_path))

    client = await Client.connect(sim)
    assert answer_text((await chat(client, "ping"))[0]) == "pong"
    scenario_path.write_text('rules:\n  - match: "ping"\n    reply: "PONG"\n', encoding="utf-8")
    os.utime(scenario_path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert answer_text((await chat(client, "ping"))[0]) == "PONG"
    scenario_path.write_text("rules: [unclosed", encoding="utf-8")
    assert answer_text((await chat(client, "ping"))[0]) == "Simulated reply (turn 1): ping"
    await client.close()

    assert "broken scenario" in sim.output


# --- login ----------------------------------------------------------------------------------------------


@on_loop
async def test_logged_out_instance_reports_status_1_and_refuses_chat(launch: Callable[..., Sim]) -> None:
    sim = launch(LINGMA_SIM_START_LOGGED_OUT="1")

    client = await Client.connect(sim)
    logged_out = {"status": 1, "token": "", "refreshToken": "", "accountId": ""}
    assert (await client.call("auth/status", {}))["result"] == logged_out
    assert (await client.call("config/queryModels", {}))["result"] == {}
    reply, request_id, _ = await ask(client, "hello")
    refused = {"requestId": request_id, "success": False, "isSuccess": False, "status": 401}
    assert reply["result"] == {**refused, "errorMessage": "user not login"}
    await asyncio.sleep(0.3)
    assert client.inbox == []  # no stream for a refused ask
    await client.close()

    assert (sim.work_dir / "cache" / "id").exists() and not (sim.work_dir / "cache" / "user").exists()


def test_login_page_flow_logs_in_and_survives_a_restart(launch: Callable[..., Sim]) -> None:
    sim = launch(LINGMA_SIM_START_LOGGED_OUT="1", LINGMA_SIM_PASSWORD="s3cret")

    async def login_url() -> str:
        client = await Client.connect(sim)
        result = (await client.call("login/generateUrl", {"loginDedicatedType": ""}))["result"]
        await client.close()
        assert result["success"] is True and result["errorCode"] == "" and result["errorMsg"] == ""
        return result["loginUrl"]

    url = run(login_url())
    pattern = (
        rf"http://127\.0\.0\.1:{sim.http_port}/lingma/login\?nonce=([0-9a-f]{{32}})&port={sim.http_port}"
        r"&state=\1&challenge=[\w-]+&challenge_method=S256&machine_id=\w+"
    )
    nonce = re.fullmatch(pattern, url).group(1)  # type: ignore[union-attr]
    page = httpx.get(url).text
    assert '<input name="password" type="password"' in page and '<button type="submit">' in page and nonce in page
    login_page = f"http://127.0.0.1:{sim.http_port}/lingma/login"
    wrong = httpx.post(login_page, data={"nonce": nonce, "username": "ada@example.com", "password": "guess-me"})
    assert '<div class="error">Invalid username or password</div>' in wrong.text and "guess-me" not in wrong.text
    right = httpx.post(login_page, data={"nonce": nonce, "username": "ada@example.com", "password": "s3cret"})
    assert right.status_code == 302 and right.headers["location"].startswith(f"/auth/callback?state={nonce}&auth=")
    callback = httpx.get(f"http://127.0.0.1:{sim.http_port}{right.headers['location']}")
    assert callback.status_code == 200 and "Login successful" in callback.text
    replayed = httpx.get(f"http://127.0.0.1:{sim.http_port}{right.headers['location']}")
    assert replayed.status_code == 400 and "Invalid login nonce" in replayed.text

    async def auth_status(target: Sim) -> dict[str, Any]:
        client = await Client.connect(target)
        result = (await client.call("auth/status", {}))["result"]
        await client.close()
        return result

    assert run(auth_status(sim))["name"] == "ada@example.com"
    assert sim.stop() == 0
    restarted = start_sim(sim.work_dir)
    try:
        status = run(auth_status(restarted))
        assert status["status"] == 2 and status["name"] == "ada@example.com"
    finally:
        assert restarted.stop() == 0
    offline = ujson.loads(run_cli("status", "-o", "json", "--workDir", str(sim.work_dir)))
    assert offline == {
        "logged_in": True,
        "username": "ada@example.com",
        "user_type": "personal_standard",
        "version": "2.11.1-sim",
    }


def test_work_dir_layout_and_version_command(shared_sim: Sim) -> None:
    info = ujson.loads((shared_sim.work_dir / ".info.json").read_text())
    assert info == {"websocketPort": shared_sim.socket_port, "pid": shared_sim.process.pid, "ipcServerPath": ""}
    assert (shared_sim.work_dir / "cache" / "id").read_text().strip()
    assert "logged in as demo@simulator" in (shared_sim.work_dir / "logs" / "lingma.log").read_text()
    assert run_cli("version").strip() == "2.11.1-sim"


# --- agent dialect ----------------------------------------------------------------------------------------


def _updates(client: Client, request_id: str) -> list[dict[str, Any]]:
    return [
        _params(m)["update"]
        for m in client.inbox
        if m["method"] == "session/update" and _params(m)["_meta"]["ai-coding/request-id"] == request_id
    ]


def _chunks(client: Client, request_id: str, kind: str = "agent_message_chunk") -> str:
    return "".join(u["content"]["text"] for u in _updates(client, request_id) if u["sessionUpdate"] == kind)


async def _prompt(client: Client, session_id: str, text: str, request_id: str | None) -> dict[str, Any]:
    meta = {"ai-coding/request-id": request_id} if request_id else {}
    params = {"sessionId": session_id, "prompt": [{"type": "text", "text": text}], "_meta": meta}
    return await client.call("session/prompt", params)


async def _new_session(client: Client, model: str | None = "dashscope_qwen3_coder") -> str:
    created = await client.call("session/new", {"cwd": "/tmp", "mcpServers": [], "_meta": {}})
    session_id = created["result"]["sessionId"]
    if model:
        await client.call("session/set_model", {"sessionId": session_id, "modelId": model})
    return session_id


@on_loop
async def test_agent_dialect_prompt_streams_session_updates(launch: Callable[..., Sim]) -> None:
    sim = launch(dialect="acp")

    client = await Client.connect(sim)
    session_id = await _new_session(client, model=None)
    assert (await _prompt(client, session_id, "hi", "acp-0"))["error"]["message"] == "model key is empty"
    await client.call("session/set_model", {"sessionId": session_id, "modelId": "dashscope_qwen3_coder"})
    assert (await _prompt(client, session_id, "hi", None))["error"]["message"] == "requestId is empty"
    reply = await _prompt(client, session_id, "my name is Grace", "acp-1")
    assert reply["result"] == {"stopReason": "end_turn"}
    stream = _updates(client, "acp-1")  # all of it arrived before the prompt's own response
    assert _chunks(client, "acp-1") == "Simulated reply (turn 1): my name is Grace"
    assert sum(u["sessionUpdate"] == "agent_message_chunk" for u in stream) >= 3
    notifications = [u for u in stream if u["sessionUpdate"] == "notification"]
    assert [u["type"] for u in notifications] == ["context_usage", "chat_finish"]
    assert stream[-1] is notifications[-1]
    assert stream[-1]["data"] == {"reason": "success", "fullAnswer": _chunks(client, "acp-1")}
    await _prompt(client, session_id, "what is my name", "acp-2")
    assert _chunks(client, "acp-2") == "Your name is Grace."
    await _prompt(client, session_id, "think in requests", "acp-3")
    assert _chunks(client, "acp-3", "agent_thought_chunk") == "First I consider the question, then I answer."
    await client.close()

    status = sim.status()
    assert status["dialect"] == "acp" and [a["isReply"] for a in status["asks"]] == [False, True, True]


@on_loop
async def test_agent_dialect_faults_and_cancel(launch: Callable[..., Sim]) -> None:
    sim = launch(LINGMA_SIM_DIALECT="acp")

    client = await Client.connect(sim)
    session_id = await _new_session(client)
    failed = await _prompt(client, session_id, "finish badly", "acp-1")
    assert failed["error"]["message"] == "model overloaded"
    assert _updates(client, "acp-1")[-1]["data"]["reason"] == "model overloaded"
    assert (await _prompt(client, session_id, "plan info please", "acp-2"))["error"]["code"] == -32603
    slow = asyncio.ensure_future(_prompt(client, session_id, "go slowly", "acp-3"))
    await client.wait_for(lambda m: bool(_updates(client, "acp-3")))
    client.send({"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": session_id, "_meta": {}}})
    assert (await slow)["result"] == {"stopReason": "cancelled"}
    assert _updates(client, "acp-3")[-1]["data"]["reason"] == "stopped"
    await client.close()
