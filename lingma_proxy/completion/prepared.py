"""A request checked and rendered, before any upstream slot is taken."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ..model import Conversation, Image, conversation_size
from ..prompt import render_prompt
from ..tokens import count_tokens

_OFF_LOOP_BYTES = 256 * 1024  # rendering and counting more than this inline would stall every other request


@dataclass
class Prepared:
    conv: Conversation
    model: str
    prompt: str
    input_tokens: int
    started: float
    api_key_id: str
    images: list[Image]  # the newest turn's, to forward as prompt parts (agent dialect only)


async def rendered_prompt(conv: Conversation, attach_images: bool = False) -> tuple[str, int]:
    """The question text for a whole conversation and its token count; a large one is made off the loop."""
    if conversation_size(conv) < _OFF_LOOP_BYTES:
        return _render_and_count(conv, attach_images)
    return await asyncio.to_thread(_render_and_count, conv, attach_images)


def _render_and_count(conv: Conversation, attach_images: bool) -> tuple[str, int]:
    prompt = render_prompt(conv, attach_images=attach_images)
    return prompt, count_tokens(prompt)
