"""What one chat turn will stream: the deterministic reply, reasoning, pacing and fault, from a rule or the defaults."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lingma_proxy.simulator.scenario import Rule

DEFAULT_CHUNK_CHARS = 8
SLOW_TOKENS_DELAY_SEC = 0.3
SNIPPET_CHARS = 120
DEFAULT_RPC_ERROR = "failed to get user plan info: HTTP status 500"
# The real binary words its business errors this way ("failed to get user plan info: HTTP status 404", §4);
# the agent dialect has no statusCode field, so the status travels only in this text.
FINISH_ERROR = "model service error: HTTP status {}"

# The refusals' wording, after what clients of Lingma's cloud gateway report (docs/protocol.md §11.8); how
# the real local binary passes them on is unverified, so they come as the ask's error, in both dialects.
REFUSAL_MESSAGES = {
    "queue": '{"code":"10605","isQueued":true,"retryAfterSeconds":1,"message":"Too many users, queued"}',
    "quota": '{"code":"112","message":"Your quota has been used up"}',
    "daily_limit": '{"code":"110","message":"You have reached the daily usage limit"}',
    "content_policy": "The input contains inappropriate content, blocked by the content security policy",
    "duplicate_request": "Duplicate request",
    "session_lost": "session not found: {session_id}",
    "model_unavailable": "model {model} is not available",
}

# Deterministic memory: (a question, the earlier statement it recalls, the reply). The word pair
# is the protocol probe's two-turn check.
_RECALLS = (
    (re.compile(r"what is my name", re.I), re.compile(r"my name is (\w+)", re.I), "Your name is {}."),
    (re.compile(r"which word did I ask you to remember", re.I), re.compile(r"remember the word\W+(\w+)", re.I), "{}"),
)


_SPEAKER_LABEL = re.compile(r"\[\w+\]$")


@dataclass(frozen=True)
class ReplyPlan:
    answer: str
    think: str = ""
    think_style: str = "chat_think"
    chunk_chars: int = DEFAULT_CHUNK_CHARS
    first_token_delay_sec: float = 0.0
    chunk_delay_sec: float = 0.0
    fault: str | None = None
    fault_message: str = ""
    status_code: int = 500
    native_tool: dict[str, Any] | None = None


def default_reply(question: str, session_questions: list[str]) -> str:
    """`session_questions` are the session's user turns, the current one last."""
    for asks, statement, reply in _RECALLS:
        if asks.search(question):
            for earlier in reversed(session_questions):
                found = statement.findall(earlier)
                if found:
                    return reply.format(found[-1])
    # A transcript ends on a speaker label such as "[Assistant]": echo the last line that says something.
    lines = [line.strip() for line in question.splitlines() if line.strip() and not _SPEAKER_LABEL.match(line.strip())]
    snippet = lines[-1][:SNIPPET_CHARS] if lines else ""
    return f"Simulated reply (turn {len(session_questions)}): {snippet}"


def plan_reply(rule: Rule | None, question: str, session_questions: list[str]) -> ReplyPlan:
    if rule is None:
        return ReplyPlan(answer=default_reply(question, session_questions))
    if rule.echo:
        answer = question
    elif rule.reply is not None:
        answer = rule.reply
    else:
        answer = default_reply(question, session_questions)
    chunk_delay_ms = rule.chunk_delay_ms
    if chunk_delay_ms is None:
        chunk_delay_ms = SLOW_TOKENS_DELAY_SEC * 1000 if rule.fault == "slow_tokens" else 0
    return ReplyPlan(
        answer=answer,
        think=rule.think or "",
        think_style=rule.think_style,
        chunk_chars=rule.chunk_chars or DEFAULT_CHUNK_CHARS,
        first_token_delay_sec=rule.first_token_delay_ms / 1000,
        chunk_delay_sec=chunk_delay_ms / 1000,
        fault=rule.fault,
        fault_message=rule.message or FINISH_ERROR.format(rule.status_code or 500),
        status_code=rule.status_code or 500,
        native_tool=rule.native_tool,
    )


def visible_text(plan: ReplyPlan, tool_result: str | None) -> str:
    """The answer as streamed in `chat/answer`, with in-band reasoning for the inline styles."""
    answer = plan.answer
    if tool_result is not None:
        answer = f"{answer}\nTool result: {tool_result}" if answer else f"Tool result: {tool_result}"
    if not plan.think or plan.think_style == "chat_think":
        return answer
    if plan.think_style == "inline":
        think_ms = 10 * len(plan.think)  # deterministic stand-in for the thinking time
        return f"````think::{think_ms}\n{plan.think}\n````\n{answer}"
    return f"<think>{plan.think}</think>\n{answer}"


def split_chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]
