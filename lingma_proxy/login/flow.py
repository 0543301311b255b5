"""One login attempt (docs/features.md §7, docs/protocol.md §7): ask Lingma for a login URL, drive the page
in the browser, then poll auth/status until Lingma reports the login.

The browser calls block, so each runs in a worker thread; the Lingma calls stay on the event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection
from pathlib import Path
from urllib.parse import urlparse

from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from ..errors import ApiError
from ..filemodes import write_private
from ..upstream.client import LingmaClient
from .browser import LoginBrowser, first_line
from .login_hosts import login_page_refusal
from .status import AttemptFailed, Credentials

_POLL_SEC = 0.5
_CALLBACK_PATH = "/auth/callback"  # where the cloud page sends the browser back to Lingma (§7)


async def attempt_login(
    browser: LoginBrowser,
    client: LingmaClient,
    credentials: Credentials | None,
    selectors: dict[str, str],
    timeout: float,
    endpoint: str = "",
    login_origins: Collection[str] = (),
) -> str:
    """The logged-in user's name. Without credentials (interactive) a person fills the page.

    Credentials are typed only into a page on a known login host, or on one of `login_origins`
    (login_hosts.py)."""
    deadline = time.monotonic() + timeout
    try:
        if endpoint:  # dedicated-domain (enterprise) accounts log in against their own endpoint (§4)
            await client.update_endpoint(endpoint)
        url = await client.generate_login_url()
    except ApiError as err:
        raise AttemptFailed(f"Lingma: {err.message}") from None
    driver = browser.driver
    try:
        await asyncio.to_thread(_load, driver, url)
        if credentials is not None:
            await asyncio.to_thread(_submit, driver, selectors, credentials, login_origins, _remaining(deadline))
            page_error = await asyncio.to_thread(_wait_for_outcome, driver, selectors, _remaining(deadline))
            if page_error:
                raise AttemptFailed("the login page reported an error", page_error)
    except TimeoutException:
        raise AttemptFailed(
            f"the login page showed neither the login callback nor an error within {timeout:g}s"
        ) from None
    except WebDriverException as exc:
        raise AttemptFailed(f"browser error: {first_line(exc.msg)}", browser_broken=True) from None
    return await _wait_logged_in(client, deadline, timeout)


def _remaining(deadline: float) -> float:
    return max(0.1, deadline - time.monotonic())


def _load(driver: WebDriver, url: str) -> None:
    try:
        driver.get(url)  # bounded by the page-load timeout LoginBrowser.open set
    except TimeoutException:
        raise AttemptFailed("the login page did not finish loading") from None


def _submit(
    driver: WebDriver, selectors: dict[str, str], credentials: Credentials, origins: Collection[str], timeout: float
) -> None:
    try:
        username = WebDriverWait(driver, timeout).until(
            expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, selectors["username"]))
        )
        password = driver.find_element(By.CSS_SELECTOR, selectors["password"])
        submit = driver.find_element(By.CSS_SELECTOR, selectors["submit"])
    except (TimeoutException, NoSuchElementException):
        raise AttemptFailed(
            "the login page has no element matching login.selectors (username, password or submit)"
        ) from None
    for element, text in ((username, credentials.username), (password, credentials.password)):
        _require_login_host(driver, origins)  # the page may have moved on since the last look
        element.clear()
        element.send_keys(text)
    submit.click()


def _require_login_host(driver: WebDriver, origins: Collection[str]) -> None:
    why = login_page_refusal(driver.current_url, origins)
    if why:
        raise AttemptFailed(why)


def _visible_error(driver: WebDriver, selector: str) -> str:
    for element in driver.find_elements(By.CSS_SELECTOR, selector):
        text = element.text.strip()
        if text and element.is_displayed():
            return text
    return ""


def _wait_for_outcome(driver: WebDriver, selectors: dict[str, str], timeout: float) -> str:
    """The page's error text, or "" once the browser reached Lingma's login callback."""

    def outcome(drv: WebDriver) -> tuple[str] | None:
        # The error first: Lingma's own callback page shows one too (e.g. "Invalid login nonce").
        error = _visible_error(drv, selectors["error"])
        if error or urlparse(drv.current_url).path.endswith(_CALLBACK_PATH):
            return (error,)  # a tuple, so that "no error" still ends the wait
        return None

    wait = WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,))
    return wait.until(outcome)[0]


async def _wait_logged_in(client: LingmaClient, deadline: float, timeout: float) -> str:
    while True:
        try:
            status = await client.auth_status()
        except ApiError as err:
            raise AttemptFailed(f"Lingma auth/status failed: {err.message}") from None
        if status.logged_in:
            return status.name
        if time.monotonic() >= deadline:
            raise AttemptFailed(f"Lingma still reports logged out {timeout:g}s after the login started")
        await asyncio.sleep(_POLL_SEC)


def save_failure(
    browser: LoginBrowser | None, folder: Path, summary: str, selectors: dict[str, str], redact: Callable[[str], str]
) -> tuple[Path | None, Path]:
    """A screenshot (password fields emptied first) and a text note of the page; blocking."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    png, note = folder / "login-failure.png", folder / "login-failure.txt"
    png.unlink(missing_ok=True)  # never leave an older attempt's picture next to this note
    lines = [time.strftime("%Y-%m-%d %H:%M:%S"), summary]
    if browser is not None:
        driver = browser.driver
        try:
            driver.execute_script(
                "for (const s of arguments) for (const e of document.querySelectorAll(s)) e.value = '';",
                "input[type=password]",
                selectors["password"],
            )
            lines += [f"page: {driver.current_url}", f"title: {driver.title}"]
            error = _visible_error(driver, selectors["error"])
            lines.append(f"error on the page: {error or '(none)'}")
            write_private(png, driver.get_screenshot_as_png())  # the page may show the user name
        except WebDriverException as exc:
            lines.append(f"no screenshot: {first_line(exc.msg)}")
    write_private(note, (redact("\n".join(lines)) + "\n").encode("utf-8"))
    return (png if png.exists() else None), note
