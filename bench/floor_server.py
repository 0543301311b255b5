"""The floor: a minimal Tornado server, OpenAI- and Anthropic-shaped, with no upstream at all.

    .venv/bin/python bench/floor_server.py --port 8790

It parses the body, picks the canned reply from bench/workloads.py and answers it as one JSON body or
as SSE, one event per chunk, flushed per event like the proxy. What it costs is the price of HTTP + JSON
in Tornado on this machine; nothing serving these APIs from Python can be cheaper.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import tornado.httpserver
import tornado.web
import ujson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workloads import reply_for, split_chunks  # noqa: E402


def _dumps(value: dict) -> bytes:
    return ujson.dumps(value, ensure_ascii=False).encode("utf-8")


def _last_user_text(messages: list) -> str:
    content = messages[-1].get("content", "") if messages else ""
    if isinstance(content, list):  # Anthropic / OpenAI content blocks
        content = "".join(block.get("text", "") for block in content if isinstance(block, dict))
    return content if isinstance(content, str) else ""


def _chat_events(chunk: dict, reply: str, usage: dict | None) -> Iterator[bytes]:
    def event(delta: dict, finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return b"data: " + _dumps({**chunk, "choices": [choice]}) + b"\n\n"

    yield event({"role": "assistant", "content": ""})
    for piece in split_chunks(reply):
        yield event({"content": piece})
    yield event({}, "stop")
    if usage is not None:
        yield b"data: " + _dumps({**chunk, "choices": [], "usage": usage}) + b"\n\n"
    yield b"data: [DONE]\n\n"


def _message_events(message: dict, reply: str, usage: dict) -> Iterator[bytes]:
    def event(name: str, data: dict) -> bytes:
        return b"event: " + name.encode() + b"\ndata: " + _dumps(data) + b"\n\n"

    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 0}}
    yield event("message_start", {"type": "message_start", "message": start})
    yield event(
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    )
    for piece in split_chunks(reply):
        delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
        yield event("content_block_delta", delta)
    yield event("content_block_stop", {"type": "content_block_stop", "index": 0})
    yield event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": usage})
    yield event("message_stop", {"type": "message_stop"})


class FloorHandler(tornado.web.RequestHandler):
    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json")

    def check_xsrf_cookie(self) -> None:
        pass

    async def _send_events(self, events: Iterator[bytes]) -> None:
        """Each event is encoded only when it is its turn, as a server streaming a live answer would."""
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        for event in events:
            self.write(event)
            await self.flush()
        self.finish()


class ChatCompletions(FloorHandler):
    async def post(self) -> None:
        body = ujson.loads(self.request.body)
        model = body.get("model", "floor")
        reply = reply_for(_last_user_text(body.get("messages") or []))
        base = {"id": "chatcmpl-floor", "created": int(time.time()), "model": model}
        usage = {"prompt_tokens": 1, "completion_tokens": len(reply) // 4 + 1, "total_tokens": len(reply) // 4 + 2}
        if not body.get("stream"):
            message = {"role": "assistant", "content": reply}
            choice = {"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}
            self.finish(_dumps({**base, "object": "chat.completion", "choices": [choice], "usage": usage}))
            return
        chunk = {**base, "object": "chat.completion.chunk"}
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        await self._send_events(_chat_events(chunk, reply, usage if include_usage else None))


class Messages(FloorHandler):
    async def post(self) -> None:
        body = ujson.loads(self.request.body)
        model = body.get("model", "floor")
        reply = reply_for(_last_user_text(body.get("messages") or []))
        usage = {"input_tokens": 1, "output_tokens": len(reply) // 4 + 1}
        message = {"id": "msg_floor", "type": "message", "role": "assistant", "model": model, "stop_sequence": None}
        if not body.get("stream"):
            content = [{"type": "text", "text": reply}]
            self.finish(_dumps({**message, "content": content, "stop_reason": "end_turn", "usage": usage}))
            return
        await self._send_events(_message_events(message, reply, usage))


class Models(FloorHandler):
    def get(self) -> None:
        self.finish(_dumps({"object": "list", "data": [{"id": "floor", "object": "model", "owned_by": "bench"}]}))


def make_app() -> tornado.web.Application:
    return tornado.web.Application(
        [(r"/v1/chat/completions", ChatCompletions), (r"/v1/messages", Messages), (r"/v1/models", Models)],
        log_function=lambda handler: None,
    )


async def main(host: str, port: int) -> None:
    server = tornado.httpserver.HTTPServer(make_app(), max_body_size=64 * 1024 * 1024)
    server.listen(port, address=host)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        asyncio.run(main(args.host, args.port))
    except KeyboardInterrupt:
        pass
