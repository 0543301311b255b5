"""The Finish of one completion: why it ended, its usage, and when its first token came."""

from __future__ import annotations

import time

from ..events import Finish, Latency, Usage


def usage_of(input_tokens: int, output_tokens: int, upstream_context: int | None) -> Usage:
    """Our own counts, except that the upstream's context figure, when it reports one,
    also covers what Lingma adds to the prompt: the input is then that context less this answer. Both
    dialects report it (agent context_usage, classic context/usage/sync)."""
    if upstream_context is not None and upstream_context > output_tokens:
        return Usage(upstream_context - output_tokens, output_tokens)
    return Usage(input_tokens, output_tokens)


def finish(
    reason: str, usage: Usage, stop_sequence: str | None, served_by: str, started: float, first_at: float | None,
    *, upstream_tokens: int, session_reused: bool,
) -> Finish:  # fmt: skip
    now = time.monotonic()
    first_ms = None if first_at is None else int((first_at - started) * 1000)
    return Finish(
        reason=reason,  # type: ignore[arg-type]
        usage=usage,
        stop_sequence=stop_sequence,
        served_by=served_by,
        latency=Latency(first_token_ms=first_ms, total_ms=int((now - started) * 1000)),
        upstream_tokens=upstream_tokens,
        session_reused=session_reused,
    )
