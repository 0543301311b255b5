"""Configuration: one dataclass per config.yaml section, built from YAML, validated once at startup.

load_config() reads the file, applies LINGMA_PROXY_<SECTION>_<KEY> environment overrides and raises
ConfigError with one line naming the key and the file (or the variable) for anything wrong. The generic
YAML/env-to-dataclass machinery lives in config_builder.py; this module holds the schema and its rules.
Fields marked SECRET are redacted by effective_config() and handed to the log redactor by secret_values().
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import os
import platform
import re
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config_builder import (
    NON_EMPTY,
    NOT_A_KEY,
    NOT_NEGATIVE,
    POSITIVE,
    SECRET,
    ConfigError,
    Rule,
    SchemaBuilder,
    int_at_least,
    int_between,
    matching,
    one_of,
    read_yaml_file,
)

ENV_PREFIX = "LINGMA_PROXY_"
DEFAULT_CONFIG_FILE = Path(__file__).resolve().parent.parent / "config.yaml"


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8787
    log_level: str = "info"  # debug|info|warning|error
    log_format: str = "text"  # text|json
    shutdown_grace_sec: float = 5.0
    header_timeout_sec: float = 10.0  # a new connection's first request headers must arrive within this
    idle_timeout_sec: float = 90.0  # a kept-alive connection may wait this long for its next request
    body_timeout_sec: float = 60.0  # a request body must arrive within this (streamed answers are not bodies)
    allowed_hosts: list[str] = field(default_factory=list)  # Host names beyond loopback and `host`; "*" = any
    cors_origins: list[str] = field(default_factory=list)  # browser origins that may call the APIs


@dataclass
class AuthConfig:
    # In YAML, an entry is a key or {key: ..., name: ...}; load_config keeps the keys here and the names,
    # which label the key's requests in the usage ledger, in api_key_names (same order, "" = unnamed).
    api_keys: list[str] = field(default_factory=list, metadata=SECRET)
    admin_token: str = field(default="", metadata=SECRET)
    metrics_token: str = field(default="", metadata=SECRET)
    metrics_public: bool = False
    allow_open: bool = False
    allow_without_admin_token: bool = False  # serve beyond loopback with no admin_token (not advised)
    # Ollama clients send no key by default. "keys" asks for api_keys like every API (open when there
    # are none); "open" lets /api/* in without a key even when api_keys are set.
    ollama: str = "keys"
    api_key_names: list[str] = field(default_factory=list, metadata=NOT_A_KEY)


@dataclass
class LimitsConfig:
    max_in_flight: int = 64
    queue_timeout_sec: float = 30.0
    max_body_bytes: int = 16 * 1024 * 1024
    max_concurrent_per_instance: int = 4
    max_connections: int = 512  # open client connections; capped by the open-file limit
    max_queued: int = 0  # requests waiting for a slot; 0 = twice max_in_flight
    response_store_bytes: int = 128 * 1024 * 1024  # what stored Responses (previous_response_id) may hold


@dataclass
class SimulatorConfig:
    scenario: str = ""  # path to a scenario YAML; env LINGMA_SIM_SCENARIO also works
    start_logged_out: bool = False
    password: str = field(default="lingma", metadata=SECRET)
    dialect: str = ""  # classic|acp; empty = the family's own (acp for qodercn, else classic)
    family: str = "lingma"  # lingma|qodercn: serverInfo.name and the model list (docs/protocol.md §11)
    max_concurrent: int = 0  # 0 = unlimited


@dataclass
class LingmaConfig:
    binary: str = "auto"  # auto|simulator|/path/to/Lingma
    attach: str = "off"  # off|auto|qodercn|lingma|ws://127.0.0.1:PORT|unix:///path/to.sock
    work_dir: str = "~/.lingma-proxy/instances"
    startup_timeout: float = 20.0
    rpc_timeout: float = 120.0
    default_model: str = "auto"
    default_ask_mode: str = "chat"  # chat|agent
    dialect: str = "auto"  # auto|classic|acp
    dialect_probe_sec: float = 5.0  # how long auto waits on session/new; §9 allows up to 15
    # Take input tokens from Lingma's own figure (agent context_usage, classic context/usage/sync) [unverified]
    context_usage: bool = True
    queue_wait_sec: float = 60.0  # how long a request Lingma queued (code 10605) may wait, retrying, in all
    dedicated_domain_url: str = ""
    instances_per_account: int = 1
    health_interval_sec: float = 15.0
    model_aliases: dict[str, str] = field(default_factory=dict)
    # Tried in order when the chosen model fails before answering with quota, daily limit, queue timeout or
    # "model unavailable" (docs/features.md §2).
    fallback_models: list[str] = field(default_factory=list)
    classic_images: str = "auto"  # auto: the classic dialect uploads images (image/upload) [unverified]; off: 400
    context_windows: dict[str, int] = field(default_factory=dict)
    simulator: SimulatorConfig = field(default_factory=SimulatorConfig)


@dataclass
class LoginConfig:
    auto_login: bool = False
    headless: bool = True
    timeout: float = 120.0
    max_retry: int = 2
    browser: str = ""  # chromium binary; empty = system chromium
    selectors: dict[str, str] = field(
        default_factory=lambda: {
            "username": "input[name=username]",
            "password": "input[name=password]",
            "submit": "button[type=submit]",
            "error": ".error",
        }
    )


@dataclass
class SessionsConfig:
    # auto: reuse only on a runtime whose two-turn canary kept the history (docs/features.md §3); on; off.
    reuse: str = "auto"
    cache_max_entries: int = 1024
    cache_ttl_sec: float = 3600.0


@dataclass
class ToolsConfig:
    emulation: str = "auto"  # auto|off
    forward_native: bool = False
    allowlist: list[str] = field(default_factory=list)
    native_result: str = "auto"  # auto|reply|invoke_result: how a forwarded call's result goes back (§6)


@dataclass
class AccountConfig:
    name: str
    username: str = ""
    password: str = field(default="", metadata=SECRET)
    password_env: str = ""  # resolved into `password` at load time
    session_bundle_b64: str = field(default="", metadata=SECRET)
    session_bundle_file: str = ""


@dataclass
class DebugConfig:
    request_ring: bool = False  # keep recent request bodies for /internal/debug/requests (admin token only)


@dataclass
class UsageConfig:
    enabled: bool = True  # the request ledger: one row per API request, never a body or a prompt
    db_path: str = ""  # empty = usage.db beside lingma.work_dir (~/.lingma-proxy/usage.db by default)
    retention_days: int = 90


# The variables that say where a Lingma runtime lives on this machine; nothing else is kept of the environment.
_PLACE_VARIABLES = ("LINGMA_BINARY", "APPDATA", "LOCALAPPDATA", "ProgramFiles", "USERPROFILE")


@dataclass(frozen=True)
class HostFacts:
    """This machine as the config loader read it once: where Lingma and QoderCN are looked for."""

    home: Path
    system: str  # Linux, Darwin or Windows, as platform.system() says
    places: Mapping[str, str]  # the _PLACE_VARIABLES that are set

    @staticmethod
    def of_this_machine(environ: Mapping[str, str] | None = None) -> HostFacts:
        environ = os.environ if environ is None else environ
        places = {name: environ[name] for name in _PLACE_VARIABLES if environ.get(name)}
        return HostFacts(Path.home(), platform.system(), places)


@dataclass
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    lingma: LingmaConfig = field(default_factory=LingmaConfig)
    login: LoginConfig = field(default_factory=LoginConfig)
    sessions: SessionsConfig = field(default_factory=SessionsConfig)
    tools: ToolsConfig = field(default_factory=ToolsConfig)
    debug: DebugConfig = field(default_factory=DebugConfig)
    usage: UsageConfig = field(default_factory=UsageConfig)
    accounts: list[AccountConfig] = field(default_factory=list)
    source: str = field(default="<defaults>", metadata=NOT_A_KEY)  # the file it came from
    host: HostFacts = field(default_factory=HostFacts.of_this_machine, metadata=NOT_A_KEY | {"hidden": True})


# Value rules, keyed by dotted key with list items as [] and map entries as *.
_RULES: dict[str, Rule] = {
    "server.host": Rule("a host name or IP address (0.0.0.0 for all interfaces)", bool),
    "server.port": int_between(0, 65535),  # 0 picks a free port
    "server.log_level": one_of("debug", "info", "warning", "error"),
    "server.log_format": one_of("text", "json"),
    "server.shutdown_grace_sec": NOT_NEGATIVE,
    "server.header_timeout_sec": POSITIVE,
    "server.idle_timeout_sec": POSITIVE,
    "server.body_timeout_sec": POSITIVE,
    "server.allowed_hosts[]": matching("a host name, an IP address or *", r"\*|\[?[A-Za-z0-9.:_-]+\]?"),
    "server.cors_origins[]": matching("an origin such as https://app.example.com", r"https?://[^\s/]+"),
    "auth.api_keys[]": NON_EMPTY,
    "auth.ollama": one_of("open", "keys"),
    "limits.max_in_flight": int_at_least(1),
    "limits.queue_timeout_sec": NOT_NEGATIVE,
    "limits.max_body_bytes": int_at_least(1),
    "limits.max_concurrent_per_instance": int_at_least(1),
    "limits.max_connections": int_at_least(8),
    "limits.max_queued": int_at_least(0),
    "limits.response_store_bytes": int_at_least(0),
    "lingma.binary": Rule("auto, simulator or the path of the Lingma binary", bool),
    "lingma.attach": matching(
        "off, auto, qodercn, lingma, a ws:// URL or unix:///path", r"wss?://[^\s/]+(/\S*)?|unix:///\S+", "off", "auto",
        "qodercn", "lingma",
    ),
    "lingma.work_dir": NON_EMPTY,
    "lingma.startup_timeout": POSITIVE,
    "lingma.rpc_timeout": POSITIVE,
    "lingma.default_model": NON_EMPTY,
    "lingma.default_ask_mode": one_of("chat", "agent"),
    "lingma.dialect": one_of("auto", "classic", "acp"),
    "lingma.dialect_probe_sec": POSITIVE,
    "lingma.queue_wait_sec": NOT_NEGATIVE,
    "lingma.dedicated_domain_url": matching("empty or an http(s):// URL", r"https?://\S+", ""),
    "lingma.instances_per_account": int_between(1, 16),
    "lingma.health_interval_sec": POSITIVE,
    "lingma.model_aliases.*": NON_EMPTY,
    "lingma.fallback_models[]": NON_EMPTY,
    "lingma.classic_images": one_of("auto", "off"),
    "lingma.context_windows.*": int_at_least(1),
    "lingma.simulator.dialect": matching("classic, acp, or empty for the family's own", "classic|acp", ""),
    "lingma.simulator.family": one_of("lingma", "qodercn"),
    "lingma.simulator.max_concurrent": int_at_least(0),
    "login.timeout": POSITIVE,
    "login.max_retry": int_at_least(0),
    "login.selectors.*": NON_EMPTY,
    "sessions.reuse": one_of("auto", "on", "off"),
    "sessions.cache_max_entries": int_at_least(1),
    "sessions.cache_ttl_sec": POSITIVE,
    "tools.emulation": one_of("auto", "off"),
    "tools.native_result": one_of("auto", "reply", "invoke_result"),
    "tools.allowlist[]": NON_EMPTY,
    "usage.retention_days": int_at_least(1),
    # The name becomes a directory under work_dir, so it must not be able to climb out of it.
    "accounts[].name": matching("a name of letters, digits, '.', '_' and '-'", r"[A-Za-z0-9][A-Za-z0-9._-]*"),
    "accounts[].password_env": matching("an environment variable name", r"[A-Za-z_][A-Za-z0-9_]*", ""),
}


# --- checks that span keys, and paths ---------------------------------------------------------


def _resolve_file(value: str, base_dir: str) -> str:
    return os.path.normpath(os.path.join(base_dir, os.path.expanduser(value)))


def _existing_file(key: str, value: str, base_dir: str, checker: SchemaBuilder) -> str:
    path = _resolve_file(value, base_dir)
    if not os.path.isfile(path):
        raise checker.error(key, f"no such file: {path!r}")
    return path


def _executable(key: str, value: str, base_dir: str, checker: SchemaBuilder) -> str:
    """A path (relative to the config file) or a command name looked up on PATH."""
    if "/" not in os.path.expanduser(value):
        found = shutil.which(value)
        if found is None:
            raise checker.error(key, f"{value!r} was not found on PATH")
        return found
    path = _existing_file(key, value, base_dir, checker)
    if not os.access(path, os.X_OK):
        raise checker.error(key, f"{path!r} is not executable")
    return path


def _resolve_paths(cfg: Config, base_dir: str, checker: SchemaBuilder) -> None:
    lingma = cfg.lingma
    lingma.work_dir = _resolve_file(lingma.work_dir, base_dir)
    if cfg.usage.db_path:
        cfg.usage.db_path = _resolve_file(cfg.usage.db_path, base_dir)
    if lingma.binary not in ("auto", "simulator"):
        lingma.binary = _executable("lingma.binary", lingma.binary, base_dir, checker)
    if lingma.simulator.scenario:
        lingma.simulator.scenario = _existing_file(
            "lingma.simulator.scenario", lingma.simulator.scenario, base_dir, checker
        )
    if cfg.login.browser:
        cfg.login.browser = _executable("login.browser", cfg.login.browser, base_dir, checker)
    for index, account in enumerate(cfg.accounts):
        if account.session_bundle_file:
            key = f"accounts[{index}].session_bundle_file"
            account.session_bundle_file = _existing_file(key, account.session_bundle_file, base_dir, checker)


_API_KEY_FIELDS = ("key", "name")
_API_KEY_NAME = r"[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}"


def _split_api_keys(data: dict, checker: SchemaBuilder) -> list[str]:
    """Turn each {key, name} entry of auth.api_keys into its key, in place; the names, in order ("" = none).

    Done on the raw data before building, so api_keys stays a plain list of keys for every reader of it
    (key checks, the redactor, effective_config) and a name, which is no secret, never lands among them."""
    auth = data.get("auth")
    keys = auth.get("api_keys") if isinstance(auth, dict) else None
    if not isinstance(keys, list):
        return []  # absent, or not a list: build() reports that
    names = []
    for index, entry in enumerate(keys):
        at = f"auth.api_keys[{index}]"
        if not isinstance(entry, dict):
            names.append("")
            continue
        unknown = [str(name) for name in entry if name not in _API_KEY_FIELDS]
        if unknown:
            raise checker.error(at, f"unknown field {unknown[0]!r} (an entry is a key or {{key: ..., name: ...}})")
        name = entry.get("name", "")
        if not isinstance(name, str) or not re.fullmatch(_API_KEY_NAME, name):
            shown = repr(name) if isinstance(name, str) else "a " + type(name).__name__
            raise checker.error(f"{at}.name", f"must be up to 64 letters, digits, spaces or . _ @ -, got {shown}")
        if "key" not in entry:
            raise checker.error(f"{at}.key", "is required")
        keys[index] = entry["key"]  # build() checks it as any key, without echoing it
        names.append(name)
    return names


_LEGACY_REUSE = {"true": "on", "1": "on", "yes": "on", "false": "off", "0": "off", "no": "off"}


def _legacy_reuse(data: dict) -> None:
    """sessions.reuse was a boolean: its words (in the file or the environment) still mean on and off."""
    sessions = data.get("sessions")
    if isinstance(sessions, dict) and "reuse" in sessions:
        sessions["reuse"] = _LEGACY_REUSE.get(str(sessions["reuse"]).strip().lower(), sessions["reuse"])


def _check_accounts(cfg: Config, environ: Mapping[str, str], checker: SchemaBuilder) -> None:
    seen: set[str] = set()
    for index, account in enumerate(cfg.accounts):
        at = f"accounts[{index}]"
        if account.name in seen:
            raise checker.error(f"{at}.name", f"duplicate account name {account.name!r}")
        seen.add(account.name)
        if account.password and account.password_env:
            raise checker.error(f"{at}.password_env", "set password or password_env, not both")
        if account.session_bundle_b64 and account.session_bundle_file:
            raise checker.error(f"{at}.session_bundle_file", "set session_bundle_b64 or session_bundle_file, not both")
        if account.password_env:
            password = environ.get(account.password_env, "")
            if not password:
                raise checker.error(
                    f"{at}.password_env",
                    f"environment variable {account.password_env} (password of account {account.name!r}) is not set",
                )
            account.password = password


@functools.lru_cache(maxsize=64)  # every request's Host header is checked, and clients send the same few
def is_loopback_host(host: str) -> bool:
    """localhost, or an IP address (bracketed or not) on the loopback network."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_exposure(cfg: Config, checker: SchemaBuilder) -> None:
    if is_loopback_host(cfg.server.host):
        return
    if not cfg.auth.api_keys and not cfg.auth.allow_open:
        raise checker.error(
            "server.host",
            f"{cfg.server.host!r} is not a loopback address and auth.api_keys is empty; "
            "set auth.api_keys, or auth.allow_open: true to serve without authentication",
        )
    if not cfg.auth.admin_token and not cfg.auth.allow_without_admin_token:
        # Beyond loopback, every key holder would otherwise be an admin of the account's login.
        raise checker.error(
            "server.host",
            f"{cfg.server.host!r} is not a loopback address and auth.admin_token is empty; "
            "set auth.admin_token, or auth.allow_without_admin_token: true",
        )


