"""The block `serve` logs once its pool has started: where to connect, what it drives, who may call what.

Pure functions from the config, the upstream and the instances to lines, so the block is testable
without a server; app.py logs them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from .config import Config
from .upstream.pool import Instance, Upstream


def upstream_label(upstream: Upstream) -> str:
    """simulator | binary /path/to/Lingma | attached ws://127.0.0.1:PORT/ | attached (auto: ...)"""
    if upstream.attach == "auto":
        return "attached (auto: the QoderCN or Lingma an IDE or the desktop app runs, found through its .info file)"
    if upstream.attach in ("qodercn", "lingma"):
        return f"attached ({upstream.attach}: the one an IDE or the desktop app runs, found through its .info file)"
    if upstream.attach:
        return f"attached {upstream.attach}"
    if upstream.kind == "simulator":
        return "simulator"
    return f"binary {upstream.command[0]}"


def listen_url(host: str, port: int) -> str:
    return f"http://{_bracketed(host)}:{port}"


def local_url(host: str, port: int) -> str:
    """The URL a client on this machine uses: a wildcard listen address is reached through loopback."""
    return listen_url("127.0.0.1" if host in ("0.0.0.0", "::", "") else host, port)


def _bracketed(host: str) -> str:
    try:
        return f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        return host


def dialects_of(instances: Sequence[Instance]) -> str:
    """The chat dialect(s) the connected instances settled on, e.g. "classic" or "acp, classic"."""
    settled = sorted({inst.dialect for inst in instances if inst.dialect})
    return ", ".join(settled) or "not settled (no instance connected)"


def instance_line(inst: Instance) -> str:
    account = f" (account {inst.account.name})" if inst.account else ""
    runtime = " ".join(part for part in (inst.family, inst.runtime_version) if part)
    if runtime and inst.transport:
        runtime += f" over {inst.transport}"
    if inst.logged_in:
        login = f"logged in as {inst.user_name or '(no name)'}"
    elif inst.state == "failed":
        login = inst.last_error or "failed"
    else:
        login = "not logged in"
    return f"{inst.name}{account}: {inst.state}, {login}" + (f" ({runtime})" if runtime else "")


def auth_posture_lines(cfg: Config) -> list[str]:
    """Who may call what; the header line is what operators (and tests) search the log for."""
    auth = cfg.auth
    keys = f"{len(auth.api_keys)} API key(s)" if auth.api_keys else "OPEN: no auth.api_keys"
    if auth.admin_token:
        admin = "admin token"
    elif auth.api_keys:
        admin = "the API keys (no admin_token set)"
    else:
        admin = "OPEN"
    if auth.metrics_public:
        metrics = "public (metrics_public)"
    elif auth.metrics_token:
        metrics = "metrics token"
    else:
        metrics = "the API keys" if auth.api_keys else "OPEN"
    ollama = "the API keys" if auth.api_keys and auth.ollama == "keys" else "OPEN"
    return [
        "auth posture:",
        f"  /v1/*        {keys} (Authorization or x-api-key header)",
        f"  /internal/*  {admin}",
        f"  /metrics     {metrics}",
        "  /, /healthz, /capabilities, /api/hello, /api/version: public",
        f"  /api/*       {ollama} (the Ollama API)",
    ]


def auth_warnings(cfg: Config, port: int) -> list[str]:
    """The risky choices, each logged as its own warning so they stand out from the block."""
    auth = cfg.auth
    warnings = []
    if not auth.api_keys:
        warnings.append(
            f"auth.api_keys is empty: anyone who can reach {cfg.server.host}:{port} "
            "can use this Lingma account"
        )
    elif not auth.admin_token:
        warnings.append(
            "auth.admin_token is not set: /internal/* accepts the API keys, "
            "except session export and the request ring, which stay closed"
        )
    if auth.metrics_public:
        warnings.append("auth.metrics_public is on: /metrics is readable without a token")
    if auth.api_keys and auth.ollama == "open":
        warnings.append("auth.ollama is open: the Ollama API (/api/*) uses this Lingma account without a key")
    return warnings


def summary_lines(cfg: Config, port: int, upstream: Upstream, instances: Sequence[Instance]) -> list[str]:
    """The whole block; `port` is the bound one (server.port 0 picks a free port)."""
    lines = [
        "lingma-proxy is up",
        f"  listening:   {listen_url(cfg.server.host, port)}",
        f"  status page: {local_url(cfg.server.host, port)}/",
        f"  upstream:    {upstream_label(upstream)}",
        f"  dialect:     {dialects_of(instances)}",
        f"  accounts:    {', '.join(a.name for a in cfg.accounts) or 'none configured (one anonymous instance)'}",
        "  instances:",
        *(f"    {instance_line(inst)}" for inst in instances),
    ]
    return lines + [f"  {line}" for line in auth_posture_lines(cfg)]
