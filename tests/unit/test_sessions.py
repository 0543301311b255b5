"""SessionCache without a server: keys, claiming, LRU, TTL, instance restarts and the off switch."""

from __future__ import annotations

import time

import pytest

from lingma_proxy.config import SessionsConfig
from lingma_proxy.events import ToolCall
from lingma_proxy.model import Conversation, Message, ToolSpec, ToolUse
from lingma_proxy.sessions import SessionCache, SessionEntry

pytestmark = pytest.mark.timeout(10)

KEY = "api-key-1"
MODEL = "qwen3-coder"


def make_cache(**settings) -> tuple[SessionCache, list[SessionEntry]]:
    deleted: list[SessionEntry] = []
    return SessionCache(SessionsConfig(**settings), deleted.append), deleted


def conv(*texts: str, **extra) -> Conversation:
    """Alternating user/assistant messages, starting with the user."""
    messages = [Message(role="user" if i % 2 == 0 else "assistant", text=t) for i, t in enumerate(texts)]
    return Conversation(model="auto", messages=messages, **extra)


def entry(session: str, instance: str = "default-0") -> SessionEntry:
    return SessionEntry(instance=instance, generation=1, session_id=session)


def remember(cache: SessionCache, history: Conversation, reply: str, session: str, **kwargs) -> SessionEntry:
    stored = entry(session, **kwargs)
    cache.store(KEY, MODEL, history, reply, [], stored)
    return stored


def test_the_next_turn_finds_the_stored_reply_and_claims_it_once():
    cache, _ = make_cache()
    stored = remember(cache, conv("hi"), "hello", "s1")
    plan = cache.plan(KEY, MODEL, conv("hi", "hello", "more"))
    assert plan.entry is stored and plan.start == 2
    assert cache.plan(KEY, MODEL, conv("hi", "hello", "more")).entry is None  # claimed: no two turns share it
    assert cache.stats() == {"entries": 0, "hits": 1, "misses": 1, "evictions": 0}


def test_a_first_turn_is_counted_as_a_miss():
    cache, _ = make_cache()
    assert cache.plan(KEY, MODEL, conv("hi")).entry is None
    assert cache.stats()["misses"] == 1


@pytest.mark.parametrize(
    ("api_key", "model", "history"),
    [
        ("api-key-2", MODEL, conv("hi", "hello", "more")),
        (KEY, "qwen-max", conv("hi", "hello", "more")),
        (KEY, MODEL, conv("hi, edited", "hello", "more")),
        (KEY, MODEL, conv("hi", "hello", "more", system="a new system prompt")),
        (KEY, MODEL, conv("hi", "hello", "more", tools=[ToolSpec("Bash")])),
    ],
    ids=["other api key", "other model", "edited message", "other system prompt", "other tools"],
)
def test_anything_the_meaning_depends_on_changes_the_key(api_key, model, history):
    cache, _ = make_cache()
    remember(cache, conv("hi"), "hello", "s1")
    assert cache.plan(api_key, model, history).entry is None
    assert cache.plan(KEY, MODEL, conv("hi", "hello", "more")).entry is not None  # the miss left it in place


def test_a_tool_call_reply_is_found_when_echoed_with_the_clients_own_ids_and_spacing():
    cache, _ = make_cache()
    tools = [ToolSpec("Bash", "Run a command", {"type": "object"})]
    first = Conversation(model="auto", messages=[Message(role="user", text="list")], tools=tools)
    stored = entry("s1")
    cache.store(KEY, MODEL, first, "", [ToolCall("call_abc", "Bash", '{"command":"ls","cwd":"."}')], stored)
    echoed = Message(role="assistant", tool_calls=[ToolUse("toolu_xyz", "Bash", '{"cwd": ".", "command": "ls"}')])
    result = Message(role="tool", text="a.txt", tool_call_id="toolu_xyz")
    following = Conversation(model="auto", messages=[first.messages[0], echoed, result], tools=tools)
    plan = cache.plan(KEY, MODEL, following)
    assert plan.entry is stored and plan.start == 2


def test_the_least_recently_stored_entry_is_evicted_and_deleted_upstream():
    cache, deleted = make_cache(cache_max_entries=2)
    oldest = remember(cache, conv("a"), "ra", "sa")
    remember(cache, conv("b"), "rb", "sb")
    remember(cache, conv("c"), "rc", "sc")
    assert deleted == [oldest]
    assert cache.stats() == {"entries": 2, "hits": 0, "misses": 0, "evictions": 1}
    assert cache.plan(KEY, MODEL, conv("a", "ra", "next")).entry is None
    assert cache.plan(KEY, MODEL, conv("b", "rb", "next")).entry is not None


def test_an_expired_entry_misses_and_is_deleted_upstream():
    cache, deleted = make_cache(cache_ttl_sec=0.05)
    stored = remember(cache, conv("hi"), "hello", "s1")
    time.sleep(0.1)
    assert cache.plan(KEY, MODEL, conv("hi", "hello", "more")).entry is None
    assert deleted == [stored]
    assert cache.stats() == {"entries": 0, "hits": 0, "misses": 1, "evictions": 1}


def test_a_restarted_instance_loses_only_its_own_entries_without_upstream_deletes():
    cache, deleted = make_cache()
    remember(cache, conv("a"), "ra", "sa", instance="a-0")
    remember(cache, conv("b"), "rb", "sb", instance="b-0")
    cache.forget_instance("a-0")
    assert deleted == []  # the restarted child has no sessions left to delete
    assert cache.plan(KEY, MODEL, conv("a", "ra", "next")).entry is None
    assert cache.plan(KEY, MODEL, conv("b", "rb", "next")).entry is not None


def test_reuse_off_neither_stores_nor_counts():
    cache, _ = make_cache(reuse="off")
    remember(cache, conv("hi"), "hello", "s1")
    assert cache.plan(KEY, MODEL, conv("hi", "hello", "more")).entry is None
    assert cache.stats() == {"entries": 0, "hits": 0, "misses": 0, "evictions": 0}
