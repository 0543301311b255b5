"""Check 9: does a copy of a logged-in work dir start logged in? (docs/protocol.md §7, session bundles)"""

from __future__ import annotations

from lingma_proxy.login.bundles import clone_work_dir
from lingma_proxy.probe.report import FAIL, PASS, CheckResult
from lingma_proxy.probe.state import ProbeState
from lingma_proxy.probe.target import Target
from lingma_proxy.upstream.client import connect_client

NAME = "cloned work dir"


def clone_skip_reason(target: Target, state: ProbeState) -> str | None:
    if target.attached:
        return "attach mode: the attached Lingma is not the probe's to stop or copy"
    if not state.logged_in:
        return "not logged in: the probed instance has no login to clone"
    return None


async def check_clone(target: Target, state: ProbeState) -> CheckResult:
    """Stop the probed instance (its work dir must be quiescent, §7), clone it, start a new one on the clone."""
    if state.client is not None:
        state.client.close()
        state.client = None
    await target.stop()
    clone_dir = target.root / "clone"
    files = clone_work_dir(target.work_dir, clone_dir, "probe")
    facts = [f"stopped the instance, copied {files} files by the session-bundle rules (no logs/, .info*, sockets)"]
    process = await target.spawn(clone_dir, "probe-clone")
    try:
        client = await connect_client(
            target.endpoint_of(process),
            rpc_timeout=state.rpc_timeout,
            dialect_setting=state.dialect,
            workspace=state.workspace,
        )
        try:
            status = await client.auth_status()
        finally:
            client.close()
    finally:
        await process.stop()
    facts.append(f"a new instance on the copy says status {status.raw.get('status')!r}")
    if status.logged_in:
        facts.append("logged in: copying the whole work dir carries the login")
        return CheckResult(9, NAME, PASS, facts)
    facts.append("NOT logged in: a copied work dir does not carry the login here, so session bundles will not work")
    return CheckResult(9, NAME, FAIL, facts)
