"""sessions.reuse: `on`, `off`, or `auto`: reuse a session only on a runtime whose canary kept the history.

With `auto` (the default) the first instance of a runtime (family, version, dialect) that comes up runs
the two-turn canary (upstream/reuse_canary.py) in the background; its verdict is kept in the work dir
(reuse_verdicts.py), so each runtime version costs two tiny requests once. Until a verdict is in, and
after a negative one, every turn is a full resend (docs/features.md §3, docs/protocol.md §11.6).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging

from ..errors import ApiError
from ..models import ModelRegistry
from ..reuse_verdicts import Verdict, VerdictStore, now_utc, runtime_identity
from ..upstream.pool import Instance, Pool
from ..upstream.reuse_canary import run_reuse_canary

log = logging.getLogger("lingma_proxy.sessions")


def identity_of(inst: Instance) -> str:
    return runtime_identity(inst.family, inst.runtime_version, inst.dialect)


class ReuseTrust:
    def __init__(self, mode: str, default_model: str, pool: Pool, models: ModelRegistry, store: VerdictStore) -> None:
        self.mode = mode
        self._default_model = default_model
        self._pool = pool
        self._models = models
        self._store = store
        self._verdicts: dict[str, Verdict] = store.load() if mode == "auto" else {}
        self._running: dict[str, asyncio.Task] = {}
        self._problems: dict[str, str] = {}  # runtime -> why its last canary gave no verdict
        if mode == "auto":
            pool.ready_listeners.append(self.instance_ready)

    def allowed(self, instance_name: str) -> bool:
        """May a session on this instance be continued with a delta?"""
        if self.mode != "auto":
            return self.mode == "on"
        inst = next((i for i in self._pool.instances if i.name == instance_name), None)
        verdict = self._verdicts.get(identity_of(inst)) if inst is not None else None
        return verdict is not None and verdict.remembered

    def instance_ready(self, inst: Instance) -> None:
        """A logged-in instance: test its runtime unless that runtime has a verdict or is being tested."""
        identity = identity_of(inst)
        if identity in self._verdicts or identity in self._running:
            return
        # A fresh context: the canary must not carry the request id of a request that happened to notice.
        task = asyncio.create_task(self._settle(inst, identity), context=contextvars.Context())
        self._running[identity] = task
        task.add_done_callback(lambda _: self._running.pop(identity, None))

    async def recheck(self, inst: Instance) -> Verdict:
        """Run the canary now, whatever is on file (`check --recheck-reuse`, or a test)."""
        return await self._canary(inst, identity_of(inst))

    async def _settle(self, inst: Instance, identity: str) -> None:
        try:
            await self._canary(inst, identity)
        except ApiError as err:
            self._problems[identity] = err.message
            log.warning("session reuse stays off on %s: its canary failed (%s)", identity, err.message)

    async def _canary(self, inst: Instance, identity: str) -> Verdict:
        if inst.client is None:
            raise ApiError("unavailable", f"instance {inst.name} is not connected")
        model = await self._models.resolve(self._default_model)
        outcome = await run_reuse_canary(inst.client, model.id)
        verdict = Verdict(outcome.remembered, now_utc(), f"asked for {outcome.word!r}, got {outcome.answer!r}")
        self._store.save(identity, verdict)
        if verdict.remembered:
            log.info("session reuse on for %s: follow-ups keep the session's history", identity)
        else:
            log.warning("session reuse off for %s: a follow-up lost the history (%s)", identity, verdict.detail)
        self._verdicts[identity] = verdict  # last: whoever sees the verdict also finds it on file and in the log
        self._problems.pop(identity, None)
        return verdict

    def describe(self, detail: bool = True) -> dict:
        """The mode, and per runtime the pool runs: the verdict and its date, or why there is none yet;
        `detail` adds what the canary asked and heard (admins only: /healthz is public)."""
        runtimes = {}
        for identity in sorted({identity_of(inst) for inst in self._pool.instances if inst.dialect}):
            verdict = self._verdicts.get(identity)
            if verdict is not None:
                shown = verdict.describe() if detail else {"checked_at": verdict.checked_at}
                runtimes[identity] = {"reuse": verdict.remembered, **shown}
            elif identity in self._running:
                runtimes[identity] = {"reuse": None, "state": "checking"}
            else:
                problem = self._problems.get(identity)
                state = f"canary failed: {problem}" if problem else "not checked yet"
                runtimes[identity] = {"reuse": None, "state": state}
        return {"mode": self.mode, "runtimes": runtimes}

    def summary(self) -> str:
        """One line for the startup summary and `check`."""
        if self.mode != "auto":
            return f"session reuse: {self.mode}"
        runtimes = self.describe()["runtimes"]
        if not runtimes:
            return "session reuse: auto (no runtime connected yet)"
        parts = [f"{identity}: {_word(entry)}" for identity, entry in runtimes.items()]
        return "session reuse: auto, " + "; ".join(parts)


def _word(entry: dict) -> str:
    if entry["reuse"] is None:
        return entry["state"]
    return f"{'on' if entry['reuse'] else 'off'} (canary of {entry['checked_at']})"
