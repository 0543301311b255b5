"""One login flow's attempts: up to 1 + login.max_retry tries in one browser, each bounded by login.timeout,
with a screenshot and a page note kept for each failure; and the status a flow reports.
"""

from __future__ import annotations

import asyncio
import logging

from ..config import Config
from ..redact import Redactor
from ..upstream.pool import Instance
from .browser import LoginBrowser
from .flow import attempt_login, save_failure
from .login_hosts import login_origins
from .status import AttemptFailed, Credentials, LoginStatus, describe_failure

log = logging.getLogger("lingma_proxy.login")

_INTERACTIVE_TIMEOUT_SEC = 600.0  # a person solving a captcha or an SMS code needs longer than a script


class LoginAttempts:
    def __init__(self, cfg: Config, redactor: Redactor) -> None:
        self.cfg = cfg
        self.redactor = redactor

    async def run(
        self, inst: Instance, status: LoginStatus, credentials: Credentials | None, simulator_port: int | None
    ) -> str:
        """The user name once logged in; AttemptFailed after the last failed try. No credentials means a
        person logs in by hand in a visible browser. `simulator_port`: the simulator's login page's port."""
        login = self.cfg.login
        interactive = credentials is None
        tries = 1 if interactive else 1 + login.max_retry
        timeout = max(login.timeout, _INTERACTIVE_TIMEOUT_SEC) if interactive else login.timeout
        browser: LoginBrowser | None = None
        try:
            attempt = 0
            while True:
                attempt += 1
                status.attempts = attempt
                if inst.client is None:
                    raise AttemptFailed(f"instance {inst.name} is not running (state: {inst.state})")
                if browser is None:
                    browser = await open_browser(login.browser, login.headless and not interactive, timeout)
                try:
                    return await attempt_login(
                        browser,
                        inst.client,
                        credentials,
                        login.selectors,
                        timeout,
                        self.cfg.lingma.dedicated_domain_url,
                        login_origins(self.cfg.lingma.dedicated_domain_url, simulator_port),
                    )
                except AttemptFailed as failure:
                    await self._keep_evidence(inst, status, browser, failure, f"attempt {attempt}/{tries}")
                    if attempt == tries:
                        raise
                    if failure.browser_broken:
                        await asyncio.to_thread(browser.close)
                        browser = None
        finally:
            if browser is not None:
                await asyncio.to_thread(browser.close)

    async def _keep_evidence(
        self, inst: Instance, status: LoginStatus, browser: LoginBrowser, failure: AttemptFailed, which: str
    ) -> None:
        summary = f"instance {inst.name}, {which}: {describe_failure(failure)}"
        try:
            png, note = await asyncio.to_thread(
                save_failure, browser, inst.work_dir / "logs", summary, self.cfg.login.selectors, self.redactor.redact
            )
            status.screenshot, status.page_note = str(png or ""), str(note)
        except OSError as exc:  # a full disk must not also cost us the login's own error
            log.warning("could not save the login failure files of instance %s: %s", inst.name, exc)
        why = self.redactor.redact(describe_failure(failure))
        log.warning("login %s for instance %s failed: %s", which, inst.name, why)


async def open_browser(browser_path: str, headless: bool, timeout: float) -> LoginBrowser:
    # A plain executor future, not a task: shutdown's cancel-all-tasks must not orphan it.
    opening = asyncio.get_running_loop().run_in_executor(None, LoginBrowser.open, browser_path, headless, timeout)
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:
        # The thread goes on starting Chromium: close it once it is up, or it outlives the proxy.
        opening.add_done_callback(lambda done: done.exception() is None and done.result().close())
        raise
