"""Events → OpenAI chat completion chunks (docs/clients.md "OpenAI chat streaming"), and the completion.

ThinkDelta goes out as `reasoning_content`, the field OpenAI-compatible servers use for reasoning.
The final chunk, the usage chunk and the non-stream body carry the extras `served_by` and
`latency` (docs/features.md §4). `system_fingerprint` is left out: the spec types it as a string when
present, and Lingma reports no backend fingerprint to put there.
"""

from __future__ import annotations

from ..errors import ApiError
from ..events import Finish, ToolCall
from ..model import Conversation
from .encoder import Encoder, argument_fragments
from .errors import openai_error_body
from .sse import sse_comment, sse_data


class ChatCompletionsEncoder(Encoder):
    """Chunks per docs/clients.md "OpenAI chat streaming"; body() is the matching chat.completion."""

    def __init__(
        self,
        conv: Conversation,
        *,
        response_id: str,
        model: str,
        created: int,
        input_tokens: int,
        include_usage: bool = False,
    ) -> None:
        super().__init__(conv, response_id=response_id, model=model, created=created, input_tokens=input_tokens)
        self.include_usage = include_usage
        self._text: list[str] = []
        self._reasoning: list[str] = []

    def keepalive(self) -> str:
        return sse_comment("keep-alive")

    def _envelope(self, object_type: str, choices: list) -> dict:
        return {
            "id": self.response_id,
            "object": object_type,
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }

    def _chunk(self, delta: dict, finish_reason: str | None = None) -> dict:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        return self._envelope("chat.completion.chunk", [choice])

    def _start_frames(self) -> list[str]:
        return [sse_data(self._chunk({"role": "assistant", "content": ""}))]

    def _on_text(self, text: str) -> list[str]:
        self._text.append(text)
        return [sse_data(self._chunk({"content": text}))]

    def _on_think(self, text: str) -> list[str]:
        self._reasoning.append(text)
        return [sse_data(self._chunk({"reasoning_content": text}))]

    def _on_tool_call(self, call: ToolCall) -> list[str]:
        # id, type and name only in the first delta: the SDK concatenates repeated strings.
        index = len(self.tool_calls) - 1
        opening = {"index": index, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        frames = [sse_data(self._chunk({"tool_calls": [opening]}))]
        for piece in argument_fragments(call.arguments):
            frames.append(sse_data(self._chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})))
        return frames

    def _on_finish(self, fin: Finish) -> list[str]:
        reason = "stop" if fin.reason == "stop_sequence" else self.finish_reason(fin)
        usage = self.final_usage(fin)
        usage_body = {
            "prompt_tokens": usage.input_tokens,
            "completion_tokens": usage.output_tokens,
            "total_tokens": usage.input_tokens + usage.output_tokens,
        }
        extras = {
            "served_by": fin.served_by,
            "latency": {"first_token_ms": fin.latency.first_token_ms, "total_ms": fin.latency.total_ms},
        }
        frames = [sse_data(self._chunk({}, reason) | extras)]
        if self.include_usage:
            frames.append(sse_data(self._envelope("chat.completion.chunk", []) | {"usage": usage_body} | extras))
        frames.append(sse_data("[DONE]"))
        choice = {"index": 0, "message": self._message(), "finish_reason": reason, "logprobs": None}
        self._body = self._envelope("chat.completion", [choice]) | {"usage": usage_body} | extras
        return frames

    def _message(self) -> dict:
        text = "".join(self._text)
        message: dict = {
            "role": "assistant",
            "content": text if text or not self.tool_calls else None,
            "refusal": None,
            "annotations": [],
        }
        if self.tool_calls:
            message["tool_calls"] = [
                {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
                for call in self.tool_calls
            ]
        if self._reasoning:
            message["reasoning_content"] = "".join(self._reasoning)
        return message

    def _on_fail(self, err: ApiError) -> list[str]:
        return [sse_data(openai_error_body(err))]
