"""The official SDKs as judges of wire output: they read our frames and bodies over an in-memory transport.

Only the network is replaced (httpx2.MockTransport); every byte goes through the SDKs' own SSE
decoders, stream accumulators and pydantic models, exactly as with a real server.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import anthropic
import httpx2
import openai

from lingma_proxy.events import Finish, OutputEvent
from lingma_proxy.wire.encoder import Encoder

# Odd-sized pieces so that SSE lines and multi-byte UTF-8 characters are split across reads.
_READ_SIZE = 7


def run(encoder: Encoder, events: Iterable[OutputEvent], fin: Finish | None = None) -> list[str]:
    """Every frame of a stream: start, one feed per event, then finish (when given)."""
    frames = encoder.start()
    for event in events:
        frames += encoder.feed(event)
    if fin is not None:
        frames += encoder.finish(fin)
    return frames


def _transport(payload: bytes, content_type: str) -> httpx2.MockTransport:
    def respond(request: httpx2.Request) -> httpx2.Response:
        pieces = [payload[start : start + _READ_SIZE] for start in range(0, len(payload), _READ_SIZE)]
        return httpx2.Response(200, headers={"content-type": content_type}, content=iter(pieces))

    return httpx2.MockTransport(respond)


def _payload(frames_or_body: list[str] | dict) -> tuple[bytes, str]:
    if isinstance(frames_or_body, dict):
        return json.dumps(frames_or_body, ensure_ascii=False).encode(), "application/json"
    return "".join(frames_or_body).encode(), "text/event-stream"


def openai_client(frames_or_body: list[str] | dict) -> openai.OpenAI:
    """An OpenAI client whose every request is answered with these SSE frames or this JSON body."""
    payload, content_type = _payload(frames_or_body)
    http_client = httpx2.Client(transport=_transport(payload, content_type))
    return openai.OpenAI(api_key="test", base_url="http://wire.test/v1", http_client=http_client, max_retries=0)


def anthropic_client(frames_or_body: list[str] | dict) -> anthropic.Anthropic:
    payload, content_type = _payload(frames_or_body)
    http_client = httpx2.Client(transport=_transport(payload, content_type))
    return anthropic.Anthropic(api_key="test", base_url="http://wire.test", http_client=http_client, max_retries=0)


def sse_payloads(frames: list[str]) -> list[tuple[str | None, str]]:
    """(event name, data) of each event, decoded by openai-python's SSEDecoder."""
    decoder = openai._streaming.SSEDecoder()
    events = decoder.iter_bytes(iter(["".join(frames).encode()]))
    return [(event.event, event.data) for event in events]
