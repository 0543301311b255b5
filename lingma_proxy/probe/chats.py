"""One probe chat through the client's own ChatStream, with the raw traffic recorded alongside."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from lingma_proxy.errors import ApiError
from lingma_proxy.events import TextDelta, UpstreamFinish
from lingma_proxy.probe.traffic import Seen, Tap
from lingma_proxy.upstream.client import ChatRequest, LingmaClient


@dataclass
class ChatRun:
    request: ChatRequest
    started: float  # time.monotonic() when the prompt went out
    seen: list[Seen] = field(default_factory=list)  # every message Lingma sent meanwhile
    text: str = ""
    finish_reason: str | None = None
    error: str = ""
    first_text_at: float | None = None

    @property
    def completed(self) -> bool:
        return self.finish_reason is not None and not self.error


async def run_chat(
    client: LingmaClient, tap: Tap, question: str, model_key: str, session_id: str = "", is_reply: bool = False
) -> ChatRun:
    """Send one prompt and read its stream to the end; a failure is kept in `error`, not raised."""
    request = ChatRequest(
        question=question,
        model_key=model_key,
        session_id=session_id or str(uuid.uuid4()),
        request_id=str(uuid.uuid4()),
        is_reply=is_reply,
    )
    stream = client.chat(request)
    ended = False
    with tap.recording() as seen:
        run = ChatRun(request, time.monotonic(), seen)
        try:
            async for event in stream:
                if isinstance(event, TextDelta):
                    run.first_text_at = run.first_text_at or time.monotonic()
                    run.text += event.text
                elif isinstance(event, UpstreamFinish):
                    run.finish_reason = event.reason
            ended = True
        except ApiError as err:
            run.error = err.message
            ended = True
        finally:
            # Cut short (the check's time ran out): stop it upstream too, or Lingma keeps generating.
            await (stream.aclose() if ended else stream.abandon())
    return run
