"""The servers under test, each started as its own process on a free loopback port and stopped after.

- the floor server (bench/floor_server.py)
- lingma-proxy itself (`lingma_proxy.py` with a temp config and the bench scenario; started through
  harness/proxy.py, exactly as the integration tests start it)
- the LiteLLM proxy in front of the floor server (bench/litellm_env.py installs it)
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from workloads import write_scenario

from harness.proxy import Proxy, child_pids, deep_merge, free_port, start_proxy

BENCH = Path(__file__).resolve().parent
STREAMS_CAPACITY = 256  # above the 200-stream burst, so the proxy's own limits never queue the bench
API_KEY = "sk-bench-" + secrets.token_hex(16)  # every target checks a key, as it would when deployed

# The proxy as the bench runs it: one instance, limits above the burst, quiet logs.
PROXY_CONFIG = {
    "server": {"log_level": "warning"},
    "auth": {"api_keys": [API_KEY]},
    "limits": {
        "max_in_flight": STREAMS_CAPACITY,
        "max_concurrent_per_instance": STREAMS_CAPACITY,
        "queue_timeout_sec": 60,
    },
    # The 1 MB workload is ~240k tokens: a model whose window holds it, as the 1M-token Qwen ones do.
    "lingma": {"health_interval_sec": 30.0, "rpc_timeout": 60.0, "context_windows": {"auto": 1_000_000}},
    "sessions": {"reuse": False},
}


@dataclass
class Target:
    name: str
    url: str
    model: str  # what requests name as `model`
    pid: int
    stop: Callable[[], None]
    extra: dict = field(default_factory=dict)
    helpers: dict[str, int] = field(default_factory=dict)  # other processes serving it, by name: their CPU counts too

    @property
    def pids(self) -> dict[str, int]:
        return {"server": self.pid, **self.helpers}


def wait_for_http(url: str, process: subprocess.Popen, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode} during start-up")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise TimeoutError(f"{what} did not answer {url} within {timeout:.0f}s")


def terminate(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_floor(tmp: Path) -> Target:
    port = free_port()
    log = open(tmp / "floor.log", "wb")
    process = subprocess.Popen(
        [sys.executable, str(BENCH / "floor_server.py"), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/v1/models", process, 20, "floor server")
    return Target("floor", url, "floor", process.pid, lambda: terminate(process))


def start_lingma_proxy(tmp: Path, overrides: dict | None = None) -> tuple[Target, Proxy]:
    """lingma-proxy with the simulator upstream, the bench scenario, and `overrides` merged into its config."""
    tmp.mkdir(parents=True, exist_ok=True)
    scenario = write_scenario(tmp / "bench-scenario.yaml")
    config = deep_merge(PROXY_CONFIG, {"lingma": {"simulator": {"scenario": str(scenario)}}})
    proxy = start_proxy(tmp, deep_merge(config, overrides or {}))
    simulators = child_pids(proxy.process.pid)  # one instance: its simulator is the proxy's only child
    helpers = {"simulator": simulators[0]} if len(simulators) == 1 else {}
    target = Target("lingma-proxy", proxy.url, "auto", proxy.process.pid, proxy.stop, helpers=helpers)
    return target, proxy
