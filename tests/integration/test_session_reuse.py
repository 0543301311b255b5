"""Session reuse and affinity end to end (docs/features.md §2–§3): real proxy, simulator children, official SDKs.

The simulator keeps server-side sessions keyed by our `sessionId` and records every `chat/ask`
(`isReply`, `sessionId`, question size) on its status page, so each test can see exactly what went
upstream: a hit must arrive as a small `isReply: true` delta in the session that holds the history.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from harness.proxy import Proxy, start_proxy, wait_until_ready

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("sim_dialect")]

SLOW_MARK = "SLOW-REPLY"
CALL_MARK = "CALL-THE-TOOL"
SCENARIO = f"""
rules:
  - match: "{SLOW_MARK}"
    reply: "one two three four five six seven eight"
    chunk_chars: 4
    chunk_delay_ms: 200
  - match: "{CALL_MARK}"
    reply: "```json action\\n{{\\"tool\\": \\"list_files\\", \\"parameters\\": {{\\"path\\": \\"src\\"}}}}\\n```"
"""
LIST_FILES = {
    "name": "list_files",
    "description": "List the files of a directory.",
    "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
}
SYSTEM = "You are a careful coding agent. " * 20  # long enough that a full resend is obviously not a delta
USER_TEXTS = ["first question", "second question", "third question", "fourth question", "fifth question"]
DELTA_OVERHEAD = 64  # role markers around the new text in a rendered delta


# ---- helpers ------------------------------------------------------------------------------


def scenario_config(tmp_path: Path, extra: dict | None = None) -> dict:
    path = tmp_path / "session_reuse.yaml"
    path.write_text(SCENARIO)
    config: dict[str, Any] = {"lingma": {"simulator": {"scenario": str(path)}}}
    return {**config, **(extra or {})}


def stats(proxy: Proxy, key: str = "") -> dict:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = httpx.get(f"{proxy.url}/internal/stats", headers=headers, timeout=5)
    response.raise_for_status()
    return response.json()


def cache(proxy: Proxy, key: str = "") -> dict:
    return stats(proxy, key)["session_cache"]


def asks(proxy: Proxy, instance: int = 0) -> list[dict]:
    return proxy.sim_status(instance)["asks"]


def last_ask(proxy: Proxy, instance: int = 0) -> dict:
    return asks(proxy, instance)[-1]


def openai_client(proxy: Proxy, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=key, max_retries=0, timeout=30)


def anthropic_client(proxy: Proxy) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.url, api_key="unused", max_retries=0, timeout=30)


def chat(client: openai.OpenAI, messages: list[dict]) -> str:
    """One turn; the assistant reply is appended to `messages` exactly as the SDK returned it."""
    completion = client.chat.completions.create(model="auto", messages=messages)
    messages.append(completion.choices[0].message.model_dump(exclude_none=True))
    return completion.choices[0].message.content or ""


def chat_served_by(client: openai.OpenAI, text: str) -> str:
    completion = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": text}])
    return completion.model_extra["served_by"]


def simulator_pid(work_dir: Path) -> int:
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
            except OSError:
                continue
            if f"--workDir={work_dir}" in argv:
                return int(proc.name)
    raise LookupError(f"no simulator child for {work_dir}")


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


def in_background(call: Callable[[], Any]) -> threading.Thread:
    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread


def assert_deltas(proxy: Proxy, first: dict, later: list[dict], new_texts: list[str]) -> None:
    """Turns 2–5 continue turn 1's session with a delta the size of the new text, not the history."""
    assert first["isReply"] is False
    for ask, text in zip(later, new_texts, strict=True):
        assert ask["isReply"] is True
        assert ask["sessionId"] == first["sessionId"]
        assert ask["question_bytes"] <= len(text.encode()) + DELTA_OVERHEAD, ask
    status = proxy.sim_status(0)
    assert status["sessions"][first["sessionId"]] == 1 + len(later)


# ---- one proxy, reuse on, one instance ------------------------------------------------------


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory, sim_dialect: str) -> Proxy:
    tmp = Path(tmp_path_factory.mktemp("session_reuse"))
    started = start_proxy(tmp, scenario_config(tmp), dialect=sim_dialect)
    yield started
    started.stop()


