"""The simulator's settings: the real binary's flags, plus test-only knobs read from the environment.

The knobs live in environment variables so that the command line stays identical to the real
binary's (docs/protocol.md §1), and the pool can start either executable the same way.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

SIM_VERSION = "2.11.1-sim"  # the plugin binary's line (classic dialect)
SIM_DESKTOP_VERSION = "0.7.0-sim"  # the desktop app's runtime reports 0.7.x (agent dialect, §3)
SIM_QODERCN_VERSION = "0.4.3-sim"  # Qoder CN desktop 0.4.3 is the newest release public sources name (§11)
DIALECTS = ("classic", "acp")
FAMILIES = ("lingma", "qodercn")  # serverInfo.name (§3, §11)
TRANSPORTS = ("websocket", "unix")  # unix is simulator-only on the command line (§11.2)
RPC_TIMEOUT_SEC = 120.0  # how long a native tool call waits for its result, as the real binary's RPC timeout


@dataclass(frozen=True)
class SimSettings:
    work_dir: Path
    socket_port: int
    http_port: int
    dialect: str = "classic"
    family: str = "lingma"
    transport: str = "websocket"
    require_machine_token: bool = False  # refuse WebSocket upgrades without the right Cosy-MachineToken (§11.3)
    scenario_path: str = ""
    start_logged_out: bool = False
    password: str = "lingma"
    max_concurrent: int = 0  # 0 = unlimited
    ack_timeout_sec: float = 5.0
    forget_history: bool = False  # test-only fault: every turn starts a new history, as if isReply were ignored
    # Classic context/usage/sync before chat/finish (§11.5, reported, not seen from the plugin binary): off by
    # default, so classic usage stays our own count unless a test asks for the runtime's figure.
    usage_sync: bool = False


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def settings_from(args: argparse.Namespace) -> SimSettings:
    """Combine the parsed `start` flags with the LINGMA_SIM_* environment; the flag wins for the dialect.

    QoderCN is a desktop runtime, so that family speaks the agent dialect unless told otherwise (§9, §11)."""
    family = (os.environ.get("LINGMA_SIM_FAMILY", "") or "lingma").strip().lower()
    if family not in FAMILIES:
        raise SystemExit(f"unknown family {family!r}: expected lingma or qodercn")
    family_dialect = "acp" if family == "qodercn" else "classic"
    dialect = (args.dialect or os.environ.get("LINGMA_SIM_DIALECT", "") or family_dialect).strip().lower()
    if dialect not in DIALECTS:
        raise SystemExit(f"unknown dialect {dialect!r}: expected classic or acp")
    return SimSettings(
        work_dir=Path(args.workDir).expanduser().resolve(),
        socket_port=args.socketPort,
        http_port=args.httpPort,
        dialect=dialect,
        family=family,
        transport=args.transportType,
        require_machine_token=_env_flag("LINGMA_SIM_REQUIRE_MACHINE_TOKEN"),
        scenario_path=os.environ.get("LINGMA_SIM_SCENARIO", ""),
        start_logged_out=_env_flag("LINGMA_SIM_START_LOGGED_OUT"),
        password=os.environ.get("LINGMA_SIM_PASSWORD", "lingma"),
        max_concurrent=int(os.environ.get("LINGMA_SIM_MAX_CONCURRENT", "0") or 0),
        ack_timeout_sec=float(os.environ.get("LINGMA_SIM_ACK_TIMEOUT_SEC", "5") or 5),
        forget_history=_env_flag("LINGMA_SIM_FORGET_HISTORY"),
        usage_sync=_env_flag("LINGMA_SIM_USAGE_SYNC"),
    )
