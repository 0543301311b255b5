"""Checks 1-4: the handshake, auth/status, config/queryModels and the dialect (docs/protocol.md §3, §4, §9)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from lingma_proxy.probe.report import FAIL, PASS, CheckResult
from lingma_proxy.probe.state import ProbeState, elapsed_ms
from lingma_proxy.redact import MASK, is_secret_key
from lingma_proxy.upstream.client import DEFAULT_PROBE_TIMEOUT_SEC, connect_client, initialize_params
from lingma_proxy.upstream.dialects import CONTROL_TIMEOUT_SEC, acp_try_session
from lingma_proxy.upstream.rpc import ConnectionLost, RpcConnection, RpcError, RpcTimeout
from lingma_proxy.upstream.transport import WEBSOCKET, Endpoint

# auth/status fields whose values identify the user or grant access: shown by length only (§4).
IDENTITY_KEYS = ("name", "id", "accountId", "token", "refreshToken")
MIN_REDACTED_CHARS = 4  # shorter values would mask ordinary words all over the report


async def _token_fact(endpoint: Endpoint) -> str:
    """Whether the Cosy-MachineToken header is needed here (§11.3): try once without it. Never shows the token."""
    if not endpoint.machine_token:
        return "machine token: none beside the info file; connected without one"
    if endpoint.transport != WEBSOCKET:
        return f"machine token: present, not used (a {endpoint.transport} socket has no upgrade headers)"
    try:
        rpc = await RpcConnection.connect(dataclasses.replace(endpoint, machine_token=""), CONTROL_TIMEOUT_SEC)
    except (ConnectionLost, RpcTimeout):
        return "machine token: NEEDED (refused without the Cosy-MachineToken header, accepted with it)"
    rpc.close()
    return "machine token: present but not needed (accepted without the header too)"


async def check_handshake(state: ProbeState) -> CheckResult:
    """On a connection of its own: initialize, then `initialized`, then whether the next call still gets answered."""
    rpc = await RpcConnection.connect(state.endpoint, CONTROL_TIMEOUT_SEC)
    stray_errors: list[dict] = []

    def keep_stray_error(message: dict) -> None:
        if "error" in message and message.get("id") is None:  # how an error reply to a notification must come
            stray_errors.append(message)

    rpc.add_observer(keep_stray_error)
    try:
        started = time.monotonic()
        result = await rpc.call("initialize", initialize_params("auto", state.workspace), CONTROL_TIMEOUT_SEC)
        facts = [f"initialize answered in {elapsed_ms(started)}"]
        result = result if isinstance(result, dict) else {}
        info = result.get("serverInfo") if isinstance(result.get("serverInfo"), dict) else {}
        shown = f"name {info.get('name')!r}, version {info.get('version')!r}" if info else "absent"
        facts.append(f"serverInfo: {shown}")
        facts.append(f"initialize result keys: {', '.join(result) or '(none)'}")
        tolerated = await _initialized_tolerated(rpc, facts, stray_errors)
        state.session_new_fact = await _session_new_fact(rpc, str(state.workspace))
    finally:
        rpc.close()
    facts.append(f"transport: {rpc.transport}")
    state.token_fact = await _token_fact(state.endpoint)
    facts.append(state.token_fact)
    return CheckResult(1, "handshake", PASS if tolerated else FAIL, facts)


async def _initialized_tolerated(rpc: RpcConnection, facts: list[str], stray_errors: list[dict]) -> bool:
    await rpc.notify("initialized", {})
    try:
        await rpc.call("auth/status", {}, CONTROL_TIMEOUT_SEC)  # its answer is not looked at: it holds tokens
        answered = "answered"
    except RpcError as err:
        answered = f"answered with error {err.code} {err.message!r}"
    except (RpcTimeout, ConnectionLost) as exc:
        facts.append(f"initialized: NOT tolerated: the next call failed ({exc})")
        return False
    errors = f"; error replies: {[m['error'] for m in stray_errors]}" if stray_errors else "; no error reply"
    facts.append(f"initialized: tolerated (the next call was {answered}{errors})")
    return True


async def _session_new_fact(rpc: RpcConnection, cwd: str) -> str:
    """What session/new does here, the evidence behind the dialect decision of check 4 (§9)."""
    started = time.monotonic()
    try:
        await acp_try_session(rpc, cwd, DEFAULT_PROBE_TIMEOUT_SEC)
    except RpcError as err:
        return f"session/new on a separate connection: error {err.code} {err.message!r} after {elapsed_ms(started)}"
    except RpcTimeout:
        return f"session/new on a separate connection: no answer within {DEFAULT_PROBE_TIMEOUT_SEC:g} s"
    return f"session/new on a separate connection: a session id after {elapsed_ms(started)}"


async def check_dialect(state: ProbeState) -> CheckResult:
    """The client's own dialect probe (lingma.dialect auto), timed; its connection serves the later checks."""
    started = time.monotonic()
    client = await connect_client(
        state.endpoint, rpc_timeout=state.rpc_timeout, dialect_setting="auto", workspace=state.workspace
    )
    took = elapsed_ms(started)
    client.rpc.add_observer(state.tap)
    state.client, state.dialect = client, client.dialect_name
    state.family, state.runtime_version, state.transport = client.family, client.runtime_version, client.transport
    how = "chat/ask" if state.dialect == "classic" else "session/new + session/prompt"
    facts = [
        f"dialect: {state.dialect} ({how})",
        f"decided by connect_client's probe (initialize, then session/new with a "
        f"{DEFAULT_PROBE_TIMEOUT_SEC:g} s limit) in {took}",
        state.session_new_fact,
    ]
    configured = state.cfg.lingma.dialect
    if configured not in ("auto", state.dialect):
        facts.append(f"config sets lingma.dialect: {configured}, which this Lingma does not speak: set it to auto")
        return CheckResult(4, "dialect", FAIL, facts)
    return CheckResult(4, "dialect", PASS, facts)


