"""Which Lingma the probe talks to, and the private instance it starts when it does not attach.

A private instance never runs on a configured work dir (a running proxy may be using it): it runs on
a temp copy of the first instance's work dir when that one holds a login, copied by the session-bundle
rules (without logs/, .info* and sockets), else on a fresh temp dir.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
from pathlib import Path

from lingma_proxy.config import Config
from lingma_proxy.login.bundles import REQUIRED_FILES, BundleError, clone_work_dir
from lingma_proxy.probe.report import home_relative
from lingma_proxy.redact import Redactor
from lingma_proxy.upstream.attach import resolve_attach, spawned_endpoint
from lingma_proxy.upstream.choice import choose_upstream
from lingma_proxy.upstream.pool import Upstream, plan_instances
from lingma_proxy.upstream.process import LingmaProcess, free_port
from lingma_proxy.upstream.transport import Endpoint


def choose_target(cfg: Config, binary: str | None, attach: str | None) -> Upstream:
    """--attach, else --binary (a path or "simulator"), else config.yaml, resolved as the server does.

    Raises ApiError when the named Lingma cannot be found."""
    lingma = cfg.lingma
    if attach:
        lingma = dataclasses.replace(lingma, attach=attach)
    elif binary:
        lingma = dataclasses.replace(lingma, binary=binary, attach="off")
    return choose_upstream(dataclasses.replace(cfg, lingma=lingma))


def describe(upstream: Upstream) -> str:
    if upstream.attach:
        return f"attach {upstream.attach}"
    if upstream.kind == "simulator":
        return "simulator"
    return home_relative(upstream.command[0])


class Target:
    """The Lingma under probe: an attached runtime, or a private child this probe starts and stops."""

    def __init__(self, cfg: Config, upstream: Upstream, redactor: Redactor) -> None:
        self.cfg = cfg
        self.upstream = upstream
        self.redactor = redactor
        self.root = Path(tempfile.mkdtemp(prefix="lingma-probe-"))  # removed by close()
        self.workspace = self.root / "workspace"
        self.work_dir = self.root / "instance"
        self.work_note = "the attached Lingma's own"
        self.process: LingmaProcess | None = None
        self.endpoint = Endpoint("")  # set by start()

    @property
    def attached(self) -> bool:
        return bool(self.upstream.attach)

    def endpoint_of(self, process: LingmaProcess) -> Endpoint:
        endpoint = spawned_endpoint(process.url, process.work_dir, self.cfg.host.home)
        if endpoint.machine_token:
            self.redactor.add(endpoint.machine_token)  # §11.3: never in the report
        return endpoint

    def info_note(self) -> str:
        """Which info-file folder attach used (§11.1), for the report's header."""
        if not self.attached:
            return "none (the probe started its own instance)"
        if self.endpoint.info_dir is None:
            return f"none (lingma.attach names it: {self.endpoint})"
        return f"{home_relative(self.endpoint.info_dir)} ({self.endpoint.family or 'unknown'} folder)"

    def seed_work_dir(self) -> None:
        # The first instance the server would run when it starts its own (not attached), by the pool's own plan.
        spawning = dataclasses.replace(self.cfg, lingma=dataclasses.replace(self.cfg.lingma, attach="off"))
        first = plan_instances(spawning)[0]
        source = first.work_dir
        if all((source / name).is_file() for name in REQUIRED_FILES):
            try:
                files = clone_work_dir(source, self.work_dir, first.name)
                self.work_note = f"a temp copy of {home_relative(source)} ({files} files; it holds a login)"
                return
            except BundleError as err:
                self.work_note = f"a fresh temp dir (copying {home_relative(source)} failed: {err})"
        else:
            self.work_note = f"a fresh temp dir ({home_relative(source)} holds no login)"
        shutil.rmtree(self.work_dir, ignore_errors=True)
        self.work_dir.mkdir(parents=True)

    async def spawn(self, work_dir: Path, name: str) -> LingmaProcess:
        process = LingmaProcess(
            self.upstream.command,
            work_dir,
            free_port(),
            free_port(),
            env=self.upstream.env,
            name=name,
            log=logging.getLogger(f"lingma_proxy.probe.{name}"),
            redact=self.redactor.redact,
        )
        await process.start(timeout=self.cfg.lingma.startup_timeout)
        return process

    async def start(self) -> None:
        """Start the private instance (LingmaStartError when it will not), or find the one to attach to
        (NoAttachTarget when there is none)."""
        self.workspace.mkdir()
        if self.attached:
            host = self.cfg.host
            self.endpoint = resolve_attach(self.upstream.attach, host.home, host.system, host.places)
            if self.endpoint.machine_token:
                self.redactor.add(self.endpoint.machine_token)
        else:
            self.seed_work_dir()
            self.process = await self.spawn(self.work_dir, "probe")
            self.endpoint = self.endpoint_of(self.process)

    async def stop(self) -> None:
        """Stop the private instance; an attached Lingma is never stopped."""
        if self.process is not None:
            await self.process.stop()

    async def close(self) -> None:
        await self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
