"""The bench's canned replies and request bodies, shared by the floor server, the simulator scenario and
the direct-upstream runs, so every target streams the same text in the same number of chunks.

A prompt starts with a marker; the simulator's scenario and the floor server both pick the reply by it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import ujson
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # every bench module imports this one first: lingma_proxy and tests become importable

from lingma_proxy.prompt import render_prompt  # noqa: E402
from lingma_proxy.wire.anthropic import decode_messages_request  # noqa: E402

AGENT_FIXTURE = REPO / "tests" / "fixtures" / "clients" / "claude-code-turn1.json"

CHUNK_CHARS = 8  # the simulator's default chunk size; every canned reply is split the same way
STREAM_CHUNKS = 500
BURST_CHUNKS = 100
BIG_PROMPT_BYTES = 1024 * 1024

SMALL_MARKER = "BENCH-SMALL"
STREAM_MARKER = "BENCH-STREAM"
BURST_MARKER = "BENCH-BURST"
BIG_MARKER = "BENCH-BIG"

SMALL_REPLY = "Hello from the bench."
# "tok0000 ", "tok0001 ", ...: exactly CHUNK_CHARS each, so N chunks is N upstream deltas.
STREAM_REPLY = "".join(f"tok{i:04d} " for i in range(STREAM_CHUNKS))
BURST_REPLY = STREAM_REPLY[: BURST_CHUNKS * CHUNK_CHARS]

_REPLIES = (
    (STREAM_MARKER, STREAM_REPLY),
    (BURST_MARKER, BURST_REPLY),
    (SMALL_MARKER, SMALL_REPLY),
    (BIG_MARKER, SMALL_REPLY),
)


def reply_for(prompt: str) -> str:
    """The canned reply for a prompt (the agent request has no marker and gets the small one)."""
    for marker, reply in _REPLIES:
        if prompt.startswith(marker):
            return reply
    return SMALL_REPLY


def split_chunks(text: str) -> list[str]:
    return [text[i : i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)]


def scenario_rules() -> list[dict]:
    """The simulator scenario: fast, deterministic replies keyed by the same markers."""
    return [{"match": f"^{marker}", "reply": reply, "chunk_chars": CHUNK_CHARS} for marker, reply in _REPLIES]


def write_scenario(path: Path) -> Path:
    path.write_text(yaml.safe_dump({"rules": scenario_rules()}), encoding="utf-8")
    return path


def big_prompt() -> str:
    """About 1 MB of mixed ASCII and CJK text (so the tokenizer and the UTF-8 paths both do real work)."""
    line = "The proxy forwards every byte of this prompt; 通义灵码 counts its tokens.\n"
    return BIG_MARKER + "\n" + line * (BIG_PROMPT_BYTES // len(line.encode("utf-8")))


def chat_body(model: str, prompt: str, stream: bool) -> bytes:
    body: dict = {"model": model, "messages": [{"role": "user", "content": prompt}], "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    return ujson.dumps(body, ensure_ascii=False).encode("utf-8")


def messages_body(model: str, prompt: str, stream: bool) -> bytes:
    """The same question as chat_body, on Anthropic's Messages API."""
    body = {"model": model, "max_tokens": 1024, "stream": stream, "messages": [{"role": "user", "content": prompt}]}
    return ujson.dumps(body, ensure_ascii=False).encode("utf-8")


def agent_body(model: str) -> bytes:
    """Claude Code's first turn (~49 KB, 12 tools), as recorded, with the model swapped for the target's."""
    body = ujson.loads(AGENT_FIXTURE.read_text(encoding="utf-8"))
    body["model"] = model
    return ujson.dumps(body, ensure_ascii=False).encode("utf-8")


def agent_prompt() -> str:
    """What the proxy sends upstream for the agent request, for the direct-upstream run."""
    return render_prompt(decode_messages_request(ujson.loads(AGENT_FIXTURE.read_text(encoding="utf-8"))))
