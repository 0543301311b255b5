"""Events → Ollama's NDJSON stream (one JSON object per line) and its single-object answer.

/api/chat and /api/generate differ only in where a piece of the answer goes (`message` or `response`),
so one encoder serves both and a subclass says where. Every line has `done: false`, except the final
one, which carries `done_reason` and the timings in nanoseconds. Lingma loads nothing, so
`load_duration` is 0; the prompt's evaluation is the wait for the first token, and the answer's is the
rest. An error after the first line is a last line `{"error": …}`, which Ollama's clients raise.
Reasoning goes out as `thinking` only when the request asked for it (`think`).
"""

from __future__ import annotations

import time
from abc import abstractmethod

import ujson

from ..errors import ApiError
from ..events import Finish, ToolCall
from ..model import Conversation
from .encoder import Encoder
from .errors import ollama_error_body
from .sse import dumps

_NS_PER_MS = 1_000_000


def ndjson_line(payload: dict) -> str:
    return dumps(payload) + "\n"


class OllamaEncoder(Encoder):
    def __init__(
        self,
        conv: Conversation,
        *,
        response_id: str,
        model: str,
        created: int,
        input_tokens: int,
        name: str,
    ) -> None:
        super().__init__(conv, response_id=response_id, model=model, created=created, input_tokens=input_tokens)
        self.name = name  # the model as the client named it: Ollama echoes the request's name
        self._created_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created))
        self._text: list[str] = []
        self._thinking: list[str] = []

    @abstractmethod
    def _answer(self, text: str, thinking: str = "", calls: list[ToolCall] | None = None) -> dict:
        """The fields holding this much of the answer."""

    def keepalive(self) -> str:
        # An empty piece: clients parse every line as JSON, so a blank line would break them.
        return self._line(self._answer(""), done=False)

    def _object(self, fields: dict, done: bool) -> dict:
        return {"model": self.name, "created_at": self._created_at} | fields | {"done": done}

    def _line(self, fields: dict, done: bool) -> str:
        return ndjson_line(self._object(fields, done))

    def _start_frames(self) -> list[str]:
        return []

    def _on_text(self, text: str) -> list[str]:
        self._text.append(text)
        return [self._line(self._answer(text), done=False)]

    def _on_think(self, text: str) -> list[str]:
        if not self.conv.thinking:
            return []
        self._thinking.append(text)
        return [self._line(self._answer("", thinking=text), done=False)]

    def _on_tool_call(self, call: ToolCall) -> list[str]:
        return [self._line(self._answer("", calls=[call]), done=False)]

    def _on_finish(self, fin: Finish) -> list[str]:
        summary = self._summary(fin)
        answer = self._answer("".join(self._text), thinking="".join(self._thinking), calls=self.tool_calls)
        self._body = self._object(answer | summary, done=True)
        return [self._line(self._answer("") | summary, done=True)]

    def _summary(self, fin: Finish) -> dict:
        usage = self.final_usage(fin)
        total = fin.latency.total_ms * _NS_PER_MS
        first = fin.latency.first_token_ms
        prompt_eval = total if first is None else min(first * _NS_PER_MS, total)
        return {
            "done_reason": "length" if fin.reason == "length" else "stop",
            "total_duration": total,
            "load_duration": 0,
            "prompt_eval_count": usage.input_tokens,
            "prompt_eval_duration": prompt_eval,
            "eval_count": usage.output_tokens,
            "eval_duration": total - prompt_eval,
        }

    def _on_fail(self, err: ApiError) -> list[str]:
        return [ndjson_line(ollama_error_body(err))]


class OllamaChatEncoder(OllamaEncoder):
    """/api/chat: pieces of an assistant `message`; tool calls with their arguments as objects."""

    def _answer(self, text: str, thinking: str = "", calls: list[ToolCall] | None = None) -> dict:
        message: dict = {"role": "assistant", "content": text}
        if thinking:
            message["thinking"] = thinking
        if calls:
            message["tool_calls"] = [self._tool_call(call) for call in calls]
        return {"message": message}

    def _tool_call(self, call: ToolCall) -> dict:
        # The id is not in Ollama's API; a client that echoes it back gets its result linked exactly.
        arguments = ujson.loads(call.arguments) if call.arguments.strip() else {}
        index = self.tool_calls.index(call)
        return {"id": call.id, "function": {"index": index, "name": call.name, "arguments": arguments}}


class OllamaGenerateEncoder(OllamaEncoder):
    """/api/generate: pieces of the `response` text. It takes no tools, so there are no calls to place."""

    def _answer(self, text: str, thinking: str = "", calls: list[ToolCall] | None = None) -> dict:
        return {"response": text, "thinking": thinking} if thinking else {"response": text}
