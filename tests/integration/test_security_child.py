"""What the Lingma child sees, and where the login types, on real processes: the simulator child's
/proc/<pid>/environ, and a real headless Chromium facing a login page off the allow-list."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.proxy import REPO, Proxy

from .test_login import chat, login_config, login_status, needs_browser, wait_for_instance_state

pytestmark = pytest.mark.timeout(90)

API_KEY = "sk-env-only-key-31415926"
PASSWORD = "Env-Only-Passw0rd-2718"
SIM_PASSWORD = "Sim-Env-Secret-1618"


def child_environ(proxy: Proxy) -> dict[str, str]:
    """The environment of the proxy's simulator child, found by its --workDir as the harness finds it."""
    [work_dir] = sorted(p.parent for p in (proxy.tmp / "instances").rglob(".info.json"))
    for proc in Path("/proc").iterdir():
        try:
            if f"--workDir={work_dir}".encode() in (proc / "cmdline").read_bytes().split(b"\0"):
                raw = (proc / "environ").read_bytes()
                return dict(entry.decode(errors="replace").partition("=")[::2] for entry in raw.split(b"\0") if entry)
        except OSError:
            continue
    raise LookupError(f"no child for {work_dir}")


def test_the_child_inherits_no_proxy_settings_account_passwords_or_simulator_secrets(make_proxy):
    config = {"accounts": [{"name": "work", "username": "alice@example.com", "password_env": "WORK_TEST_PASSWORD"}]}
    env = {
        "LINGMA_PROXY_AUTH_API_KEYS": f'["{API_KEY}"]',
        "WORK_TEST_PASSWORD": PASSWORD,
        "LINGMA_SIM_PASSWORD": SIM_PASSWORD,  # the simulator gets the configured one instead
    }
    proxy = make_proxy(config, env=env)
    environ = child_environ(proxy)

    assert environ.get("PATH")  # the rest of the environment is inherited as before
    assert not [name for name in environ if name.startswith("LINGMA_PROXY_")], sorted(environ)
    assert "WORK_TEST_PASSWORD" not in environ
    assert environ["LINGMA_SIM_PASSWORD"] == "lingma"  # lingma.simulator.password, the default
    flat = "\0".join(f"{name}={value}" for name, value in environ.items())
    for secret in (API_KEY, PASSWORD, SIM_PASSWORD):
        assert secret not in flat


@needs_browser
def test_credentials_are_not_typed_into_a_login_page_off_the_allow_list(make_proxy, tmp_path):
    # The simulator behind a wrapper is, to the proxy, a real Lingma binary: its http://127.0.0.1 login page is
    # then an unknown host. The wrapper gives it the account's real password, so typing it would log in.
    wrapper = tmp_path / "Lingma"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"PYTHONPATH='{REPO}' LINGMA_SIM_START_LOGGED_OUT=1 LINGMA_SIM_PASSWORD='{PASSWORD}' "
        f"exec '{sys.executable}' -m lingma_proxy.simulator \"$@\"\n"
    )
    wrapper.chmod(0o700)
    config = login_config("LOGIN_TEST_PASSWORD", max_retry=0, health_interval_sec=300)
    config["lingma"] = {**config["lingma"], "binary": str(wrapper)}
    proxy = make_proxy(config, env={"LOGIN_TEST_PASSWORD": PASSWORD}, wait_ready=False)
    wait_for_instance_state(proxy, "logged_out")

    response = chat(proxy, "hello, but only if the login page is a known one")
    assert response.status_code == 503, response.text
    message = response.json()["error"]["message"]
    assert "refused to type the credentials into http://127.0.0.1: not a known" in message, message
    assert "nonce" not in message and "/lingma/login" not in message

    status = login_status(proxy)
    assert status["logged_in"] is False and status["login"]["state"] == "failed"
    [instance] = proxy.health()["instances"]
    assert instance["state"] == "logged_out"
    assert PASSWORD not in proxy.log_text()
