"""Command line, identical to the real binary's (docs/protocol.md §1):

    python -m lingma_proxy.simulator start --transportType=websocket --workDir=D --socketPort=P --httpPort=H

`--transportType=unix` (simulator-only) listens on a Unix socket in the work dir instead of --socketPort and
names it as `ipcServerPath` in `.info.json` (§11.2).
    python -m lingma_proxy.simulator version
    python -m lingma_proxy.simulator status -o json --workDir D
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

import ujson

from lingma_proxy.simulator.app import Simulator
from lingma_proxy.simulator.settings import DIALECTS, SIM_VERSION, TRANSPORTS, settings_from
from lingma_proxy.simulator.state import WorkDir

log = logging.getLogger("lingma.sim")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lingma-simulator", description="A stand-in for the Lingma binary.")
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="serve JSON-RPC over a WebSocket (or a Unix socket)")
    start.add_argument("--transportType", default="websocket", choices=TRANSPORTS)
    start.add_argument("--workDir", required=True)
    start.add_argument("--socketPort", type=int, default=37010)
    start.add_argument("--httpPort", type=int, default=37510)
    start.add_argument("--dialect", choices=DIALECTS, default=None, help="simulator only; env LINGMA_SIM_DIALECT")
    commands.add_parser("version", help="print the version")
    status = commands.add_parser("status", help="print the login state of a work dir")
    status.add_argument("-o", "--output", default="json", choices=["json", "text"])
    status.add_argument("--workDir", required=True)
    return parser


def _configure_logging(log_path: Path) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    handlers: list[logging.Handler] = [
        logging.StreamHandler(sys.stdout),
        logging.FileHandler(log_path, encoding="utf-8"),
    ]
    for handler in handlers:
        handler.setFormatter(formatter)
    logging.basicConfig(level=logging.INFO, handlers=handlers)


def _status(args: argparse.Namespace) -> int:
    user = WorkDir(Path(args.workDir).expanduser()).read_user()
    report = {
        "logged_in": user is not None,
        "username": user.name if user else "",
        "user_type": user.user_type if user else "",
        "version": SIM_VERSION,
    }
    if args.output == "json":
        print(ujson.dumps(report, ensure_ascii=False))
    else:
        print(f"logged in as {report['username']}" if user else "not logged in")
    return 0


def _start(args: argparse.Namespace, ignored: list[str]) -> int:
    settings = settings_from(args)
    simulator = Simulator(settings)
    simulator.work_dir.root.mkdir(parents=True, exist_ok=True)
    _configure_logging(simulator.work_dir.log_path)
    if ignored:
        log.info("ignoring flags the simulator does not use: %s", " ".join(ignored))
    simulator.prepare_work_dir()
    try:
        asyncio.run(simulator.serve())
    except OSError as exc:
        log.error("cannot listen: %s", exc)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args, ignored = _parser().parse_known_args(argv)
    if args.command == "version":
        print(SIM_VERSION)
        return 0
    if args.command == "status":
        return _status(args)
    return _start(args, ignored)


if __name__ == "__main__":
    sys.exit(main())
