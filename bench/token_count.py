#!/usr/bin/env python3
"""Token counting of a growing agent conversation: a full count vs. a count that extends one already made.

    .venv/bin/python bench/token_count.py

Turn N+1 of an agent conversation repeats turn N's prompt and adds to it; counting it should cost what
it adds, and give exactly the full count. Target (issue #22): a ~1 MB prompt that extends an already-counted
one costs ≤ 5 ms.
"""

from __future__ import annotations

import sys
import time

import workloads  # noqa: F401  (puts the repo on sys.path)

from lingma_proxy import tokens

TARGET_MS = 5.0
REPEATS = 5


def conversation(turns: int) -> str:
    """An agent-like rendered prompt: a tool-using exchange of about 1 MB over `turns` turns."""
    tool_output = "def handler(request):\n    return respond(request, status=200)  # 通义灵码\n" * 60
    turn = (
        "[User]\nPlease read src/app.py and fix the failing test in tests/test_app.py.\n"
        "[Assistant]\nI'll read the file first.\n```action\n{\"tool\": \"read_file\", \"path\": \"src/app.py\"}\n```\n"
        "[Tool result: read_file]\n" + tool_output
    )
    return turn * turns


def best_ms(action) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return min(times)


def main() -> int:
    tokens.warm_up()
    previous = conversation(200)
    current = previous + "[User]\nNow run the tests again.\n[Assistant]\n"
    full_ms = best_ms(lambda: tokens._count(current))
    exact = tokens.count_tokens(current) == tokens._count(current)
    extend_ms = []
    for _ in range(REPEATS):
        tokens._PIECE_COUNTS = tokens._PieceCounts(tokens._REMEMBERED_PIECES)  # only the previous turn is known
        tokens.count_tokens(previous)
        started = time.perf_counter()
        tokens.count_tokens(current)
        extend_ms.append((time.perf_counter() - started) * 1000)
    extend = min(extend_ms)
    verdict = "PASS" if extend <= TARGET_MS and exact else "FAIL"
    print(f"prompt {len(current.encode()) / 1e6:.2f} MB, {tokens._count(current):,} tokens")
    print(f"  full count                                   {full_ms:8.2f} ms")
    print(f"  count extending the previous turn's prompt   {extend:8.2f} ms   [{verdict}] target ≤ {TARGET_MS:g} ms")
    print(f"  equal to the full count                      {exact}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
