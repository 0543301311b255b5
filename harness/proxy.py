"""Start the real proxy (`python lingma_proxy.py`) on a free port with a temporary config.

The simulator child is started by the proxy itself, through the real pexpect layer, exactly as in
production; tests only choose the config and the scenario.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from lingma_proxy.upstream.listeners import process_tree

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def deep_merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        both_maps = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = deep_merge(merged[key], value) if both_maps else value
    return merged


@dataclass
class Proxy:
    process: subprocess.Popen
    port: int
    tmp: Path
    log_path: Path
    config: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def health(self) -> dict:
        return httpx.get(f"{self.url}/healthz", timeout=5).json()

    def sim_status(self, instance: int = 0) -> dict:
        """The simulator's own counters, read from its status page on its --httpPort."""
        port = self.instance_http_port(instance)
        return httpx.get(f"http://127.0.0.1:{port}/sim/status", timeout=5).json()

    def instance_http_port(self, instance: int = 0) -> int:
        work_dirs = sorted(p.parent for p in (self.tmp / "instances").rglob(".info.json"))
        cmdline_port = _http_port_of_child(self.process.pid, work_dirs[instance])
        return cmdline_port

    def stop(self, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def _http_port_of_child(proxy_pid: int, work_dir: Path) -> int:
    """Find --httpPort of the simulator child that owns `work_dir`, from /proc."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv]
        if f"--workDir={work_dir}" in args:
            for arg in args:
                if arg.startswith("--httpPort="):
                    return int(arg.split("=", 1)[1])
    raise LookupError(f"no simulator child for {work_dir}")


def start_proxy(tmp: Path, config: dict[str, Any] | None = None, env: dict[str, str] | None = None,
                wait_ready: bool = True, timeout: float = 60.0, dialect: str | None = None,
                max_open_files: int | None = None) -> Proxy:
    """`dialect` picks the simulator's chat dialect (classic or acp), or "qodercn": the QoderCN family, which
    speaks acp (docs/protocol.md §11); the proxy still probes the dialect itself.
    `max_open_files` sets the proxy's RLIMIT_NOFILE, soft and hard, as `ulimit -n` would."""
    port = free_port()
    base: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": port, "log_level": "debug"},
        "lingma": {"binary": "simulator", "work_dir": str(tmp / "instances"), "health_interval_sec": 2.0},
        # Not auto: its canary would add two asks to every simulator's record at an unknown moment. Tests of
        # the canary ask for auto themselves.
        "sessions": {"reuse": "on"},
    }
    family = "qodercn" if dialect == "qodercn" else "lingma"
    expected_dialect = "acp" if family == "qodercn" else dialect
    if dialect:
        base["lingma"]["simulator"] = {"dialect": expected_dialect, "family": family}
    cfg = deep_merge(base, config or {})
    cfg_path = tmp / "config.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    log_path = tmp / "proxy.log"
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("LINGMA_PROXY_", "LINGMA_SIM_"))}
    child_env.update(env or {})
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, str(REPO / "lingma_proxy.py"), "--config", str(cfg_path)],
            cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=child_env,
            preexec_fn=None if max_open_files is None else lambda: _limit_open_files(max_open_files),
        )
    proxy = Proxy(process, port, tmp, log_path, cfg)
    if wait_ready:
        health = wait_until_ready(proxy, timeout)
        # The proxy probes the dialect itself (lingma.dialect: auto): it must have found the one asked for.
        assert not dialect or health["upstream"]["dialect"] == expected_dialect, health
        families = {inst["family"] for inst in health["instances"]} - {None}  # some may still be starting
        assert not dialect or families == {family}, health
    return proxy


def _limit_open_files(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))


def wait_until_ready(proxy: Proxy, timeout: float = 60.0, status: int = 200) -> dict:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        if proxy.process.poll() is not None:
            raise RuntimeError(f"proxy exited with {proxy.process.returncode}:\n{proxy.log_text()[-4000:]}")
        try:
            response = httpx.get(f"{proxy.url}/healthz", timeout=2)
            last = response.json()
            if response.status_code == status:
                return last
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"proxy not ready: {last!r}\n{proxy.log_text()[-4000:]}")


def child_pids(pid: int) -> list[int]:
    """All descendants of `pid`, from /proc."""
    return process_tree(pid)[1:]
