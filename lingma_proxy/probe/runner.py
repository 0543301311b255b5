"""run_probe(): the fixed list of protocol checks against one Lingma, each bounded in time, then the report."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from lingma_proxy.config import Config, secret_values
from lingma_proxy.errors import ApiError
from lingma_proxy.probe.chat_checks import check_concurrency, check_finish, check_memory, check_stream
from lingma_proxy.probe.clone import NAME as CLONE_NAME
from lingma_proxy.probe.clone import check_clone, clone_skip_reason
from lingma_proxy.probe.handshake import check_auth, check_dialect, check_handshake, check_models
from lingma_proxy.probe.report import FAIL, SKIP, CheckResult, header_lines, render
from lingma_proxy.probe.state import ProbeState
from lingma_proxy.probe.target import Target, choose_target, describe
from lingma_proxy.redact import Redactor
from lingma_proxy.upstream.attach import NoAttachTarget
from lingma_proxy.upstream.dialects import CONTROL_TIMEOUT_SEC
from lingma_proxy.upstream.process import LingmaStartError

_log = logging.getLogger("lingma_proxy.probe")

CHAT_BUDGET_SEC = 90.0
CLEANUP_BUDGET_SEC = 10.0


@dataclass(frozen=True)
class Step:
    number: int
    name: str
    run: Callable[[ProbeState], Awaitable[CheckResult]]
    budget_sec: float
    skip_reason: Callable[[ProbeState], str | None]


def _no_client(state: ProbeState) -> str | None:
    return None if state.client is not None else "no connection to Lingma (see check 4)"


def _no_login(state: ProbeState) -> str | None:
    return _no_client(state) or (None if state.logged_in else "not logged in (see check 2)")


def _no_stream(state: ProbeState) -> str | None:
    return _no_login(state) or (None if state.stream_run is not None else "no streamed answer (see check 5)")


def _steps(target: Target) -> list[Step]:
    """In running order: 4 connects the client that 2, 3 and 5-8 use; 9 stops the instance, so it comes last."""
    return [
        Step(1, "handshake", check_handshake, 2 * CONTROL_TIMEOUT_SEC + 10, lambda state: None),
        Step(4, "dialect", check_dialect, 2 * CONTROL_TIMEOUT_SEC + 10, lambda state: None),
        Step(2, "auth/status", check_auth, CONTROL_TIMEOUT_SEC + 5, _no_client),
        Step(3, "config/queryModels", check_models, CONTROL_TIMEOUT_SEC + 5, _no_client),
        Step(5, "streamed answer", check_stream, CHAT_BUDGET_SEC, _no_login),
        Step(6, "finish", check_finish, CONTROL_TIMEOUT_SEC, _no_stream),
        Step(7, "two-turn memory", check_memory, 2 * CHAT_BUDGET_SEC, _no_login),
        Step(8, "concurrency", check_concurrency, CHAT_BUDGET_SEC, _no_login),
        Step(
            9,
            CLONE_NAME,
            lambda state: check_clone(target, state),
            2 * target.cfg.lingma.startup_timeout + 2 * CONTROL_TIMEOUT_SEC,
            lambda state: clone_skip_reason(target, state),
        ),
    ]


async def _run_step(step: Step, state: ProbeState) -> CheckResult:
    reason = step.skip_reason(state)
    if reason:
        return CheckResult(step.number, step.name, SKIP, [reason])
    try:
        return await asyncio.wait_for(step.run(state), step.budget_sec)
    except TimeoutError:
        return CheckResult(step.number, step.name, FAIL, [f"no result within {step.budget_sec:g} s"])
    except ApiError as err:
        return CheckResult(step.number, step.name, FAIL, [err.message])
    except Exception as exc:  # a probe reports every check; one that breaks must not lose the others
        _log.debug("check %d failed", step.number, exc_info=True)
        return CheckResult(step.number, step.name, FAIL, [f"{type(exc).__name__}: {exc}"])


async def _forget_sessions(state: ProbeState) -> None:
    """Delete the probe's chats upstream, so they don't linger in the account's history (best effort)."""
    client = state.client
    if client is None:
        return
    for session_id in state.session_ids:
        try:
            await asyncio.wait_for(client.delete_session(session_id), CLEANUP_BUDGET_SEC)
        except (TimeoutError, ApiError) as exc:
            _log.debug("could not delete probe session %s: %r", session_id, exc)


async def _probe(target: Target, state: ProbeState) -> list[CheckResult]:
    steps = _steps(target)
    try:
        await target.start()
    except (LingmaStartError, NoAttachTarget) as err:
        why = "nothing to attach to" if isinstance(err, NoAttachTarget) else "Lingma did not start"
        failed = CheckResult(1, "handshake", FAIL, [f"{why}: {err}"])
        return [failed, *(CheckResult(s.number, s.name, SKIP, [why]) for s in steps[1:])]
    state.endpoint = target.endpoint
    results = []
    for step in steps:
        if step.number == 9:
            await _forget_sessions(state)
        results.append(await _run_step(step, state))
    if state.client is not None:
        state.client.close()
    return results


async def run_probe(cfg: Config, binary: str | None, attach: str | None) -> int:
    """Probe the Lingma named by --attach, --binary or config.yaml; print the report; 0 unless a check failed."""
    redactor = Redactor(secret_values(cfg))
    try:
        upstream = choose_target(cfg, binary, attach)
    except ApiError as err:
        print(redactor.redact(f"probe: cannot find the Lingma to probe: {err.message}"))
        return 1
    target = Target(cfg, upstream, redactor)
    state = ProbeState(cfg, target.endpoint, target.workspace, redactor)
    try:
        results = await _probe(target, state)
    finally:
        await target.close()
    runtime = [
        f"  runtime:      {' '.join(filter(None, (state.family, state.runtime_version))) or '(unknown)'}",
        f"  transport:    {state.transport or '(unknown)'}",
        f"  info file:    {target.info_note()}",
        f"  {state.token_fact}",
    ]
    header = header_lines(describe(upstream), target.work_note, state.dialect, cfg.source) + runtime
    print(render(header, results, redactor))
    return 1 if any(result.status == FAIL for result in results) else 0
