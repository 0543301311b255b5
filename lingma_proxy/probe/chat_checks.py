"""Checks 5-8: a streamed answer, its finish, two-turn memory, two chats at once (docs/protocol.md §5, §6, §8)."""

from __future__ import annotations

import asyncio
import random

from lingma_proxy.probe.chats import ChatRun, run_chat
from lingma_proxy.probe.report import FAIL, PASS, CheckResult
from lingma_proxy.probe.state import ProbeState, elapsed_ms
from lingma_proxy.probe.traffic import (
    delta_counts,
    delta_owners,
    finish_fields,
    first_delta_at,
    message_kinds,
    method_order,
    reply_shapes,
    stream_session_ids,
)
from lingma_proxy.upstream.reuse_canary import MEMORY_WORDS, RECALL_PROMPT, remember_prompt

STREAM_PROMPT = "Reply with the single word: pong."
CONCURRENT_PROMPTS = ("Count from 1 to 5.", "Name three colours.")


async def _chat(state: ProbeState, question: str, session_id: str = "", is_reply: bool = False) -> ChatRun:
    assert state.client is not None
    run = await run_chat(state.client, state.tap, question, state.model_key, session_id, is_reply)
    if run.request.session_id not in state.session_ids:
        state.session_ids.append(run.request.session_id)
    return run


def _outcome(run: ChatRun) -> str:
    if run.completed:
        return f"completed, answer {len(run.text)} chars"
    return f"failed: {run.error or 'no finish'}"


async def check_stream(state: ProbeState) -> CheckResult:
    run = await _chat(state, STREAM_PROMPT)
    state.stream_run = run
    empty, total = delta_counts(run.seen)
    first_delta = first_delta_at(run.seen)
    facts = [
        f"prompt {STREAM_PROMPT!r} to model {state.model_key}",
        f"methods in order: {method_order(run.seen)}",
        *message_kinds(run.seen),
        f"empty deltas: {empty} of {total}",
        f"first delta after {elapsed_ms(run.started, first_delta) if first_delta else '(none)'}, "
        f"first text after {elapsed_ms(run.started, run.first_text_at) if run.first_text_at else '(none)'}",
        f"answer: {state.quote(run.text)}",
    ]
    if run.error:
        facts.append(f"error: {run.error}")
    return CheckResult(5, "streamed answer", PASS if run.completed and run.text.strip() else FAIL, facts)


async def check_finish(state: ProbeState) -> CheckResult:
    run = state.stream_run
    assert run is not None
    found = finish_fields(run.seen)
    replies = reply_shapes(run.seen)
    reply_fact = f"replies to our calls during the turn: {'; '.join(replies) or '(none)'}"
    if found is None:
        return CheckResult(6, "finish", FAIL, ["no chat/finish (nor ACP chat_finish) was seen", reply_fact])
    where, fields = found
    status = fields.get("statusCode")
    shown_status = "(absent)" if status is None else repr(status)
    full = fields.get("fullAnswer")
    if full is None:
        same = "(absent)"
    else:
        same = f"{len(str(full))} chars, {'same as' if full == run.text else 'differs from'} the deltas"
    facts = [
        f"{where}: {', '.join(fields) or '(none)'}",
        f"reason: {state.quote(str(fields.get('reason')))}, statusCode: {shown_status}",
        f"fullAnswer: {same}",
        reply_fact,
    ]
    return CheckResult(6, "finish", PASS if status in (None, 200, "200") else FAIL, facts)


async def check_memory(state: ProbeState) -> CheckResult:
    """The same upstream session twice: classic same sessionId with isReply, ACP the same session (§5, §9)."""
    word = random.choice(MEMORY_WORDS)
    first = await _chat(state, remember_prompt(word))
    facts = [f"word: {word}", f"turn 1: {_outcome(first)}"]
    if not first.completed:
        return CheckResult(7, "two-turn memory", FAIL, facts)
    second = await _chat(state, RECALL_PROMPT, session_id=first.request.session_id, is_reply=True)
    same = stream_session_ids(first.seen) == stream_session_ids(second.seen)
    how = "isReply true, same sessionId" if state.dialect == "classic" else "session/prompt on the same session"
    facts += [
        f"turn 2 ({how}): {_outcome(second)}: {state.quote(second.text)}",
        f"both turns streamed under one sessionId: {'yes' if same else 'no'}",
    ]
    if second.completed and word.lower() in second.text.lower():
        facts.append("the second turn remembered the word: follow-ups keep the session's history")
        return CheckResult(7, "two-turn memory", PASS, facts)
    facts.append(
        f"the second turn did NOT remember the word {word!r}: follow-ups lose the history; set sessions.reuse: off"
    )
    return CheckResult(7, "two-turn memory", FAIL, facts)


def _order(owners: list[str], names: dict[str, str]) -> str:
    labels = [names.get(owner, "?") for owner in owners]
    switches = sum(1 for a, b in zip(labels, labels[1:], strict=False) if a != b)
    if not labels:
        return "no deltas"
    if switches > 1:
        return f"interleaved (the deltas switched chat {switches} times)"
    return "one after the other (" + " then ".join(dict.fromkeys(labels)) + ")"


async def check_concurrency(state: ProbeState) -> CheckResult:
    """Two chats at once on one connection: both served, served in turn, or one refused (§8)."""
    with state.tap.recording() as seen:
        a, b = await asyncio.gather(*(_chat(state, prompt) for prompt in CONCURRENT_PROMPTS))
    owners = delta_owners(seen)
    names = {a.request.request_id: "A", b.request.request_id: "B"}
    facts = [f"chat A: {_outcome(a)}", f"chat B: {_outcome(b)}", f"order: {_order(owners, names)}"]
    if a.completed and b.completed:
        return CheckResult(8, "concurrency", PASS, facts)
    # Refused: failed with an error before a single delta of its own arrived.
    refused = [run for run in (a, b) if run.error and run.request.request_id not in owners]
    if len(refused) == 1 and (a.completed or b.completed):
        facts.append("one chat at a time here: set limits.max_concurrent_per_instance: 1")
        return CheckResult(8, "concurrency", PASS, facts)
    return CheckResult(8, "concurrency", FAIL, facts)
