"""Keeps the pool's instances logged in (docs/features.md §2, §7).

- At most one login flow per instance; requests and admin calls that arrive meanwhile join it.
- A flow is up to 1 + login.max_retry attempts in one browser, each bounded by login.timeout.
- A failed flow is not restarted automatically for a cool-down period, because repeated wrong
  passwords can lock a real Alibaba Cloud account; an admin start skips the cool-down.
- With login.auto_login, a request that finds no instance logged in waits on `log_in_if_nobody_is`
  (the completion service calls it before taking a slot), and a sweep logs logged-out instances in.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ..config import Config
from ..errors import ApiError
from ..redact import Redactor
from ..upstream.pool import Instance, Pool
from .status import (
    FAILED_LOGIN_COOLDOWN_SEC,
    AttemptFailed,
    BrowserUnavailable,
    Credentials,
    LoginStatus,
    describe_failure,
)

log = logging.getLogger("lingma_proxy.login")

_INTERACTIVE_HINT = "log in with `python lingma_proxy.py login --show-browser`"


class LoginManager:
    def __init__(self, cfg: Config, pool: Pool, redactor: Redactor, bundle_errors: dict[str, str]) -> None:
        self.cfg = cfg
        self.pool = pool
        self.redactor = redactor
        self._bundle_errors = bundle_errors  # BundleImporter.errors: why an instance started without its login
        self.result_listeners: list[Callable[[str], None]] = []  # called with "success" or "failure"
        self._status = {inst.name: LoginStatus() for inst in pool.instances}
        self._flows: dict[str, asyncio.Task] = {}
        self._sweeper: asyncio.Task | None = None

    # ---- wiring ----------------------------------------------------------------------------------

    def start_background(self) -> None:
        """With login.auto_login, log in every logged-out instance that has credentials, not only on demand."""
        if self.cfg.login.auto_login:
            self._sweeper = asyncio.create_task(self._sweep())

    async def stop(self) -> None:
        tasks = [task for task in (self._sweeper, *self._flows.values()) if task is not None and not task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ---- requests that find nobody logged in ---------------------------------------------------------

    async def log_in_if_nobody_is(self) -> None:
        """With login.auto_login, a request that finds every instance logged out starts (or joins) a login."""
        if not self.cfg.login.auto_login or any(inst.usable for inst in self.pool.instances):
            return
        if any(inst.state == "logged_out" for inst in self.pool.instances):
            await self.login_one()

    async def login_one(self) -> None:
        """Start or join the login of one logged-out instance.

        An ApiError (503) when it fails or outlasts login.timeout."""
        candidates = [inst for inst in self.pool.instances if inst.state == "logged_out" and self.credentials(inst)]
        if not candidates:
            return  # nobody can log in unattended: the pool answers with its how-to-log-in 503
        inst = next((i for i in candidates if self._running(i)), None) or next(
            (i for i in candidates if not self._cooling_down(i)), None
        )
        if inst is None:
            raise self._failure_error(candidates[0])
        timeout = self.cfg.login.timeout
        try:
            await asyncio.wait_for(asyncio.shield(self._flow(inst, interactive=False)), timeout)
        except TimeoutError:
            raise ApiError(
                "unavailable",
                f"The login of Lingma instance {inst.name} is still running after {timeout:g}s (login.timeout); "
                "retry shortly.",
                code="login_in_progress",
                retry_after=10,
            ) from None
        if self._status[inst.name].state == "failed":
            raise self._failure_error(inst)

    # ---- explicit starts (admin endpoint, CLI) --------------------------------------------------------

    def start(self, inst: Instance, force: bool = False) -> LoginStatus:
        """Start (or join) an automatic login now; returns at once. Only `force` skips the cool-down."""
        if inst.logged_in:
            raise ApiError("conflict", f"Instance {inst.name} is already logged in as {inst.user_name or 'a user'}.")
        self._require_credentials(inst)
        if not force and not self._running(inst) and self._cooling_down(inst):
            left = FAILED_LOGIN_COOLDOWN_SEC - (time.monotonic() - self._status[inst.name].failed_at_monotonic)
            raise ApiError(
                "rate_limit",
                f"The last login of instance {inst.name} failed; retry in {left:.0f}s, or start it with the "
                "admin token (auth.admin_token) to retry now.",
                code="login_cooling_down",
                retry_after=max(1, int(left)),
            )
        if inst.client is None:
            raise ApiError("unavailable", f"Instance {inst.name} is not running (state: {inst.state}).")
        self._flow(inst, interactive=False)
        return self._status[inst.name]

    async def log_in(self, inst: Instance, interactive: bool = False) -> LoginStatus:
        """Run one flow to its end; interactive opens a visible browser and waits for a person."""
        if not interactive:
            self._require_credentials(inst)
        await asyncio.shield(self._flow(inst, interactive))
        return self._status[inst.name]

    def credentials(self, inst: Instance) -> Credentials | None:
        account = inst.account
        if account is None or not account.username or not account.password:
            return None
        return Credentials(account.username, account.password)

    def status(self) -> dict:
        return {
            "auto_login": self.cfg.login.auto_login,
            "instances": [self._describe_instance(inst) for inst in self.pool.instances],
        }

    # ---- the flow ------------------------------------------------------------------------------------

    def _flow(self, inst: Instance, interactive: bool) -> asyncio.Task:
        running = self._flows.get(inst.name)
        if running is not None and not running.done():
            return running
        task = asyncio.create_task(self._run(inst, interactive), name=f"login-{inst.name}")
        self._flows[inst.name] = task
        return task

    async def _run(self, inst: Instance, interactive: bool) -> None:
        status = self._status[inst.name]
        status.begin(interactive)
        log.info("login flow started for instance %s (%s)", inst.name, "interactive" if interactive else "automatic")
        try:
            await self._record_attempts(inst, status, interactive)
        finally:
            if status.state == "running":  # cancelled at shutdown, or a bug: never report "running" forever
                status.end("the login flow ended unexpectedly; see the proxy log")

    async def _record_attempts(self, inst: Instance, status: LoginStatus, interactive: bool) -> None:
        from .attempts import LoginAttempts  # the browser stack, Selenium with it: loaded by the first flow only

        try:
            simulator_port = inst.http_port if self.pool.upstream.kind == "simulator" else None
            credentials = None if interactive else self.credentials(inst)
            user = await LoginAttempts(self.cfg, self.redactor).run(inst, status, credentials, simulator_port)
        except (AttemptFailed, BrowserUnavailable) as failure:
            status.end(self.redactor.redact(describe_failure(failure)))
            log.error(
                "login failed for instance %s after %d attempt(s): %s; see %s",
                inst.name, status.attempts, status.last_error, status.failure_files(),
            )  # fmt: skip
            self._notify("failure")
            return
        status.end()
        log.info("login succeeded for instance %s as %s", inst.name, user)
        self._notify("success")
        if inst.client is not None:
            try:
                await self.pool.refresh_login(inst)
            except ApiError as err:  # the health loop retries; the login itself is on disk
                log.warning("instance %s: auth/status after the login failed: %s", inst.name, err.message)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.lingma.health_interval_sec)
            for inst in self.pool.instances:
                if inst.state == "logged_out" and self.credentials(inst) and not self._cooling_down(inst):
                    # One at a time: each flow is a Chromium; a shield keeps stop() the only canceller.
                    await asyncio.shield(self._flow(inst, interactive=False))

    # ---- helpers ---------------------------------------------------------------------------------------

    def _running(self, inst: Instance) -> bool:
        task = self._flows.get(inst.name)
        return task is not None and not task.done()

    def _cooling_down(self, inst: Instance) -> bool:
        return self._status[inst.name].cooling_down()

    def _require_credentials(self, inst: Instance) -> None:
        if self.credentials(inst) is None:
            raise ApiError(
                "conflict",
                f"Instance {inst.name} has no account username and password to log in with; {_INTERACTIVE_HINT}.",
            )

    def _failure_error(self, inst: Instance) -> ApiError:
        status = self._status[inst.name]
        return ApiError(
            "unavailable",
            f"Lingma login failed for instance {inst.name}: {status.last_error}; see {status.failure_files()}. "
            f"Check the account's credentials, or {_INTERACTIVE_HINT}.",
            code="login_failed",
        )

    def _notify(self, result: str) -> None:
        for listener in self.result_listeners:
            listener(result)

    def _describe_instance(self, inst: Instance) -> dict:
        status = self._status[inst.name]
        return {
            "instance": inst.name,
            "account": inst.account.name if inst.account else None,
            "instance_state": inst.state,
            "logged_in": inst.logged_in,
            "user": inst.user_name or None,
            "can_auto_login": self.credentials(inst) is not None,
            "login": status.describe(self._bundle_errors.get(inst.name, ""), self._cooling_down(inst)),
        }