# --- public API -----------------------------------------------------------------------------------


def load_config(path: str | None, environ: Mapping[str, str] | None = None) -> Config:
    """The config from `path` (None: config.yaml next to lingma_proxy.py, if any) plus env overrides."""
    environ = os.environ if environ is None else environ
    if path is None:
        path = str(DEFAULT_CONFIG_FILE) if DEFAULT_CONFIG_FILE.is_file() else None
    elif not os.path.isfile(path):
        raise ConfigError(f"{path}: config file not found")
    checker = SchemaBuilder(path or "<defaults>", _RULES, ENV_PREFIX)
    data = read_yaml_file(path) if path else {}
    checker.apply_env(Config, data, environ)
    key_names = _split_api_keys(data, checker)
    _legacy_reuse(data)
    cfg = checker.build(Config, data)
    cfg.auth.api_key_names = key_names if any(key_names) else []
    cfg.source = checker.source
    cfg.host = HostFacts.of_this_machine(environ)
    if not cfg.lingma.simulator.scenario:
        # The simulator's own variable, so a scenario set for a bare simulator also reaches one the proxy starts.
        cfg.lingma.simulator.scenario = environ.get("LINGMA_SIM_SCENARIO", "")
    # Relative paths in the file mean relative to the file, wherever the proxy is started from.
    _resolve_paths(cfg, os.path.dirname(os.path.abspath(path)) if path else os.getcwd(), checker)
    _check_accounts(cfg, environ, checker)
    _check_exposure(cfg, checker)
    return cfg


