"""The IPC layer against a real simulator child, started through our own process layer; no mocks."""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from harness.simulator import SimInstance, running_simulator
from lingma_proxy.errors import ApiError
from lingma_proxy.events import NativeToolCall, TextDelta, ThinkDelta, UpstreamFinish
from lingma_proxy.redact import Redactor
from lingma_proxy.upstream.client import ChatRequest, LingmaClient
from lingma_proxy.upstream.process import LingmaProcess, LingmaStartError, free_port
from lingma_proxy.upstream.tool_replies import HOLD_GRACE_SEC, tool_result

pytestmark = pytest.mark.timeout(60)
TEST_BUDGET_SEC = 45


def async_test(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Run an async test on a fresh event loop, bounded so nothing can hang the suite."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(test(*args, **kwargs), TEST_BUDGET_SEC))

    return run


def ask(question: str, session_id: str | None = None, is_reply: bool = False) -> ChatRequest:
    return ChatRequest(
        question=question,
        model_key="dashscope_qwen3_coder",
        session_id=session_id or str(uuid.uuid4()),
        request_id=str(uuid.uuid4()),
        is_reply=is_reply,
    )


async def collect(client: LingmaClient, request: ChatRequest) -> list[Any]:
    return [event async for event in client.chat(request)]


def text_of(events: list[Any]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


async def status_when(sim: SimInstance, ready: Callable[[dict], bool], timeout: float = 5.0) -> dict:
    """The simulator's status once `ready(status)` holds (counters trail the stream by a moment)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    status = await sim.status()
    while not ready(status) and loop.time() < deadline:
        await asyncio.sleep(0.05)
        status = await sim.status()
    return status


# --- handshake, account, models ------------------------------------------------------------


@async_test
async def test_initialize_auth_status_and_models(tmp_path: Path) -> None:
    async with running_simulator(tmp_path) as sim:
        client = await sim.client()
        assert client.dialect_name == "classic"
        assert client.server_info.get("name") == "lingma"
        status = await client.auth_status()
        assert status.logged_in and status.name
        assert status.raw["token"] == "***" and status.raw["refreshToken"] == "***"
        models = await client.query_models()
        assert models["chat"] and all(model["key"] for model in models["chat"])
        await client.update_endpoint("https://example.invalid/lingma")
        assert await client.get_endpoint() == "https://example.invalid/lingma"


@async_test
async def test_logged_out_instance_reports_it_and_chat_is_unavailable(tmp_path: Path) -> None:
    async with running_simulator(tmp_path, env={"LINGMA_SIM_START_LOGGED_OUT": "1"}) as sim:
        client = await sim.client()
        status = await client.auth_status()
        assert not status.logged_in
        assert await client.query_models() == {}
        assert "/lingma/login?" in await client.generate_login_url()
        with pytest.raises(ApiError) as failure:
            await collect(client, ask("hello"))
        assert failure.value.kind == "unavailable" and "python lingma_proxy.py login" in failure.value.message


# --- streaming -----------------------------------------------------------------------------


@async_test
async def test_streamed_chat_yields_ordered_deltas_then_one_finish(tmp_path: Path) -> None:
    reply = "alpha beta gamma delta epsilon zeta"
    rules = [{"match": "stream me", "reply": reply, "chunk_chars": 5, "think": "pondering"}]
    async with running_simulator(tmp_path, rules=rules) as sim:
        client = await sim.client()
        events = await collect(client, ask("please stream me something"))
        deltas = [event for event in events if isinstance(event, TextDelta)]
        assert len(deltas) >= 3 and all(delta.text for delta in deltas)
        assert text_of(events) == reply
        assert "".join(e.text for e in events if isinstance(e, ThinkDelta)) == "pondering"
        assert isinstance(events[-1], UpstreamFinish)
        assert sum(isinstance(event, UpstreamFinish) for event in events) == 1


@async_test
async def test_megabyte_multibyte_prompt_is_echoed_intact(tmp_path: Path) -> None:
    prompt = "ECHO " + "通义灵码的测试文本😀🚀 mixed ASCII, ñ, and 漢字。\n" * 16_000
    assert len(prompt.encode("utf-8")) > 1_000_000
    rules = [{"match": "^ECHO", "echo": True, "chunk_chars": 65_536}]
    async with running_simulator(tmp_path, rules=rules) as sim:
        client = await sim.client()
        events = await collect(client, ask(prompt))
        assert text_of(events) == prompt
        status = await sim.status()
        assert status["total_question_bytes"] == len(prompt.encode("utf-8"))


@async_test
async def test_native_tool_call_surfaces_and_its_result_reaches_lingma(tmp_path: Path) -> None:
    tool = {"name": "read_file", "parameters": {"path": "README.md"}}
    rules = [{"match": "use a tool", "native_tool": tool, "reply": "after the tool"}]
    async with running_simulator(tmp_path, rules=rules) as sim:
        client = await sim.client()
        stream = client.chat(ask("please use a tool"))
        call = await anext(stream)
        assert isinstance(call, NativeToolCall) and call.name == "read_file"
        assert call.parameters == {"path": "README.md"}
        await client.tool_invoke_result(tool_result(call.tool_call_id, call.name, success=False, error_message="not forwarded"))
        rest = [event async for event in stream]
        assert "not forwarded" in text_of(rest) and isinstance(rest[-1], UpstreamFinish)


@async_test
async def test_a_held_tool_reply_that_nobody_answers_is_answered_as_failed(tmp_path: Path) -> None:
    """QoderCN takes a tool's result in the reply to its tool/invoke (§6): a reply held for a result that never
    comes is answered as failed once the hold (rpc_timeout + HOLD_GRACE_SEC) runs out, and the chat goes on."""
    tool = {"name": "read_file", "parameters": {"path": "README.md"}}
    rules = [{"match": "use a tool", "native_tool": tool, "reply": "after the tool"}]
    async with running_simulator(tmp_path, rules=rules, env={"LINGMA_SIM_FAMILY": "qodercn"}) as sim:
        client = await sim.client(rpc_timeout=1.0)
        stream = client.chat(ask("please use a tool"))
        call = await anext(stream)
        assert isinstance(call, NativeToolCall) and call.name == "read_file"
        await asyncio.sleep(1.0 + HOLD_GRACE_SEC + 1.0)  # nobody answers; the stream is not read meanwhile
        rest = [event async for event in stream]
        assert "error: no result in time" in text_of(rest) and isinstance(rest[-1], UpstreamFinish)
        assert (await sim.status())["tool_results"] == {"reply": 1, "invoke_result": 0}


@async_test
async def test_twenty_concurrent_chats_each_get_their_own_reply(tmp_path: Path) -> None:
    rules = [{"match": "^concurrent", "echo": True, "chunk_chars": 3, "chunk_delay_ms": 2}]
    async with running_simulator(tmp_path, rules=rules) as sim:
        client = await sim.client()
        prompts = [f"concurrent chat number {n}: {'xyz' * n}" for n in range(20)]
        results = await asyncio.gather(*(collect(client, ask(prompt)) for prompt in prompts))
        assert [text_of(events) for events in results] == prompts
        assert all(isinstance(events[-1], UpstreamFinish) for events in results)
        assert (await sim.status())["max_active_chats"] > 1  # they really did interleave


@async_test
async def test_every_server_request_is_acked(tmp_path: Path) -> None:
    rules = [{"match": ".", "think": "hmm", "chunk_chars": 4}]
    env = {"LINGMA_SIM_ACK_TIMEOUT_SEC": "1"}
    async with running_simulator(tmp_path, rules=rules, env=env) as sim:
        client = await sim.client()
        for n in range(3):
            await collect(client, ask(f"question {n} with a few words"))
        status = await status_when(sim, lambda s: s["acks"] >= s["server_requests"])
        assert status["server_requests"] > 10
        assert status["acks"] >= status["server_requests"]
        assert status["ack_errors"] == 0
        await asyncio.sleep(1.2)  # past the simulator's ack timeout: nothing may have gone unanswered
        assert (await sim.status())["unacked_timeouts"] == 0


@async_test
async def test_cancel_stops_the_stream_upstream(tmp_path: Path) -> None:
    rules = [{"match": "long", "reply": "word " * 200, "chunk_chars": 5, "chunk_delay_ms": 20}]
    async with running_simulator(tmp_path, rules=rules) as sim:
        client = await sim.client()
        request = ask("a long answer please")
        stream = client.chat(request)
        first = await anext(stream)
        assert isinstance(first, TextDelta)
        await stream.cancel()
        assert [event async for event in stream] == []
        await stream.aclose()
        status = await status_when(sim, lambda s: s["active_chats"] == 0)
        assert request.request_id in status["stops"]
        assert status["active_chats"] == 0


# --- failures ------------------------------------------------------------------------------


@async_test
async def test_hung_upstream_times_out(tmp_path: Path) -> None:
    async with running_simulator(tmp_path, rules=[{"match": "hang", "fault": "hang"}]) as sim:
        client = await sim.client(rpc_timeout=0.5)
        stream = client.chat(ask("please hang"))
        with pytest.raises(ApiError) as failure:
            [event async for event in stream]
        assert failure.value.kind == "timeout"
        await stream.cancel()  # the proxy stops an abandoned chat; the hung one is still upstream
        await stream.aclose()
        assert any(stop for stop in (await sim.status())["stops"])


@async_test
async def test_rpc_error_and_finish_error_are_classified(tmp_path: Path) -> None:
    rules = [
        {"match": "quota", "fault": "rpc_error", "message": "quota exceeded for today"},
        {"match": "toolong", "fault": "finish_error", "message": "context length exceeded", "status_code": 400},
        {"match": "broken", "fault": "finish_error", "message": "model service error", "status_code": 500},
    ]
    async with running_simulator(tmp_path, rules=rules) as sim:
        client = await sim.client()
        failures = []
        for question in ("quota", "toolong", "broken"):
            with pytest.raises(ApiError) as failure:
                await collect(client, ask(question))
            failures.append(failure.value)
        assert failures[0].kind == "rate_limit" and failures[0].retry_after
        assert failures[1].kind == "invalid_request" and failures[1].code == "context_length_exceeded"
        assert failures[2].kind == "upstream" and "model service error" in failures[2].message


@async_test
async def test_crash_mid_stream_fails_the_stream_and_the_process_reports_death(tmp_path: Path) -> None:
    async with running_simulator(tmp_path, rules=[{"match": "boom", "fault": "crash_mid_stream"}]) as sim:
        exits: list[int | None] = []
        sim.process.on_exit = exits.append
        client = await sim.client()
        with pytest.raises(ApiError) as failure:
            await collect(client, ask("boom"))
        assert failure.value.kind == "upstream" and failure.value.code == "upstream_crashed"
        assert await asyncio.wait_for(sim.process.wait_exit(), 5) == 1
        assert not sim.process.alive and exits == [1] and client.closed
        assert not Path(f"/proc/{sim.process.pid}").exists()


# --- the agent dialect ---------------------------------------------------------------------


@async_test
async def test_acp_dialect_end_to_end_with_auto_probe(tmp_path: Path) -> None:
    rules = [{"match": "think first", "think": "deliberating", "reply": "done thinking"}]
    async with running_simulator(tmp_path, rules=rules, dialect="acp") as sim:
        client = await sim.client()
        assert client.dialect_name == "acp"
        events = await collect(client, ask("think first, then answer"))
        assert text_of(events) == "done thinking"
        assert "".join(e.text for e in events if isinstance(e, ThinkDelta)) == "deliberating"
        assert isinstance(events[-1], UpstreamFinish)
        first = ask("my name is Ada")
        await collect(client, first)
        follow_up = await collect(client, ask("what is my name?", first.session_id, is_reply=True))
        assert text_of(follow_up) == "Your name is Ada."
        await client.delete_session(first.session_id)


@async_test
async def test_acp_failure_on_the_prompt_reply_is_not_a_success(tmp_path: Path) -> None:
    rules = [{"match": "broken", "fault": "finish_error", "message": "model service error"}]
    async with running_simulator(tmp_path, rules=rules, dialect="acp") as sim:
        client = await sim.client()
        with pytest.raises(ApiError) as failure:
            await collect(client, ask("broken"))
        assert failure.value.kind == "upstream"


# --- the process layer ---------------------------------------------------------------------

# A stand-in child: a chatty WebSocket server on --socketPort that ignores SIGINT.
_STUBBORN_CHILD = """
import asyncio, signal, sys
from tornado.web import Application
from tornado.websocket import WebSocketHandler
signal.signal(signal.SIGINT, signal.SIG_IGN)
for n in range(40_000):
    sys.stdout.write(f"log line {n} token=pt-{n:032x} " + "x" * 80 + "\\n")
sys.stdout.flush()
port = int(next(a for a in sys.argv if a.startswith("--socketPort=")).split("=")[1])
async def main():
    Application([(r"/.*", WebSocketHandler)]).listen(port, "127.0.0.1")
    await asyncio.Event().wait()
asyncio.run(main())
"""


def stub_process(tmp_path: Path, code: str) -> LingmaProcess:
    return LingmaProcess(
        [sys.executable, "-c", code],
        tmp_path / "work",
        free_port(),
        free_port(),
        name="stub",
        log=logging.getLogger("tests.child.stub"),
        redact=Redactor().redact,
    )


@async_test
async def test_chatty_child_never_blocks_and_sigint_resistant_child_is_killed(tmp_path: Path) -> None:
    process = stub_process(tmp_path, _STUBBORN_CHILD)
    await process.start(timeout=20)  # 4 MB of output first: it only gets ready if we drain it
    tail = process.output_tail(3)
    assert tail[-1].startswith("log line 39999 token=***")  # redacted before it is kept or logged
    await process.stop(grace=0.3)
    assert process.exit_status == -9 and not process.alive
    assert not Path(f"/proc/{process.pid}").exists()
    await process.stop()  # idempotent


@async_test
async def test_start_fails_with_the_childs_last_output_when_it_exits_early(tmp_path: Path) -> None:
    process = stub_process(tmp_path, "import sys; print('fatal: cannot bind'); sys.exit(3)")
    with pytest.raises(LingmaStartError) as failure:
        await process.start(timeout=10)
    assert "fatal: cannot bind" in str(failure.value) and process.exit_status == 3


@async_test
async def test_stop_interrupts_the_simulator_and_leaves_no_zombie(tmp_path: Path) -> None:
    async with running_simulator(tmp_path) as sim:
        process = sim.process
        assert process.alive and Path(f"/proc/{process.pid}").exists()
    assert not process.alive and process.exit_status is not None
    assert not Path(f"/proc/{process.pid}").exists()
