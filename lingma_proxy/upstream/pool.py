"""The pool of Lingma instances: start, health, restart with backoff, selection and slots (docs/features.md §2)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..config import AccountConfig, Config
from ..errors import ApiError
from ..redact import Redactor
from .attach import resolve_attach, spawned_endpoint
from .children import new_child, stop_child
from .client import LingmaClient, connect_client
from .health import watch_health
from .ide_login import LoginHint
from .process import LingmaProcess, LingmaStartError, PortTakenError, free_port
from .slots import Lease, Slots
from .transport import Endpoint

log = logging.getLogger("lingma_proxy.pool")

_MAX_BACKOFF_SEC = 30.0
_STABLE_SEC = 60.0  # an instance up this long has recovered: its restart backoff starts over


@dataclass
class Upstream:
    """What the pool launches: the real binary, the simulator, or an already-running Lingma (attach)."""

    kind: str  # "lingma" | "simulator"
    command: list[str]  # executable argv prefix; empty in attach mode
    env: dict[str, str] = field(default_factory=dict)  # extra env for the child (simulator settings only)
    # "" spawns children; auto, qodercn, lingma, ws://… or unix://… attaches to a runtime someone else runs
    attach: str = ""


class Instance:
    """One Lingma child (or an attached Lingma) with its own work dir and login."""

    def __init__(self, name: str, work_dir: Path, account: AccountConfig | None) -> None:
        self.name = name
        self.work_dir = work_dir
        self.account = account
        self.state = "stopped"  # starting | ready | logged_out | failed | stopped
        self.in_flight = 0
        self.logged_in = False
        self.user_name = ""
        self.dialect = ""  # settled by the first connection's probe, then reused on every restart (§9)
        self.family = ""  # lingma | qodercn, from serverInfo (§11); kept across restarts, for display
        self.runtime_version = ""  # serverInfo.version
        self.transport = ""  # websocket | unix
        self.restarts = 0
        self.last_error = ""  # redacted, for admins (/internal/status)
        self.error_code = ""  # one fixed word, for the public /healthz
        self.process: LingmaProcess | None = None
        self.client: LingmaClient | None = None
        self.socket_port = 0
        self.http_port = 0
        self.generation = 0  # bumped on every (re)start; session-cache entries remember it
        self.ready_since = 0.0
        self.failures_in_a_row = 0
        self._past_rpc_errors: Counter[str] = Counter()  # from connections of earlier generations

    @property
    def workspace(self) -> Path:
        """An empty folder sent as the workspace: a real Lingma indexes its workspace, and must find
        nothing of the user's there. It sits beside the work dir, so a session bundle never carries it."""
        return self.work_dir.parent / f"{self.work_dir.name}.workspace"

    @property
    def rpc_errors(self) -> Counter[str]:
        """Upstream RPC errors by method, over every (re)start of this instance."""
        current = self.client.rpc.error_counts if self.client is not None else Counter()
        return self._past_rpc_errors + current

    def keep_rpc_errors(self, counts: Counter[str]) -> None:
        """A connection's error counts, kept past its close so /metrics never goes backwards."""
        self._past_rpc_errors.update(counts)

    @property
    def usable(self) -> bool:
        return self.state == "ready" and self.client is not None

    def describe(self) -> dict:
        return {
            "name": self.name,
            "state": self.state,
            "in_flight": self.in_flight,
            "logged_in": self.logged_in,
            "dialect": self.dialect or None,
            "family": self.family or None,
            "runtime_version": self.runtime_version or None,
            "transport": self.transport or None,
            "restarts": self.restarts,
            "error": self.error_code or None,
        }

    def failed(self, code: str, message: str) -> None:
        self.state = "failed"
        self.error_code = code
        self.last_error = message


