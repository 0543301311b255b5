"""A runtime "an IDE or the desktop app" runs: the standalone simulator started in a SharedClientCache folder
of a temporary HOME, where it writes .info.json (and cache/machine_token.json), as Lingma and QoderCN do
(docs/protocol.md §11.1-§11.3). The proxy or the probe then finds it by lingma.attach: auto.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import ujson

from harness.proxy import REPO, free_port

LINUX_QODERCN = ".config/QoderCN/SharedClientCache"
LINUX_LINGMA = ".config/Lingma/SharedClientCache"
VSCODE_LINGMA = ".lingma/vscode/sharedClientCache"
MACOS_QODERCN = "Library/Application Support/QoderCN/SharedClientCache"
MACOS_LINGMA = "Library/Application Support/Lingma/SharedClientCache"


def short_home() -> Path:
    """A HOME whose socket paths fit AF_UNIX's ~107-byte limit, which pytest's tmp_path may not."""
    return Path(tempfile.mkdtemp(prefix="lph"))


class IdeRuntime:
    def __init__(
        self,
        home: Path,
        folder: str = VSCODE_LINGMA,
        *,
        family: str = "lingma",
        transport: str = "websocket",
        require_token: bool = False,
        dialect: str = "",
    ) -> None:
        self.home = home
        self.work_dir = home / folder
        self.family, self.transport, self.require_token, self.dialect = family, transport, require_token, dialect
        self.process: subprocess.Popen | None = None
        self.http_port = 0

    @property
    def info(self) -> dict:
        path = self.work_dir / ".info.json"
        return ujson.loads(path.read_text() or "{}") if path.exists() else {}

    @property
    def token_file(self) -> Path:
        return self.work_dir / "cache" / "machine_token.json"

    def start(self) -> IdeRuntime:
        (self.work_dir / ".info.json").unlink(missing_ok=True)
        socket_port, self.http_port = free_port(), free_port()
        argv = [
            sys.executable, "-m", "lingma_proxy.simulator", "start", f"--transportType={self.transport}",
            f"--workDir={self.work_dir}", f"--socketPort={socket_port}", f"--httpPort={self.http_port}",
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("LINGMA_")}
        env.update(LINGMA_SIM_FAMILY=self.family, LINGMA_SIM_REQUIRE_MACHINE_TOKEN="1" if self.require_token else "0")
        if self.dialect:
            env["LINGMA_SIM_DIALECT"] = self.dialect
        self.process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while self.info.get("pid") != self.process.pid:
            assert self.process.poll() is None and time.monotonic() < deadline, "the IDE's runtime did not start"
            time.sleep(0.1)
        return self

    def status(self) -> dict:
        return httpx.get(f"http://127.0.0.1:{self.http_port}/sim/status", timeout=5).json()

    def asks(self) -> int:
        return self.status()["ask_count"]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=10)


def remove_home(home: Path) -> None:
    shutil.rmtree(home, ignore_errors=True)
