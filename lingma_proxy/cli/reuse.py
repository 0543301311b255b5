"""`check`'s line about session reuse: the canary's verdict on file for this runtime, or a fresh one
(`check --recheck-reuse`), which then replaces the one on file (docs/features.md §3)."""

from __future__ import annotations

from pathlib import Path

from ..config import Config
from ..errors import ApiError
from ..model import ModelInfo
from ..reuse_verdicts import Verdict, VerdictStore, now_utc, runtime_identity
from ..upstream.pool import Instance
from ..upstream.reuse_canary import run_reuse_canary


async def reuse_line(cfg: Config, inst: Instance, models: list[ModelInfo], recheck: bool) -> str:
    if cfg.sessions.reuse != "auto" and not recheck:
        return f"session reuse: {cfg.sessions.reuse} (sessions.reuse)"
    assert inst.client is not None
    identity = runtime_identity(inst.client.family, inst.client.runtime_version, inst.client.dialect_name)
    # The verdicts belong to the configured work dir, not to check's temporary copy of it.
    store = VerdictStore(Path(cfg.lingma.work_dir))
    if recheck:
        try:
            outcome = await run_reuse_canary(inst.client, models[0].id if models else cfg.lingma.default_model)
        except ApiError as err:
            return f"session reuse: the canary failed, the verdict on file stands ({err.message})"
        detail = f"asked for {outcome.word!r}, got {outcome.answer!r}"
        store.save(identity, Verdict(outcome.remembered, now_utc(), detail))
    verdict = store.load().get(identity)
    if verdict is None:
        return f"session reuse: auto, {identity}: not checked yet (serve runs the canary once, or --recheck-reuse)"
    state = "on" if verdict.remembered else "off"
    return f"session reuse: auto, {identity}: {state} (canary of {verdict.checked_at}: {verdict.detail})"
