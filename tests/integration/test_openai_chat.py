"""/v1/chat/completions and /v1/models through the official openai SDK, against the real server + simulator."""

from __future__ import annotations

import openai
import pytest

from harness.proxy import Proxy
from lingma_proxy.simulator.models import query_models_result

from .conftest import scenario_proxy

pytestmark = pytest.mark.timeout(60)

SEVERAL_CHUNKS_REPLY = "One two three four five six seven eight nine ten eleven twelve."
CHAT_THINK = "REASONING-CHAT: first the question, then the answer."
CHAT_THINK_REPLY = "Visible answer after chat thinking."
INLINE_THINK = "REASONING-INLINE: weighing the options."
INLINE_THINK_REPLY = "Visible answer after inline thinking."


chat_proxy = scenario_proxy(
    "api_openai_chat",
    # The 1 MB message is ~190k tokens: a model with a window that holds it, as the 1M-token Qwen ones do.
    {"lingma": {"context_windows": {"auto": 1_000_000}}},
    per="sim_runtime",
)


@pytest.fixture(scope="module")
def client(chat_proxy: Proxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{chat_proxy.url}/v1", api_key="unused", max_retries=0, timeout=30)


def ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_the_simulator_is_the_runtime_of_this_run(chat_proxy, sim_runtime):
    """One proxy per runtime (conftest.scenario_proxy): a proxy kept from the first runtime would fail here."""
    status = chat_proxy.sim_status()
    expected = ("acp", "qodercn") if sim_runtime == "qodercn" else (sim_runtime, "lingma")
    assert (status["dialect"], status["family"]) == expected


def test_stream_helper_final_completion_has_the_reply_and_usage(client):
    with client.chat.completions.stream(
        model="auto", messages=ask("several chunks please"), stream_options={"include_usage": True}
    ) as stream:
        completion = stream.get_final_completion()
    assert completion.choices[0].message.content == SEVERAL_CHUNKS_REPLY
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


def test_raw_stream_sends_the_role_first_then_several_content_chunks(client):
    chunks = list(client.chat.completions.create(model="auto", messages=ask("several chunks please"), stream=True))
    first = chunks[0]
    assert first.object == "chat.completion.chunk"
    assert first.choices[0].delta.role == "assistant"
    finish_at = next(i for i, c in enumerate(chunks) if c.choices and c.choices[0].finish_reason)
    assert chunks[finish_at].choices[0].finish_reason == "stop"
    texts = [c.choices[0].delta.content for c in chunks[:finish_at] if c.choices[0].delta.content]
    assert len(texts) >= 2
    assert "".join(texts) == SEVERAL_CHUNKS_REPLY
    assert not any(c.choices and c.choices[0].delta.content for c in chunks[finish_at:])


def test_non_stream_completion_carries_usage_refusal_and_the_extras(client):
    completion = client.chat.completions.create(model="auto", messages=ask("several chunks please"))
    message = completion.choices[0].message
    assert message.content == SEVERAL_CHUNKS_REPLY
    assert message.role == "assistant"
    assert message.refusal is None
    assert completion.object == "chat.completion"
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0
    extras = completion.model_extra
    assert extras["served_by"]
    latency = extras["latency"]
    assert isinstance(latency["first_token_ms"], int) and latency["first_token_ms"] >= 0
    assert isinstance(latency["total_ms"], int) and latency["total_ms"] >= latency["first_token_ms"]


@pytest.mark.parametrize(
    ("question", "reasoning", "reply"),
    [("think in chat style", CHAT_THINK, CHAT_THINK_REPLY), ("think inline style", INLINE_THINK, INLINE_THINK_REPLY)],
    ids=["chat_think", "inline"],
)
def test_reasoning_goes_to_reasoning_content_never_to_content(client, question, reasoning, reply):
    chunks = list(client.chat.completions.create(model="auto", messages=ask(question), stream=True))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    streamed_reasoning = "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas)
    streamed_content = "".join(d.content or "" for d in deltas)
    assert streamed_reasoning.strip() == reasoning
    assert streamed_content.strip() == reply
    assert "REASONING" not in streamed_content and "think::" not in streamed_content

    message = client.chat.completions.create(model="auto", messages=ask(question)).choices[0].message
    assert message.model_extra["reasoning_content"].strip() == reasoning
    assert message.content.strip() == reply
    assert "REASONING" not in message.content


def test_max_tokens_cuts_the_reply_with_length_and_stops_upstream(client, chat_proxy):
    before = chat_proxy.sim_status()
    completion = client.chat.completions.create(model="auto", messages=ask("long reply please"), max_tokens=3)
    choice = completion.choices[0]
    assert choice.finish_reason == "length"
    assert "last sentence" not in choice.message.content
    assert completion.usage.completion_tokens <= 3 + 8  # at most one simulator chunk past the budget
    after = chat_proxy.sim_status()
    assert after["ask_count"] == before["ask_count"] + 1
    assert len(after["stops"]) == len(before["stops"]) + 1
    assert after["stops"][-1] == after["asks"][-1]["requestId"]


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_stop_sequence_cuts_the_text_before_it(client, stream):
    request = dict(model="auto", messages=ask("stop at the marker"), stop=["XYZ"])
    if stream:
        chunks = [c for c in client.chat.completions.create(stream=True, **request) if c.choices]
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        reason = next(c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason)
    else:
        choice = client.chat.completions.create(**request).choices[0]
        text, reason = choice.message.content, choice.finish_reason
    assert text == "Before the marker "
    assert reason == "stop"


def test_models_list_is_the_simulators_models_with_stable_usable_ids(client, sim_runtime):
    family = "qodercn" if sim_runtime == "qodercn" else "lingma"
    listed = query_models_result(True, family)
    expected = list(dict.fromkeys(m["key"] for models in listed.values() for m in models))
    first = [m.id for m in client.models.list()]
    second = [m.id for m in client.models.list()]
    assert first == expected
    assert second == first
    for model_id in (expected[2], expected[-1]):
        completion = client.chat.completions.create(model=model_id, messages=ask("which model?"))
        assert completion.model == model_id


@pytest.mark.parametrize("requested", ["no-such-model", ""], ids=["unknown", "empty"])
def test_unknown_or_empty_model_resolves_to_the_default(client, chat_proxy, requested):
    completion = client.chat.completions.create(model=requested, messages=ask("which model?"))
    assert completion.model == "auto"  # lingma.default_model
    assert chat_proxy.sim_status()["asks"][-1]["model"] == "auto"


def test_one_megabyte_multibyte_message_round_trips(client, chat_proxy):
    # ~1 MB of UTF-8: 3-byte CJK and a 4-byte emoji (a surrogate pair when the SDK escapes it in JSON)
    payload = "中文字符测试😀" * 47_700
    assert len(payload.encode("utf-8")) > 1_000_000
    question = f"MEGA-ECHO {payload} END"
    before = chat_proxy.sim_status()["total_question_bytes"]
    completion = client.chat.completions.create(model="auto", messages=ask(question))
    assert payload in completion.choices[0].message.content
    assert chat_proxy.sim_status()["total_question_bytes"] - before == len(question.encode("utf-8"))

    chunks = list(client.chat.completions.create(model="auto", messages=ask(question), stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert payload in streamed