def _hidden(value: Any) -> str:
    if value in (None, ""):
        return "<empty>"
    if value == MASK:  # already masked by the client layer: a token
        return "<redacted, set>"
    return f"<redacted, {len(str(value))} chars>"


async def check_auth(state: ProbeState) -> CheckResult:
    assert state.client is not None
    status = await state.client.auth_status()
    raw = status.raw  # tokens are already "***"; name and ids are not, so they are never printed below
    for key, value in raw.items():
        if (key in IDENTITY_KEYS or is_secret_key(key)) and isinstance(value, (str, int)):
            if len(str(value)) >= MIN_REDACTED_CHARS:
                state.redactor.add(str(value))  # in case a model answer or an error message repeats it
    state.logged_in = status.logged_in
    hidden = [f"{key} {_hidden(raw[key])}" for key in raw if key in IDENTITY_KEYS or is_secret_key(key)]
    facts = [
        f"keys: {', '.join(raw) or '(none)'}",
        f"status: {raw.get('status')!r} ({'logged in' if status.logged_in else 'logged out'}), "
        f"userType: {raw.get('userType')!r}",
        f"hidden: {', '.join(hidden) or '(nothing)'}",
    ]
    return CheckResult(2, "auth/status", PASS if "status" in raw else FAIL, facts)


def _pick_model(models: dict[str, list[dict]], preferred: str) -> str:
    """lingma.default_model when this account has it, else the chat scene's first model."""
    keys = [m.get("key") for scene in ("chat", *models) for m in models.get(scene, []) if isinstance(m, dict)]
    keys = [key for key in keys if isinstance(key, str) and key]
    return preferred if preferred in keys or not keys else keys[0]


async def check_models(state: ProbeState) -> CheckResult:
    assert state.client is not None
    models = await state.client.query_models()
    state.model_key = _pick_model(models, state.cfg.lingma.default_model)
    if not models:
        if state.logged_in:
            return CheckResult(3, "config/queryModels", FAIL, ["no scenes, although auth/status says logged in"])
        return CheckResult(3, "config/queryModels", PASS, ["no scenes ({}), as expected when logged out"])
    by_listing: dict[str, list[str]] = {}  # scenes with the same models share one line
    fields: dict[str, None] = {}
    for scene, entries in models.items():
        shown = []
        for model in (m for m in entries if isinstance(m, dict)):
            fields.update(dict.fromkeys(model))
            tags = [tag for tag, key in (("reasoning", "isReasoning"), ("vl", "isVl")) if model.get(key)]
            shown.append(f"{model.get('key')}" + (f" [{', '.join(tags)}]" if tags else ""))
        by_listing.setdefault(", ".join(shown) or "(empty)", []).append(scene)
    facts = [f"{', '.join(scenes)}: {listing}" for listing, scenes in by_listing.items()]
    facts.append(f"model fields: {', '.join(fields)}")
    facts.append(f"model for the chat checks: {state.model_key}")
    return CheckResult(3, "config/queryModels", PASS, facts)