class Pool:
    def __init__(
        self,
        cfg: Config,
        upstream: Upstream,
        redactor: Redactor,
        prepare_work_dir: Callable[[Instance], None] | None = None,
    ) -> None:
        """`prepare_work_dir` runs before each spawned instance starts (session bundles are unpacked there)."""
        self.cfg = cfg
        self.upstream = upstream
        self.redactor = redactor
        self.prepare_work_dir = prepare_work_dir
        self.instances = plan_instances(cfg)
        self.slots = Slots(cfg.limits, self.instances)
        self.restart_listeners: list[Callable[[Instance], None]] = []
        self.ready_listeners: list[Callable[[Instance], None]] = []  # an instance became ready (logged in)
        self.login_hint = LoginHint(cfg.host, attached=bool(upstream.attach))
        self._restart_tasks: dict[str, asyncio.Task] = {}
        self._health_task: asyncio.Task | None = None
        self._closing = False

    @property
    def dialects(self) -> set[str]:
        """The chat dialects the instances have settled on so far (§9)."""
        return {inst.dialect for inst in self.instances if inst.dialect}

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.gather(*(self._start_instance(inst) for inst in self.instances))
        self._health_task = asyncio.create_task(watch_health(self, self.cfg.lingma.health_interval_sec))

    async def stop(self) -> None:
        self._closing = True
        if self._health_task:
            self._health_task.cancel()
        for task in self._restart_tasks.values():
            task.cancel()
        await asyncio.gather(*(stop_child(inst) for inst in self.instances), return_exceptions=True)

    async def _start_instance(self, inst: Instance) -> None:
        inst.state = "starting"
        inst.generation += 1
        began = time.monotonic()
        # A real binary can take many seconds to start: say what is happening while it does.
        log.info("instance %s: %s", inst.name, "connecting" if self.upstream.attach else "starting Lingma")
        try:
            endpoint = await self._launch(inst)
            if endpoint.machine_token:
                self.redactor.add(endpoint.machine_token)  # §11.3: never logged
            log.info("instance %s: %s is up, handshake and dialect next", inst.name, endpoint)
            inst.workspace.mkdir(parents=True, exist_ok=True)
            inst.client = await connect_client(
                endpoint,
                workspace=inst.workspace,
                rpc_timeout=self.cfg.lingma.rpc_timeout,
                dialect_setting=inst.dialect or self.cfg.lingma.dialect,
                probe_timeout=self.cfg.lingma.dialect_probe_sec,
                native_result=self.cfg.tools.native_result,
            )
            inst.dialect = inst.client.dialect_name
            inst.family, inst.runtime_version = inst.client.family, inst.client.runtime_version
            inst.transport = inst.client.transport
            inst.client.on_secret = self.redactor.add
            inst.client.on_close(
                lambda inst=inst, gen=inst.generation: self._lost(inst, gen, "connection_closed", "connection closed")
            )
            await self.refresh_login(inst)
            if inst.process is not None and not inst.process.alive:
                # Checked after the last await: an exit during start-up was not yet anyone's to handle.
                raise LingmaStartError(f"{inst.name}: the Lingma child exited during start-up")
            inst.last_error = inst.error_code = ""
            who = f"logged in as {inst.user_name}" if inst.logged_in else "NOT logged in"
            took = time.monotonic() - began
            runtime = f"{inst.family} {inst.runtime_version}".strip()
            log.info(
                "instance %s: ready in %.1fs, %s over %s, %s dialect, %s",
                inst.name, took, runtime, inst.transport, inst.dialect, who,
            )
        except Exception as exc:  # any start failure leaves a failed instance that is retried with backoff
            code = "port_taken" if isinstance(exc, PortTakenError) else "start_failed"
            inst.failed(code, self.redactor.redact(f"start failed: {exc}"))
            log.error("instance %s failed to start: %s", inst.name, inst.last_error)
            await stop_child(inst)
            self._schedule_restart(inst)

    async def _launch(self, inst: Instance) -> Endpoint:
        if self.upstream.attach:
            # Looked up on every (re)connect: an IDE that restarts its Lingma moves it to a new port.
            host = self.cfg.host
            return resolve_attach(self.upstream.attach, host.home, host.system, host.places)
        inst.work_dir.mkdir(parents=True, exist_ok=True)
        if self.prepare_work_dir is not None:
            self.prepare_work_dir(inst)
        inst.socket_port, inst.http_port = free_port(), free_port()
        inst.process = new_child(inst, self.upstream, self.redactor)
        generation = inst.generation
        inst.process.on_exit = lambda status: self._lost(
            inst, generation, "process_exited", f"process exited ({status})"
        )
        await inst.process.start(timeout=self.cfg.lingma.startup_timeout)
        return spawned_endpoint(inst.process.url, inst.work_dir, self.cfg.host.home)

    async def refresh_login(self, inst: Instance) -> None:
        assert inst.client is not None
        status = await inst.client.auth_status()
        was = inst.state
        inst.logged_in = status.logged_in
        inst.user_name = status.name if status.logged_in else ""
        inst.state = "ready" if status.logged_in else "logged_out"
        if was not in ("ready", "logged_out"):
            inst.ready_since = time.monotonic()
        if inst.state == "logged_out" and was != "logged_out":
            await self.login_hint.look(inst.workspace)
            log.warning("instance %s is not logged in to Lingma: %s", inst.name, self.login_hint.text())
        if inst.state == "ready" and was != "ready":
            for listener in self.ready_listeners:
                listener(inst)

    def _lost(self, inst: Instance, generation: int, code: str, why: str) -> None:
        """The child died or its socket closed: restart unless this is an old generation or shutdown.

        During start-up the start itself notices (the child is checked after the handshake) and fails."""
        if self._closing or generation != inst.generation or inst.state in ("stopped", "starting", "failed"):
            return
        log.error("instance %s lost: %s", inst.name, why)
        inst.failed(code, why)
        self._schedule_restart(inst)

    def recycle(self, inst: Instance, why: str, code: str = "unhealthy") -> None:
        """A hung or misbehaving instance: restart it now (its other streams fail cleanly)."""
        if inst.state in ("ready", "logged_out"):
            self._lost(inst, inst.generation, code, why)

    def _schedule_restart(self, inst: Instance) -> None:
        if self._closing:
            return
        running = self._restart_tasks.get(inst.name)
        if running and not running.done():
            return
        # A fresh context: the restart must not carry the request id of whatever request noticed the failure.
        self._restart_tasks[inst.name] = asyncio.create_task(self._restart(inst), context=contextvars.Context())

    async def _restart(self, inst: Instance) -> None:
        stable = inst.ready_since and time.monotonic() - inst.ready_since > _STABLE_SEC
        inst.failures_in_a_row = 1 if stable else inst.failures_in_a_row + 1
        delay = min(_MAX_BACKOFF_SEC, 0.5 * 2 ** min(inst.failures_in_a_row - 1, 6))
        await stop_child(inst)
        inst.state = "failed"
        await asyncio.sleep(delay)
        if self._closing:
            return
        inst.restarts += 1
        for listener in self.restart_listeners:
            listener(inst)
        log.info("restarting instance %s (restart #%d)", inst.name, inst.restarts)
        await self._start_instance(inst)
        await self.slots.notify_all()

    # ---- slots ---------------------------------------------------------------------------------

    async def acquire(self, affinity_key: str | None = None, prefer: str | None = None) -> Lease:
        """A slot on the best instance, waiting up to limits.queue_timeout_sec; 503 or 429 otherwise."""
        return await self.slots.acquire(affinity_key, prefer, self._worth_waiting, self._unavailable)

    def _worth_waiting(self) -> bool:
        """A busy, starting or restarting instance may free up; logged-out or stopped ones will not."""
        return any(inst.usable or inst.state == "starting" for inst in self.instances) or any(
            not task.done() for task in self._restart_tasks.values()
        )

    def _unavailable(self) -> ApiError:
        if any(inst.state == "logged_out" for inst in self.instances):
            hint = self.login_hint.text()
            return ApiError("unavailable", f"No Lingma instance is logged in: {hint}.", code="not_logged_in")
        return ApiError("unavailable", "No Lingma instance is ready; retry shortly.", code="upstream_not_ready")

    # ---- views ---------------------------------------------------------------------------------

    def find(self, name: str) -> Instance:
        for inst in self.instances:
            if inst.name == name:
                return inst
        raise ApiError("not_found", f"Unknown instance {name!r}.")

    def ready_client(self) -> LingmaClient | None:
        for inst in self.instances:
            if inst.usable:
                return inst.client
        return None


def plan_instances(cfg: Config) -> list[Instance]:
        """The instances this config runs, in order; the first is the one single-instance tools look at."""
        base = Path(cfg.lingma.work_dir)
        if cfg.lingma.attach != "off":
            return [Instance("attached", base / "attached", None)]
        if not cfg.accounts:
            return [Instance("default-0", base / "default" / "0", None)]
        per_account = cfg.lingma.instances_per_account
        return [
            Instance(f"{account.name}-{n}", base / account.name / str(n), account)
            for account in cfg.accounts
            for n in range(per_account)
        ]
