#!/usr/bin/env python3
"""Session reuse: upstream prompt bytes for a 10-turn agent conversation, reuse on vs off.

    .venv/bin/python bench/session_reuse.py

The conversation starts from Qwen Code's recorded first turn (its 23 KB system prompt, 10 tools and
first user message) and goes on for 10 requests, as an agent does: every user turn makes the model call
`read_file` (a scenario rule answers with an action block), the agent sends the file back as the tool
result, the model answers in text, the next user turn follows. Each request resends the whole history,
with the assistant messages exactly as the proxy returned them. The simulator counts the bytes of every
question it receives (`total_question_bytes` on /sim/status); the proxy runs once with sessions.reuse
off and once on.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx
import ujson
import workloads  # noqa: F401  (puts the repo on sys.path)
import yaml
from targets import API_KEY, start_lingma_proxy
from workloads import REPO

from harness.proxy import Proxy

BASE_FIXTURE = REPO / "tests" / "fixtures" / "clients" / "qwen-code-turn1.json"
TURNS = 10
CALL_TOOL = "[[call-tool]]"
USER_TURNS = [
    "Find where the proxy reads its configuration.",
    "Now open the tests that cover it.",
    "Show me the handler that renders errors.",
    "Where is the session cache kept?",
    "Last one: open the pool module.",
]
# The model calls read_file whenever the newest message ends with the marker (full prompt or delta alike).
TOOL_RULE = {
    "match": r"\[\[call-tool\]\]\s*(\[Assistant\]\s*)?$",
    "reply": '```json action\n{"tool": "read_file", "parameters": {"file_path": "/srv/app/module.py"}}\n```',
    "chunk_chars": 64,
}


def file_contents(turn: int) -> str:
    """About 3 KB of plausible source, different each time so nothing is accidentally shared."""
    lines = [
        f"def handler_{turn}_{i}(request):  # line {i}\n    return render(request, 'view_{i}.html')\n"
        for i in range(40)
    ]
    return "".join(lines)


def first_request() -> dict:
    body = ujson.loads(BASE_FIXTURE.read_text(encoding="utf-8"))
    body.update(model="auto", stream=False)
    body.pop("stream_options", None)
    user = body["messages"][-1]
    user["content"] = [*user["content"], {"type": "text", "text": f"{USER_TURNS[0]} {CALL_TOOL}"}]
    return body


def next_messages(assistant: dict, turn: int) -> list[dict]:
    """What the agent sends after the assistant's reply: the tool result(s), or the next user turn."""
    calls = assistant.get("tool_calls") or []
    if calls:
        return [{"role": "tool", "tool_call_id": call["id"], "content": file_contents(turn)} for call in calls]
    return [{"role": "user", "content": f"{USER_TURNS[min(turn // 2, len(USER_TURNS) - 1)]} {CALL_TOOL}"}]


def replay(proxy: Proxy) -> dict:
    """Play the 10 requests; the simulator's counters and what each turn sent upstream."""
    body = first_request()
    headers = {"Authorization": f"Bearer {API_KEY}"}
    tool_calls = 0
    started = time.perf_counter()
    with httpx.Client(base_url=proxy.url, headers=headers, timeout=60) as client:
        for turn in range(1, TURNS + 1):
            response = client.post("/v1/chat/completions", json=body)
            response.raise_for_status()
            message = response.json()["choices"][0]["message"]
            assistant = {"role": "assistant", "content": message.get("content")}
            if message.get("tool_calls"):
                assistant["tool_calls"] = message["tool_calls"]
                tool_calls += 1
            body["messages"] = [*body["messages"], assistant, *next_messages(assistant, turn)]
    elapsed = time.perf_counter() - started
    status = proxy.sim_status()
    asks = status["asks"][-TURNS:]
    return {
        "total_question_bytes": status["total_question_bytes"],
        "asks": status["ask_count"],
        "continued": sum(1 for ask in asks if ask["isReply"]),
        "per_turn_bytes": [ask["question_bytes"] for ask in asks],
        "tool_calls": tool_calls,
        "seconds": elapsed,
    }


def run_mode(tmp: Path, reuse: bool) -> dict:
    scenario = tmp / "reuse-scenario.yaml"
    scenario.write_text(yaml.safe_dump({"rules": [TOOL_RULE]}), encoding="utf-8")
    overrides = {"sessions": {"reuse": reuse}, "lingma": {"simulator": {"scenario": str(scenario)}}}
    target, proxy = start_lingma_proxy(tmp / ("reuse-on" if reuse else "reuse-off"), overrides)
    try:
        return replay(proxy)
    finally:
        target.stop()


def report(off: dict, on: dict) -> str:
    lines = [
        f"session reuse: a {TURNS}-request agent conversation (Qwen Code's first turn, then 5 read_file round "
        "trips), upstream prompt bytes as counted by the simulator",
        f"{'request':>8} {'reuse off':>12} {'reuse on':>12}",
    ]
    for index, (a, b) in enumerate(zip(off["per_turn_bytes"], on["per_turn_bytes"], strict=False), 1):
        lines.append(f"{index:>8} {a:>12,} {b:>12,}")
    ratio = off["total_question_bytes"] / on["total_question_bytes"] if on["total_question_bytes"] else float("nan")
    lines += [
        f"{'total':>8} {off['total_question_bytes']:>12,} {on['total_question_bytes']:>12,}"
        f"   off ÷ on = {ratio:.2f}×  (on sends {100 / ratio:.0f}% of the bytes)",
        f"  requests sent as a continuation of an upstream session (isReply): off {off['continued']}/{TURNS}, "
        f"on {on['continued']}/{TURNS}",
        f"  tool calls returned: off {off['tool_calls']}, on {on['tool_calls']}; "
        f"wall time: off {off['seconds']:.2f} s, on {on['seconds']:.2f} s",
    ]
    if on["continued"] == 0:
        lines.append("  note: reuse on continued no session; session reuse is not (yet) taking effect on this path")
    return "\n".join(lines)


def main() -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    with tempfile.TemporaryDirectory(prefix="lingma-reuse-") as tmp:
        off = run_mode(Path(tmp), reuse=False)
        on = run_mode(Path(tmp), reuse=True)
    print(report(off, on))
    return 0


if __name__ == "__main__":
    sys.exit(main())