def _plain(value: Any, secret: bool = False) -> Any:
    if dataclasses.is_dataclass(value):
        return {
            f.name: _plain(getattr(value, f.name), secret or bool(f.metadata.get("secret")))
            for f in dataclasses.fields(value)
            if not f.metadata.get("hidden")
        }
    if isinstance(value, list):
        return [_plain(item, secret) for item in value]
    if isinstance(value, dict):
        return {name: _plain(item, secret) for name, item in value.items()}
    return "***" if secret and value else value


def effective_config(cfg: Config) -> dict:
    """The config as plain data, every secret replaced by "***" (empty ones stay empty)."""
    return _plain(cfg)


def _secrets_in(value: Any, secret: bool = False) -> Iterator[str]:
    if dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            if not f.metadata.get("hidden"):
                yield from _secrets_in(getattr(value, f.name), secret or bool(f.metadata.get("secret")))
    elif isinstance(value, (list, dict)):
        for item in value.values() if isinstance(value, dict) else value:
            yield from _secrets_in(item, secret)
    elif secret and isinstance(value, str) and value:
        yield value


def secret_values(cfg: Config) -> list[str]:
    """Every non-empty secret, for the log redactor."""
    # The simulator's default password is public (docs/features.md §9); redacting the word "lingma"
    # would garble every log line, so only a changed one counts as a secret.
    values = list(_secrets_in(cfg))
    if cfg.lingma.simulator.password == SimulatorConfig.password:
        values.remove(SimulatorConfig.password)
    return values
