"""Events → Anthropic Messages SSE (docs/clients.md "Anthropic Messages"), and the Message object.

Every block is closed by `content_block_stop` before the next one opens: Claude Code treats a
tool_use block without its stop as fatal. Reasoning is sent as thinking blocks only when the
request asked for it (`conv.thinking`); each ends with an opaque signature, which clients store and
send back, and which the decoder drops again.

The vendor spec requires fields the SDKs never check (`stop_details`, `container`, the usage
breakdowns, a tool_use `caller`); they carry honest values: null for what Lingma cannot report,
a direct caller because every tool call here is the client's own tool.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ujson

from ..errors import ApiError
from ..events import Finish, ToolCall, Usage
from ..ids import anthropic_tool_id, new_id
from ..model import Conversation
from .encoder import Encoder, argument_fragments
from .errors import anthropic_error_body
from .sse import sse_event

# Usage fields of the Message object that message_delta's usage does not have (Lingma reports none).
_MESSAGE_ONLY_USAGE = {"cache_creation": None, "inference_geo": None, "service_tier": None}

_STOP_REASON = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "stop_sequence": "stop_sequence"}


@dataclass(slots=True)
class _OpenBlock:
    """The text or thinking block whose deltas are still streaming."""

    kind: str  # "text" | "thinking"
    index: int
    texts: list[str] = field(default_factory=list)


class AnthropicEncoder(Encoder):
    def __init__(self, conv: Conversation, *, response_id: str, model: str, created: int, input_tokens: int) -> None:
        super().__init__(conv, response_id=response_id, model=model, created=created, input_tokens=input_tokens)
        self._blocks: list[dict] = []  # finished content blocks, in index order
        self._open: _OpenBlock | None = None

    def keepalive(self) -> str:
        return sse_event("ping", {"type": "ping"})

    def _message(self, content: list[dict], usage: Usage, stop_reason: str | None, stop_sequence: str | None) -> dict:
        return {
            "id": self.response_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "stop_details": None,
            "container": None,
            "usage": _usage_body(usage) | _MESSAGE_ONLY_USAGE,
        }

    def _start_frames(self) -> list[str]:
        message = self._message([], Usage(self.input_tokens, 0), None, None)
        return [sse_event("message_start", {"type": "message_start", "message": message})]

    def _on_text(self, text: str) -> list[str]:
        frames = self._open_block("text")
        self._open.texts.append(text)
        return frames + [self._delta(self._open.index, {"type": "text_delta", "text": text})]

    def _on_think(self, text: str) -> list[str]:
        if not self.conv.thinking:
            return []
        frames = self._open_block("thinking")
        self._open.texts.append(text)
        return frames + [self._delta(self._open.index, {"type": "thinking_delta", "thinking": text})]

    def _on_tool_call(self, call: ToolCall) -> list[str]:
        frames = self._close_block()
        index = len(self._blocks)
        block = {"type": "tool_use", "id": anthropic_tool_id(call.id), "name": call.name, "caller": {"type": "direct"}}
        frames.append(_block_event("content_block_start", index, content_block=block | {"input": {}}))
        for piece in argument_fragments(call.arguments):
            frames.append(self._delta(index, {"type": "input_json_delta", "partial_json": piece}))
        frames.append(_block_event("content_block_stop", index))
        self._blocks.append(block | {"input": ujson.loads(call.arguments) if call.arguments.strip() else {}})
        return frames

    def _open_block(self, kind: str) -> list[str]:
        if self._open is not None and self._open.kind == kind:
            return []
        frames = self._close_block()
        self._open = _OpenBlock(kind, len(self._blocks))
        empty = {"type": "text", "text": "", "citations": None} if kind == "text" else _thinking_block("", "")
        frames.append(_block_event("content_block_start", self._open.index, content_block=empty))
        return frames

    def _close_block(self) -> list[str]:
        block, self._open = self._open, None
        if block is None:
            return []
        text = "".join(block.texts)
        frames = []
        if block.kind == "text":
            self._blocks.append({"type": "text", "text": text, "citations": None})
        else:
            signature = new_id("")
            frames.append(self._delta(block.index, {"type": "signature_delta", "signature": signature}))
            self._blocks.append(_thinking_block(text, signature))
        frames.append(_block_event("content_block_stop", block.index))
        return frames

    def _delta(self, index: int, delta: dict) -> str:
        return _block_event("content_block_delta", index, delta=delta)

    def _on_finish(self, fin: Finish) -> list[str]:
        frames = self._close_block()
        usage = self.final_usage(fin)
        stop_reason = _STOP_REASON[self.finish_reason(fin)]
        stop_sequence = fin.stop_sequence if stop_reason == "stop_sequence" else None
        frames.append(
            sse_event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": stop_reason,
                        "stop_sequence": stop_sequence,
                        "stop_details": None,
                        "container": None,
                    },
                    "usage": _usage_body(usage),
                },
            )
        )
        frames.append(sse_event("message_stop", {"type": "message_stop"}))
        self._body = self._message(self._blocks, usage, stop_reason, stop_sequence)
        return frames

    def _on_fail(self, err: ApiError) -> list[str]:
        return [sse_event("error", anthropic_error_body(err))]


def _block_event(event_type: str, index: int, **fields: object) -> str:
    return sse_event(event_type, {"type": event_type, "index": index, **fields})


def _thinking_block(thinking: str, signature: str) -> dict:
    return {"type": "thinking", "thinking": thinking, "signature": signature}


def _usage_body(usage: Usage) -> dict:
    """Usage as message_delta carries it; the Message object adds _MESSAGE_ONLY_USAGE."""
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens_details": None,
        "server_tool_use": None,
    }
