"""Configuration: one dataclass per config.yaml section, built from YAML, validated once at startup.

Loading, env overrides (LINGMA_PROXY_<SECTION>_<KEY>) and one-line validation errors: see load_config().
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8787
    log_level: str = "info"  # debug|info|warning|error
    log_format: str = "text"  # text|json
    shutdown_grace_sec: float = 5.0


@dataclass
class AuthConfig:
    api_keys: list[str] = field(default_factory=list)
    admin_token: str = ""
    metrics_token: str = ""
    metrics_public: bool = False
    allow_open: bool = False


@dataclass
class LimitsConfig:
    max_in_flight: int = 64
    queue_timeout_sec: float = 30.0
    max_body_bytes: int = 16 * 1024 * 1024
    max_concurrent_per_instance: int = 4


@dataclass
class SimulatorConfig:
    scenario: str = ""  # path to a scenario YAML; env LINGMA_SIM_SCENARIO also works
    start_logged_out: bool = False
    password: str = "lingma"
    dialect: str = "classic"  # classic|acp
    max_concurrent: int = 0  # 0 = unlimited


@dataclass
class LingmaConfig:
    binary: str = "auto"  # auto|simulator|/path/to/Lingma
    attach: str = "off"  # off|auto|ws://127.0.0.1:PORT
    work_dir: str = "~/.lingma-proxy/instances"
    startup_timeout: float = 20.0
    rpc_timeout: float = 120.0
    default_model: str = "auto"
    default_ask_mode: str = "chat"  # chat|agent
    dialect: str = "auto"  # auto|classic|acp
    dedicated_domain_url: str = ""
    instances_per_account: int = 1
    health_interval_sec: float = 15.0
    model_aliases: dict[str, str] = field(default_factory=dict)
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
    reuse: bool = True
    cache_max_entries: int = 1024
    cache_ttl_sec: float = 3600.0


@dataclass
class ToolsConfig:
    emulation: str = "auto"  # auto|off
    forward_native: bool = False
    allowlist: list[str] = field(default_factory=list)


@dataclass
class AccountConfig:
    name: str
    username: str = ""
    password: str = ""
    password_env: str = ""
    session_bundle_b64: str = ""
    session_bundle_file: str = ""


@dataclass
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    lingma: LingmaConfig = field(default_factory=LingmaConfig)
    login: LoginConfig = field(default_factory=LoginConfig)
    sessions: SessionsConfig = field(default_factory=SessionsConfig)
    tools: ToolsConfig = field(default_factory=ToolsConfig)
    accounts: list[AccountConfig] = field(default_factory=list)
    source: str = "<defaults>"  # the file it came from, for error messages


class ConfigError(Exception):
    """One line naming the key and the file; the entry point prints it and exits non-zero."""


def load_config(path: str | None, environ: dict[str, str] | None = None) -> Config:
    raise NotImplementedError
