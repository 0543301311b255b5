"""The two-turn canary that decides whether a runtime keeps a session's history (docs/protocol.md §11.6).

No capture shows a classic `isReply: true` follow-up answered with the earlier turns in context, so
session reuse is trusted only once the runtime has shown it: turn 1 asks it to remember a random word,
turn 2 (same session, `isReply: true`) asks for the word back. Both prompts are as small as they can be,
and the probe's two-turn check asks the same questions.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass

from lingma_proxy.errors import ApiError
from lingma_proxy.events import TextDelta
from lingma_proxy.upstream.client import ChatRequest, LingmaClient

MEMORY_WORDS = ("lantern", "marigold", "quartz", "juniper", "saffron", "pebble", "harbor", "velvet")
RECALL_PROMPT = "Which word did I ask you to remember? Reply with the word only."


def remember_prompt(word: str) -> str:
    return f"Remember the word {word}. Reply OK."


@dataclass(frozen=True)
class CanaryOutcome:
    remembered: bool
    word: str
    answer: str  # turn 2's reply, cut short: what the runtime said instead of the word, when it forgot


async def _ask(client: LingmaClient, question: str, model_key: str, session_id: str, is_reply: bool) -> str:
    request = ChatRequest(
        question=question, model_key=model_key, session_id=session_id, request_id=str(uuid.uuid4()), is_reply=is_reply
    )
    text = ""
    async for event in client.chat(request):  # ends on UpstreamFinish; a failure raises ApiError
        if isinstance(event, TextDelta):
            text += event.text
    return text


async def run_reuse_canary(client: LingmaClient, model_key: str) -> CanaryOutcome:
    """Two tiny turns in one upstream session; ApiError when either fails (no verdict then). The session is
    deleted afterwards, best effort, so the canary leaves nothing in the account's history."""
    word = random.choice(MEMORY_WORDS)
    session_id = str(uuid.uuid4())
    try:
        await _ask(client, remember_prompt(word), model_key, session_id, is_reply=False)
        answer = await _ask(client, RECALL_PROMPT, model_key, session_id, is_reply=True)
    finally:
        try:
            await client.delete_session(session_id)
        except ApiError:
            pass  # the verdict stands whether or not the clean-up worked
    return CanaryOutcome(word.lower() in answer.lower(), word, answer.strip()[:80])
