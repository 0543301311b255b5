"""Chromium for the login flow, driven by Selenium through an explicit chromedriver.

Selenium 4 runs Selenium Manager (which may download a browser and a driver) only when the Service
has no driver path (selenium/webdriver/common/driver_finder.py); we always pass one, and refuse to
start without one, so nothing is ever downloaded. Every call here blocks: run it in a worker thread.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver

from .status import BrowserUnavailable

# Selenium logs every command body at DEBUG, and one of them carries the typed password.
logging.getLogger("selenium").setLevel(logging.WARNING)

CHROMIUM_FLAGS = (
    "--disable-gpu",
    "--disable-dev-shm-usage",  # a small /dev/shm in containers crashes tabs
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)
_BROWSERS = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
_DRIVERS = ("/usr/bin/chromedriver", "chromedriver")


def _first_found(candidates: tuple[str, ...]) -> str | None:
    for candidate in candidates:
        found = candidate if os.path.isabs(candidate) and os.access(candidate, os.X_OK) else shutil.which(candidate)
        if found:
            return found
    return None


def sandbox_unavailable() -> bool:
    """Chromium refuses to run sandboxed as root, and containers usually lack the user namespaces it needs;
    everywhere else the sandbox stays on, since the login page is a web page from the internet."""
    in_container = Path("/.dockerenv").exists() or Path("/run/.containerenv").exists() or "container" in os.environ
    return os.geteuid() == 0 or in_container


def chromium_flags() -> list[str]:
    return [*CHROMIUM_FLAGS, *(["--no-sandbox"] if sandbox_unavailable() else [])]


def _display_missing() -> bool:
    return sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class LoginBrowser:
    """One Chromium with a throwaway profile, so no cookie or login leaks between flows."""

    def __init__(self, driver: WebDriver, profile: tempfile.TemporaryDirectory) -> None:
        self.driver = driver
        self._profile = profile

    @classmethod
    def open(cls, browser_path: str, headless: bool, page_timeout: float) -> LoginBrowser:
        """Start Chromium (login.browser, else the system one) through the system chromedriver."""
        binary = browser_path or _first_found(_BROWSERS)
        driver_path = _first_found(_DRIVERS)
        if not binary or not driver_path:
            missing = "chromium" if not binary else "chromedriver"
            raise BrowserUnavailable(f"no {missing} found for the login (run ./install.sh, or set login.browser)")
        if not headless and _display_missing():
            raise BrowserUnavailable(
                "a visible browser needs a display, and neither DISPLAY nor WAYLAND_DISPLAY is set"
            )
        profile = tempfile.TemporaryDirectory(prefix="lingma-login-")
        options = webdriver.ChromeOptions()
        options.binary_location = binary
        for flag in chromium_flags():
            options.add_argument(flag)
        if headless:
            options.add_argument("--headless=new")
        options.add_argument(f"--user-data-dir={profile.name}")
        service = Service(driver_path, log_output=subprocess.DEVNULL)
        try:
            driver = webdriver.Chrome(service=service, options=options)
        except WebDriverException as exc:
            profile.cleanup()
            raise BrowserUnavailable(f"{Path(binary).name} did not start: {first_line(exc.msg)}") from None
        driver.set_page_load_timeout(page_timeout)
        return cls(driver, profile)

    def close(self) -> None:
        try:
            self.driver.quit()
        except WebDriverException:
            pass  # the browser is already gone; the profile is removed below either way
        self._profile.cleanup()


def first_line(message: str | None) -> str:
    """Selenium messages carry a driver stack trace after the first line."""
    return (message or "").strip().splitlines()[0] if (message or "").strip() else "unknown error"
