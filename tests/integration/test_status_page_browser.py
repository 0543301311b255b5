"""The status page in a real headless Chromium: it renders the live state, follows requests, and asks for a token.

Screenshots go to $LINGMA_TEST_ARTIFACTS (else pytest's tmp_path). With LINGMA_UPDATE_SCREENSHOT=1 the first
test also refreshes docs/status-page.png, the README's picture.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anthropic
import openai
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from harness.proxy import REPO, Proxy
from lingma_proxy.login.browser import LoginBrowser
from lingma_proxy.usage.ledger import COLUMNS

from .ops_support import module_proxies

pytestmark = pytest.mark.timeout(120)

API_KEY = "status-browser-api-key-3e8d"
ADMIN_TOKEN = "status-browser-admin-token-71fa"
WAIT_SEC = 20


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    if not any(shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")):
        pytest.skip("chromium is not installed (./install.sh installs it)")
    if not shutil.which("chromedriver"):
        pytest.skip("chromedriver is not installed (./install.sh installs it)")
    opened = LoginBrowser.open("", headless=True, page_timeout=30)
    # The viewport itself, not the window around it: 1280x1000 makes a good README picture.
    opened.driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 1000, "deviceScaleFactor": 1, "mobile": False}
    )
    yield opened.driver
    opened.close()


@pytest.fixture(scope="module")
def proxies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Proxy]]:
    yield from module_proxies(
        tmp_path_factory,
        {"open": {}, "locked": {"auth": {"api_keys": [API_KEY], "admin_token": ADMIN_TOKEN}}},
    )


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], object], what: str) -> None:
    # The page re-renders every poll: an element found a moment ago may be gone; look again.
    WebDriverWait(driver, WAIT_SEC, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,)).until(
        condition, message=f"timed out waiting for {what}"
    )


def text_of(driver: WebDriver, selector: str) -> str:
    """textContent (so hidden snippet tabs count too), found and read in one step, as the page re-renders."""
    script = "const found = document.querySelector(arguments[0]); return found ? found.textContent : '';"
    return driver.execute_script(script, selector)


def counter(driver: WebDriver, name: str) -> str:
    return text_of(driver, f"#counter-{name}")


def bars(driver: WebDriver, chart: str) -> list[dict]:
    """The bars a usage chart draws, each with the model and value it stands for."""
    script = "return [...document.querySelectorAll(`#${arguments[0]} rect.bar`)].map((r) => ({...r.dataset}));"
    return [{"model": bar["model"], "value": int(bar["value"])} for bar in driver.execute_script(script, chart)]


def save_screenshot(driver: WebDriver, tmp_path: Path, name: str) -> Path:
    folder = Path(os.environ.get("LINGMA_TEST_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    assert driver.save_screenshot(str(path)), path
    print(f"status page screenshot: {path}")
    return path


def populate(proxy: Proxy) -> None:
    """A few requests on each API, so the README picture shows a page in use."""
    oai = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="unused", max_retries=0, timeout=30)
    ant = anthropic.Anthropic(base_url=proxy.url, api_key="unused", max_retries=0, timeout=30)
    models = [model.id for model in oai.models.list().data]
    coder, other = models[min(2, len(models) - 1)], models[-1]
    oai.responses.create(model=coder, input="Summarise the repository layout.")
    list(oai.chat.completions.create(model=other, messages=[{"role": "user", "content": "Explain this stack trace."}], stream=True))
    ant.messages.create(model=coder, max_tokens=512, messages=[{"role": "user", "content": "Write a unit test."}])
    messages = [{"role": "user", "content": "Refactor the config loader."}]
    first = oai.chat.completions.create(model=coder, messages=messages)
    messages += [{"role": "assistant", "content": first.choices[0].message.content}, {"role": "user", "content": "Now add types."}]
    oai.chat.completions.create(model=coder, messages=messages)


def seed_history(db: Path) -> int:
    """For the README picture only: a day and a half of earlier traffic in the ledger, as a proxy in use
    would have, so the usage charts show their shape. Returns how many requests in the last 48 hours."""
    now = time.time()
    ledger = sqlite3.connect(db)
    rows = []
    for hours_ago in range(2, 38):
        busy = 2 + (hours_ago * 7) % 5 if 8 <= (hours_ago + 10) % 24 <= 20 else hours_ago % 2  # day and night
        for n in range(busy):
            model = ("dashscope_qwen3_coder", "dashscope_qwen3_coder", "q35model", "auto")[(hours_ago + n) % 4]
            tokens_in = 900 + 400 * ((hours_ago * 3 + n) % 7)
            first_ms = 600 + 90 * ((hours_ago + 2 * n) % 9)
            rows.append((now - hours_ago * 3600 - n * 97, "openai_chat", "/v1/chat/completions", "laptop", "claude-cli",
                         model, model, "default", "default-0", 200, "", tokens_in, tokens_in // 6, tokens_in // 3, 1,
                         first_ms, first_ms * 4, 1))
    with ledger:
        ledger.executemany(f"INSERT INTO requests ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", rows)
    ledger.close()
    return len(rows)


def test_the_page_shows_the_proxy_and_follows_a_request(browser, proxies, tmp_path):
    proxy = proxies["open"]
    browser.get(f"{proxy.url}/")
    wait_for(browser, lambda d: "default-0" in text_of(d, "#instances tbody") and "ready" in text_of(d, "#instances tbody"),
             "the instance row")
    wait_for(browser, lambda d: counter(d, "requests") != "", "the counters")
    assert browser.find_element(By.ID, "auth-banner").is_displayed()
    assert "anyone who can reach this port" in browser.find_element(By.ID, "auth-banner").text
    assert "simulator" in browser.find_element(By.ID, "upstream-kind").text
    model = text_of(browser, "#models li .mono")
    assert model
    snippets = text_of(browser, "#snippets")
    for expected in (f"ANTHROPIC_BASE_URL={proxy.url}", f'base_url = "{proxy.url}/v1"', 'wire_api = "responses"',
                     f"OPENAI_BASE_URL={proxy.url}/v1", f"--model openai/{model}", f'OpenAI(base_url="{proxy.url}/v1"'):
        assert expected in snippets, expected

    before = int(counter(browser, "requests").replace(",", ""))
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="unused", max_retries=0, timeout=30)
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hello from the browser test"}])
    wait_for(browser, lambda d: counter(d, "requests") == str(before + 1), "the request counter")
    wait_for(browser, lambda d: "/v1/chat/completions" in text_of(d, "#recent tbody tr"), "the recent-requests row")
    first_row = text_of(browser, "#recent tbody tr")
    assert model in first_row and "200" in first_row
    # The usage panel draws the ledger: a bar for this hour in both bar charts, a first-token point.
    wait_for(browser, lambda d: bars(d, "chart-requests"), "the requests chart's bars")
    assert sum(bar["value"] for bar in bars(browser, "chart-requests")) == before + 1
    assert {bar["model"] for bar in bars(browser, "chart-requests")} == {model}
    assert bars(browser, "chart-tokens") and browser.find_elements(By.CSS_SELECTOR, "#chart-latency circle.p50")
    assert model in text_of(browser, "#usage-legend") and "anonymous" in text_of(browser, "#usage-table tbody")
    browser.find_element(By.CSS_SELECTOR, "#usage-range [data-range=day]").click()
    wait_for(browser, lambda d: "per day" in text_of(d, "#chart-requests-title") and bars(d, "chart-requests"), "the 30-day chart")
    browser.find_element(By.CSS_SELECTOR, "#usage-range [data-range=hour]").click()
    save_screenshot(browser, tmp_path, "status-page.png")

    if os.environ.get("LINGMA_UPDATE_SCREENSHOT") == "1":
        earlier = seed_history(proxy.tmp / "usage.db")
        populate(proxy)
        wait_for(browser, lambda d: counter(d, "requests") == str(before + 7), "the populated counters")
        wait_for(browser, lambda d: counter(d, "cache") not in ("", "–"), "the session-cache rate")
        wait_for(browser, lambda d: sum(bar["value"] for bar in bars(d, "chart-requests")) == earlier + before + 7, "the usage charts")
        browser.execute_script("window.scrollTo(0, 0)")
        docs = REPO / "docs"
        docs.mkdir(exist_ok=True)
        assert browser.save_screenshot(str(docs / "status-page.png"))
        print(f"README screenshot: {docs / 'status-page.png'}")


def test_with_auth_on_the_page_asks_for_the_admin_token(browser, proxies, tmp_path):
    proxy = proxies["locked"]
    browser.get(f"{proxy.url}/")
    wait_for(browser, lambda d: d.find_element(By.ID, "token-form").is_displayed(), "the token form")
    assert not browser.find_element(By.ID, "main").is_displayed()

    token_input = browser.find_element(By.ID, "token-input")
    token_input.send_keys("not-the-token")
    browser.find_element(By.CSS_SELECTOR, "#token-form button[type=submit]").click()
    wait_for(browser, lambda d: "rejected" in d.find_element(By.ID, "token-error").text, "the rejection")

    token_input.send_keys(ADMIN_TOKEN)
    browser.find_element(By.CSS_SELECTOR, "#token-form button[type=submit]").click()
    wait_for(browser, lambda d: "default-0" in text_of(d, "#instances tbody"), "the instance table")
    assert not browser.find_element(By.ID, "token-form").is_displayed()
    assert not browser.find_element(By.ID, "auth-banner").is_displayed()
    assert "YOUR_API_KEY" in text_of(browser, "#snippets")
    assert ADMIN_TOKEN not in browser.page_source and API_KEY not in browser.page_source

    browser.refresh()  # the token is kept for the tab
    wait_for(browser, lambda d: "default-0" in text_of(d, "#instances tbody"), "the table after a reload")
    assert not browser.find_element(By.ID, "token-form").is_displayed()
    save_screenshot(browser, tmp_path, "status-page-locked.png")
