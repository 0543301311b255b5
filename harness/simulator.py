"""A simulator child started through the real process layer, for integration tests and benches.

    async with running_simulator(tmp_path, rules=[{"match": "hi", "reply": "hello"}]) as sim:
        client = await sim.client()
        ... await sim.status() ...
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import ujson
import yaml
from tornado.httpclient import AsyncHTTPClient

from lingma_proxy.redact import Redactor
from lingma_proxy.upstream.client import LingmaClient, connect_client
from lingma_proxy.upstream.discovery import simulator_command
from lingma_proxy.upstream.process import LingmaProcess, free_port

STARTUP_TIMEOUT_SEC = 20.0


@dataclass
class SimInstance:
    process: LingmaProcess
    clients: list[LingmaClient] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.process.url

    async def client(self, rpc_timeout: float = 10.0, dialect: str = "auto") -> LingmaClient:
        workspace = self.process.work_dir.with_name(f"{self.process.work_dir.name}.workspace")
        workspace.mkdir(exist_ok=True)
        client = await connect_client(self.url, rpc_timeout=rpc_timeout, dialect_setting=dialect, workspace=workspace)
        self.clients.append(client)
        return client

    async def status(self) -> dict:
        """The simulator's counters from its --httpPort (/sim/status)."""
        response = await AsyncHTTPClient().fetch(
            f"http://127.0.0.1:{self.process.http_port}/sim/status", request_timeout=5.0
        )
        return ujson.loads(response.body)


@contextlib.asynccontextmanager
async def running_simulator(
    work_root: Path,
    *,
    rules: list[dict] | None = None,
    dialect: str = "classic",
    env: dict[str, str] | None = None,
    name: str = "sim",
) -> AsyncIterator[SimInstance]:
    """Start a simulator with the given scenario rules and LINGMA_SIM_* env; stop it (and its clients) after."""
    child_env = {"LINGMA_SIM_DIALECT": dialect, **(env or {})}
    if rules is not None:
        scenario = work_root / f"{name}-scenario.yaml"
        scenario.write_text(yaml.safe_dump({"rules": rules}, allow_unicode=True), encoding="utf-8")
        child_env["LINGMA_SIM_SCENARIO"] = str(scenario)
    process = LingmaProcess(
        simulator_command(),
        work_root / name,
        free_port(),
        free_port(),
        env=child_env,
        name=name,
        log=logging.getLogger(f"tests.child.{name}"),
        redact=Redactor().redact,
    )
    await process.start(timeout=STARTUP_TIMEOUT_SEC)
    sim = SimInstance(process)
    try:
        yield sim
    finally:
        for client in sim.clients:
            client.close()
        await process.stop()
