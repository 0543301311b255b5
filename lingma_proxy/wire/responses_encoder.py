"""Events → OpenAI Responses stream events (docs/clients.md "Responses API"), and the Response object.

Reasoning (ThinkDelta) becomes a `reasoning` item streamed as a summary
(`response.reasoning_summary_*`): Codex shows summaries, while raw `reasoning_text` is hidden by
default. A reply cut at max_output_tokens still ends with `response.completed`, carrying status
"incomplete", because Codex treats anything but `response.completed` as a failed turn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import ApiError
from ..events import Finish, ToolCall, Usage
from ..ids import new_id
from ..model import Conversation, Message, ToolUse
from .encoder import Encoder, argument_fragments
from .errors import responses_failed_error
from .responses import ResponsesOptions
from .sse import sse_comment, sse_event


@dataclass(slots=True)
class _OpenItem:
    """The message or reasoning item whose text is still streaming."""

    kind: str  # "message" | "reasoning"
    id: str
    output_index: int
    texts: list[str] = field(default_factory=list)


class ResponsesEncoder(Encoder):
    def __init__(
        self,
        conv: Conversation,
        *,
        response_id: str,
        model: str,
        created: int,
        input_tokens: int,
        options: ResponsesOptions,
        on_complete: Callable[[str, list[Message]], None] | None = None,
    ) -> None:
        """`on_complete(response_id, messages)` receives the conversation through a completed response."""
        super().__init__(conv, response_id=response_id, model=model, created=created, input_tokens=input_tokens)
        self.options = options
        self.on_complete = on_complete
        self._sequence = 0
        self._output: list[dict] = []  # finished items, in output order
        self._open: _OpenItem | None = None
        self._reply_text: list[str] = []

    def keepalive(self) -> str:
        return sse_comment("keep-alive")

    def assistant_message(self) -> Message:
        """This response's output as history: what a follow-up with previous_response_id continues."""
        calls = [ToolUse(id=call.id, name=call.name, arguments=call.arguments) for call in self.tool_calls]
        return Message(role="assistant", text="".join(self._reply_text), tool_calls=calls)

    def _event(self, event_type: str, **fields: object) -> str:
        payload = {"type": event_type, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return sse_event(event_type, payload)

    def _response(self, status: str, **fields: object) -> dict:
        choice = self.conv.tool_choice
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": None,
            "instructions": self.options.instructions,
            "max_output_tokens": self.conv.max_tokens,
            "model": self.model,
            "output": list(self._output),
            "parallel_tool_calls": self.conv.parallel_tool_calls,
            "previous_response_id": self.options.previous_response_id,
            "reasoning": _reasoning_report(self.options.reasoning),
            "store": self.options.store,
            # As the request asked (the API's default 1 otherwise); Lingma takes no temperature.
            "temperature": 1.0 if self.conv.temperature is None else self.conv.temperature,
            "text": self.options.text,
            "tool_choice": {"type": "function", "name": choice.name} if choice.mode == "named" else choice.mode,
            "tools": self.options.tools,
            "truncation": "disabled",
            "usage": None,
            "metadata": self.options.metadata,
            "completed_at": None,
            "service_tier": "default",
            **self.options.echo,
        } | fields

    def _start_frames(self) -> list[str]:
        snapshot = self._response("in_progress")
        return [
            self._event("response.created", response=snapshot),
            self._event("response.in_progress", response=snapshot),
        ]

    def _on_text(self, text: str) -> list[str]:
        frames = self._open_item("message")
        self._open.texts.append(text)
        self._reply_text.append(text)
        frames.append(
            self._event(
                "response.output_text.delta",
                item_id=self._open.id,
                output_index=self._open.output_index,
                content_index=0,
                delta=text,
                logprobs=[],
            )
        )
        return frames

    def _on_think(self, text: str) -> list[str]:
        frames = self._open_item("reasoning")
        self._open.texts.append(text)
        frames.append(
            self._event(
                "response.reasoning_summary_text.delta",
                item_id=self._open.id,
                output_index=self._open.output_index,
                summary_index=0,
                delta=text,
            )
        )
        return frames

    def _on_tool_call(self, call: ToolCall) -> list[str]:
        frames = self._close_item("completed")
        index = len(self._output)
        item = {
            "id": new_id("fc_"),
            "type": "function_call",
            "status": "in_progress",
            "call_id": call.id,
            "name": call.name,
        }
        frames.append(self._event("response.output_item.added", output_index=index, item=item | {"arguments": ""}))
        for piece in argument_fragments(call.arguments):
            frames.append(
                self._event(
                    "response.function_call_arguments.delta", item_id=item["id"], output_index=index, delta=piece
                )
            )
        frames.append(
            self._event(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=index,
                arguments=call.arguments,
            )
        )
        done = item | {"status": "completed", "arguments": call.arguments}
        self._output.append(done)
        frames.append(self._event("response.output_item.done", output_index=index, item=done))
        return frames

    def _open_item(self, kind: str) -> list[str]:
        if self._open is not None and self._open.kind == kind:
            return []
        frames = self._close_item("completed")
        index = len(self._output)
        self._open = _OpenItem(kind, new_id("msg_" if kind == "message" else "rs_"), index)
        where = {"item_id": self._open.id, "output_index": index}
        if kind == "message":
            item = {"id": self._open.id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}
            frames.append(self._event("response.output_item.added", output_index=index, item=item))
            frames.append(self._event("response.content_part.added", **where, content_index=0, part=_text_part("")))
        else:
            item = {"id": self._open.id, "type": "reasoning", "summary": []}
            frames.append(self._event("response.output_item.added", output_index=index, item=item))
            frames.append(
                self._event("response.reasoning_summary_part.added", **where, summary_index=0, part=_summary_part(""))
            )
        return frames

    def _close_item(self, status: str) -> list[str]:
        item, self._open = self._open, None
        if item is None:
            return []
        text = "".join(item.texts)
        where = {"item_id": item.id, "output_index": item.output_index}
        if item.kind == "message":
            part = _text_part(text)
            frames = [
                self._event("response.output_text.done", **where, content_index=0, text=text, logprobs=[]),
                self._event("response.content_part.done", **where, content_index=0, part=part),
            ]
            done = {"id": item.id, "type": "message", "status": status, "role": "assistant", "content": [part]}
        else:
            frames = [
                self._event("response.reasoning_summary_text.done", **where, summary_index=0, text=text),
                self._event("response.reasoning_summary_part.done", **where, summary_index=0, part=_summary_part(text)),
            ]
            done = {"id": item.id, "type": "reasoning", "summary": [_summary_part(text)]}
        self._output.append(done)
        frames.append(self._event("response.output_item.done", output_index=item.output_index, item=done))
        return frames

    def _on_finish(self, fin: Finish) -> list[str]:
        truncated = fin.reason == "length"
        frames = self._close_item("incomplete" if truncated else "completed")
        response = self._response(
            "incomplete" if truncated else "completed",
            incomplete_details={"reason": "max_output_tokens"} if truncated else None,
            usage=_usage_body(self.final_usage(fin)),
            completed_at=self.created + fin.latency.total_ms // 1000,
        )
        frames.append(self._event("response.completed", response=response))
        self._body = response
        if self.on_complete is not None:
            self.on_complete(self.response_id, [*self.conv.messages, self.assistant_message()])
        return frames

    def _on_fail(self, err: ApiError) -> list[str]:
        response = self._response("failed", error=responses_failed_error(err))
        return [self._event("response.failed", response=response)]


# The values the Open Responses spec knows, plus "minimal", which OpenAI's API takes as well.
_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
_SUMMARIES = ("concise", "detailed", "auto")


def _reasoning_report(reasoning: dict | None) -> dict | None:
    """The requested reasoning settings; a value this proxy does not know is reported as null."""
    if reasoning is None:
        return None
    effort, summary = reasoning.get("effort"), reasoning.get("summary")
    return {"effort": effort if effort in _EFFORTS else None, "summary": summary if summary in _SUMMARIES else None}


def _text_part(text: str) -> dict:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _summary_part(text: str) -> dict:
    return {"type": "summary_text", "text": text}


def _usage_body(usage: Usage) -> dict:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }
