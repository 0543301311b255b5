"""What the server keeps and reports about logins, with no browser behind it: each instance's LoginStatus,
the cool-down after a failure, the Credentials a flow types, and the two ways a flow fails.

The server imports only this; the browser stack (attempts.py, flow.py, browser.py, and Selenium with them)
is loaded when a flow first runs, so a proxy that never logs in never loads it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

FAILED_LOGIN_COOLDOWN_SEC = 300.0


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


class AttemptFailed(Exception):
    """A failed attempt; the reason and page text are safe to log (they never hold the password)."""

    def __init__(self, reason: str, page_error: str = "", browser_broken: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.page_error = page_error
        self.browser_broken = browser_broken


class BrowserUnavailable(Exception):
    """No browser could be started; retrying will not help."""


def describe_failure(failure: AttemptFailed | BrowserUnavailable) -> str:
    if isinstance(failure, AttemptFailed) and failure.page_error:
        return f"{failure.reason}: {failure.page_error!r}"
    return str(failure)


@dataclass
class LoginStatus:
    state: str = "idle"  # idle | running | succeeded | failed
    interactive: bool = False
    attempts: int = 0
    last_error: str = ""
    screenshot: str = ""
    page_note: str = ""
    started_at: float = 0.0  # wall clock, for people
    finished_at: float = 0.0
    failed_at_monotonic: float = 0.0  # for the cool-down

    def begin(self, interactive: bool) -> None:
        self.state, self.interactive, self.attempts = "running", interactive, 0
        self.started_at, self.finished_at = time.time(), 0.0
        self.screenshot = self.page_note = ""

    def end(self, error: str = "") -> None:
        self.state = "failed" if error else "succeeded"
        self.last_error = error
        self.finished_at = time.time()
        if error:
            self.failed_at_monotonic = time.monotonic()
        else:
            self.screenshot = self.page_note = ""

    def cooling_down(self) -> bool:
        """A failed flow is not restarted on its own for a while: wrong passwords can lock the account."""
        return self.state == "failed" and time.monotonic() - self.failed_at_monotonic < FAILED_LOGIN_COOLDOWN_SEC

    def describe(self, bundle_error: str, cooling_down: bool) -> dict:
        blocked_until = time.time() + FAILED_LOGIN_COOLDOWN_SEC - (time.monotonic() - self.failed_at_monotonic)
        return {
            "state": self.state,
            "interactive": self.interactive,
            "attempts": self.attempts,
            "last_error": self.last_error or bundle_error or None,
            "screenshot": self.screenshot or None,
            "page_note": self.page_note or None,
            "started_at": self.started_at or None,
            "finished_at": self.finished_at or None,
            "retry_blocked_until": blocked_until if cooling_down else None,
        }

    def failure_files(self) -> str:
        return " and ".join(path for path in (self.screenshot, self.page_note) if path) or "the proxy log"