def test_openai_chat_five_turns_send_only_the_delta_in_one_session(proxy):
    client = openai_client(proxy)
    before, asks_before = cache(proxy), proxy.sim_status(0)["ask_count"]
    messages: list[dict] = []
    replies = []
    for text in USER_TEXTS:
        messages.append({"role": "user", "content": text})
        replies.append(chat(client, messages))
    # The simulator numbers the turns of its session: only a reused session reaches turn 5.
    assert replies == [f"Simulated reply (turn {n}): {text}" for n, text in enumerate(USER_TEXTS, 1)]
    after = cache(proxy)
    assert (after["misses"] - before["misses"], after["hits"] - before["hits"]) == (1, 4)
    assert proxy.sim_status(0)["ask_count"] - asks_before == len(USER_TEXTS)
    turns = asks(proxy)[-len(USER_TEXTS) :]
    assert [ask["question_bytes"] for ask in turns] == [len(text.encode()) for text in USER_TEXTS]
    assert_deltas(proxy, turns[0], turns[1:], USER_TEXTS[1:])


def test_responses_five_turns_replaying_items_like_codex(proxy):
    client = openai_client(proxy)
    before = cache(proxy)
    history: list[dict] = []
    turns = []
    for text in USER_TEXTS:
        history.append({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
        response = client.responses.create(model="auto", instructions=SYSTEM, input=history, store=False)
        history.extend(item.model_dump(exclude_none=True) for item in response.output)
        assert response.output_text.startswith(f"Simulated reply (turn {len(turns) + 1})")
        turns.append(last_ask(proxy))
    after = cache(proxy)
    assert (after["misses"] - before["misses"], after["hits"] - before["hits"]) == (1, 4)
    assert turns[0]["question_bytes"] > len(SYSTEM)
    assert_deltas(proxy, turns[0], turns[1:], USER_TEXTS[1:])


def test_anthropic_five_turns_with_a_tool_call_and_its_result_as_deltas(proxy):
    client = anthropic_client(proxy)
    before = cache(proxy)
    tool_output = "main.py\nutil.py"
    texts = ["hello there", f"{CALL_MARK} on src", None, "thanks, and now?", "last one"]
    messages: list[dict] = []
    turns = []
    for text in texts:
        if text is None:  # answer the tool call the model just made, as Claude Code does
            call = messages[-1]["content"][-1]
            assert call["type"] == "tool_use" and call["name"] == "list_files" and call["input"] == {"path": "src"}
            result = {"type": "tool_result", "tool_use_id": call["id"], "content": tool_output}
            messages.append({"role": "user", "content": [result]})
        else:
            messages.append({"role": "user", "content": text})
        reply = client.messages.create(
            model="auto", max_tokens=1024, system=SYSTEM, tools=[LIST_FILES], messages=messages
        )
        content = [block.model_dump(exclude_none=True) for block in reply.content]
        messages.append({"role": "assistant", "content": content})
        turns.append(last_ask(proxy))
    after = cache(proxy)
    assert (after["misses"] - before["misses"], after["hits"] - before["hits"]) == (1, 4)
    assert turns[0]["question_bytes"] > len(SYSTEM)
    assert "[Tool result: list_files #1]" in turns[2]["question_head"]
    assert_deltas(proxy, turns[0], turns[1:], [text or tool_output for text in texts[1:]])


def test_the_second_turn_is_answered_from_the_upstream_sessions_memory(proxy):
    client = openai_client(proxy)
    messages = [{"role": "user", "content": "my name is Ada"}]
    chat(client, messages)
    messages.append({"role": "user", "content": "what is my name?"})
    assert chat(client, messages) == "Your name is Ada."
    first, second = asks(proxy)[-2:]
    assert second["isReply"] is True and second["sessionId"] == first["sessionId"]
    assert second["question_head"] == "what is my name?"  # the name itself was not resent


def test_an_edited_history_misses_and_starts_a_new_session(proxy):
    client = openai_client(proxy)
    messages = [{"role": "user", "content": "tell me about cats"}]
    chat(client, messages)
    messages.append({"role": "user", "content": "and their history?"})
    chat(client, messages)
    first = asks(proxy)[-2]
    before = cache(proxy)
    messages[0]["content"] = "tell me about dogs"
    messages.append({"role": "user", "content": "and their food?"})
    chat(client, messages)
    after, edited = cache(proxy), last_ask(proxy)
    assert (after["misses"] - before["misses"], after["hits"] - before["hits"]) == (1, 0)
    assert edited["isReply"] is False and edited["sessionId"] != first["sessionId"]
    assert edited["question_head"].startswith("[User]\ntell me about dogs")
    assert edited["question_bytes"] > len("tell me about dogs and their history? and their food?")


# ---- proxies with their own settings --------------------------------------------------------


def test_a_killed_instance_falls_back_to_a_full_resend(make_proxy, tmp_path):
    proxy = make_proxy(scenario_config(tmp_path))
    client = openai_client(proxy)
    messages = [{"role": "user", "content": "my name is Ada"}]
    chat(client, messages)
    first = last_ask(proxy)
    os.kill(simulator_pid(proxy.tmp / "instances" / "default" / "0"), signal.SIGKILL)
    wait_for(lambda: proxy.health()["instances"][0]["restarts"] >= 1 and wait_until_ready(proxy), "restart")
    messages.append({"role": "user", "content": "what is my name?"})
    assert chat(client, messages) == "Your name is Ada."
    resent = last_ask(proxy)  # the restarted simulator's status page only knows the new ask
    assert resent["isReply"] is False and resent["sessionId"] != first["sessionId"]
    assert "my name is Ada" in resent["question_head"]


def test_an_expired_entry_misses_and_its_upstream_session_is_deleted(make_proxy, tmp_path):
    proxy = make_proxy(scenario_config(tmp_path, {"sessions": {"cache_ttl_sec": 1}}))
    client = openai_client(proxy)
    messages = [{"role": "user", "content": "remember this"}]
    chat(client, messages)
    expired = last_ask(proxy)["sessionId"]
    time.sleep(1.3)
    messages.append({"role": "user", "content": "still there?"})
    assert chat(client, messages).startswith("Simulated reply (turn 1)")
    assert last_ask(proxy)["isReply"] is False
    assert cache(proxy) == {"entries": 1, "hits": 0, "misses": 2, "evictions": 1}  # both turns missed
    wait_for(lambda: expired in proxy.sim_status(0)["deleted_sessions"], "the upstream deletion", timeout=5)


def test_the_least_recently_used_entry_is_evicted_and_deleted(make_proxy, tmp_path):
    proxy = make_proxy(scenario_config(tmp_path, {"sessions": {"cache_max_entries": 2}}))
    client = openai_client(proxy)
    conversations = {name: [{"role": "user", "content": f"conversation {name}"}] for name in "ABC"}
    sessions = {}
    for name, messages in conversations.items():
        chat(client, messages)
        sessions[name] = last_ask(proxy)["sessionId"]
    assert cache(proxy)["evictions"] == 1
    wait_for(lambda: sessions["A"] in proxy.sim_status(0)["deleted_sessions"], "A's upstream deletion", timeout=5)
    for name, reused in (("B", True), ("C", True), ("A", False)):
        conversations[name].append({"role": "user", "content": f"more about {name}"})
        chat(client, conversations[name])
        assert last_ask(proxy)["isReply"] is reused, name
        assert (last_ask(proxy)["sessionId"] == sessions[name]) is reused, name


def test_two_api_keys_never_share_a_session(make_proxy, tmp_path):
    proxy = make_proxy(scenario_config(tmp_path, {"auth": {"api_keys": ["key-one", "key-two"]}}))
    one, two = openai_client(proxy, "key-one"), openai_client(proxy, "key-two")
    messages = [{"role": "user", "content": "a shared opening"}]
    chat(one, messages)
    first = last_ask(proxy)
    messages.append({"role": "user", "content": "a shared follow-up"})
    chat(two, list(messages))
    assert last_ask(proxy)["isReply"] is False and last_ask(proxy)["sessionId"] != first["sessionId"]
    chat(one, list(messages))  # the first key's entry was not consumed by the second key's miss
    assert last_ask(proxy)["isReply"] is True and last_ask(proxy)["sessionId"] == first["sessionId"]
    assert cache(proxy, "key-one")["hits"] == 1
    assert httpx.get(f"{proxy.url}/internal/stats", timeout=5).status_code == 401  # admin only


def test_reuse_off_resends_everything_every_turn(make_proxy, tmp_path):
    proxy = make_proxy(scenario_config(tmp_path, {"sessions": {"reuse": False}}))
    client = openai_client(proxy)
    messages: list[dict] = []
    for text in USER_TEXTS[:3]:
        messages.append({"role": "user", "content": text})
        assert chat(client, messages).startswith("Simulated reply (turn 1)")
    turns = asks(proxy)
    assert [ask["isReply"] for ask in turns] == [False] * 3
    assert len({ask["sessionId"] for ask in turns}) == 3
    assert turns[2]["question_bytes"] > turns[1]["question_bytes"] > turns[0]["question_bytes"]
    assert cache(proxy) == {"entries": 0, "hits": 0, "misses": 0, "evictions": 0}


# ---- two instances: affinity and spreading --------------------------------------------------


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, sim_dialect: str) -> Proxy:
    """Two logged-in simulator instances, a-0 and b-0 (a fresh simulator work dir starts logged in)."""
    tmp = Path(tmp_path_factory.mktemp("session_affinity"))
    started = start_proxy(tmp, scenario_config(tmp, {"accounts": [{"name": "a"}, {"name": "b"}]}), dialect=sim_dialect)
    try:
        wait_for(lambda: sum(i["state"] == "ready" for i in started.health()["instances"]) == 2, "both instances")
        yield started
    finally:
        started.stop()


def occupy_first_instance(proxy: Proxy) -> threading.Thread:
    """A slow request with no affinity: least-loaded puts it on a-0 while both are idle."""
    client = openai_client(proxy)
    thread = in_background(lambda: chat_served_by(client, f"{SLOW_MARK} {time.monotonic()}"))
    wait_for(lambda: stats(proxy)["pool"]["instances"][0]["in_flight"] == 1, "the slow request on a-0")
    return thread


def finish(thread: threading.Thread) -> None:
    thread.join(timeout=20)
    assert not thread.is_alive(), "the background request did not finish"


def asks_on(proxy: Proxy, marker: str) -> list[int]:
    """Which instances (0 = a-0, 1 = b-0) received a question containing `marker`."""
    return [i for i in (0, 1) for ask in asks(proxy, i) if marker in ask["question_head"]]


def test_a_hit_returns_to_its_instance_even_when_another_is_less_loaded(pair):
    client = openai_client(pair)
    slow = occupy_first_instance(pair)
    messages = [{"role": "user", "content": "opening on the idle instance"}]
    chat(client, messages)
    finish(slow)
    assert asks_on(pair, "opening on the idle instance") == [1]
    messages.append({"role": "user", "content": "follow-up"})
    chat(client, messages)  # both idle now: without the session it would go to a-0
    first, follow = asks(pair, 1)[-2:]
    assert follow["isReply"] is True and follow["sessionId"] == first["sessionId"]


@pytest.mark.parametrize("api", ["openai", "anthropic", "responses"])
def test_the_same_affinity_key_sticks_to_one_instance(pair, api):
    client = openai_client(pair)
    claude = anthropic_client(pair)
    user = f"alice-{api}"  # a key of its own: the pool's sticky map outlives each test

    def ask(text: str) -> None:
        if api == "openai":
            client.chat.completions.create(model="auto", messages=[{"role": "user", "content": text}], user=user)
        elif api == "anthropic":
            claude.messages.create(
                model="auto", max_tokens=64, metadata={"user_id": user}, messages=[{"role": "user", "content": text}]
            )
        else:
            client.responses.create(model="auto", input=text, prompt_cache_key=user, store=False)

    slow = occupy_first_instance(pair)
    ask(f"sticky first {api}")  # a-0 is busy, so the new key lands on b-0
    finish(slow)
    for n in range(3):  # both idle: least-loaded alone would pick a-0 every time
        ask(f"sticky again {api} {n}")
    assert asks_on(pair, f"sticky first {api}") == [1]
    assert asks_on(pair, f"sticky again {api}") == [1, 1, 1]


def test_concurrent_requests_without_affinity_spread_over_both_instances(pair):
    client = openai_client(pair)
    served: list[str] = []
    threads = [
        in_background(lambda n=n: served.append(chat_served_by(client, f"{SLOW_MARK} spread {n}"))) for n in range(4)
    ]
    for thread in threads:
        finish(thread)
    assert len(served) == 4 and set(served) == {"a-0", "b-0"}
    assert sorted(asks_on(pair, "spread")) == sorted(0 if name == "a-0" else 1 for name in served)
