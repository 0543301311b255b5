"""Session bundles end to end: export from a logged-in proxy, start another from config, no browser involved."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import httpx
import pytest
import yaml

from harness.proxy import REPO, Proxy

pytestmark = pytest.mark.timeout(90)

ADMIN = {"Authorization": "Bearer admin-token-for-bundle-tests"}
UNUSED_PASSWORD = "Never-Typed-Anywhere-5521"


def traversal_bundle_b64() -> str:
    """A bundle with a valid login plus one member that climbs out of the work dir."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in ("cache/id", "cache/user", "../../escaped.txt"):
            info = tarfile.TarInfo(name)
            info.size = 5
            tar.addfile(info, io.BytesIO(b"owned"))
    return base64.b64encode(buffer.getvalue()).decode()


def instances_by_name(proxy: Proxy) -> dict[str, dict]:
    return {inst["name"]: inst for inst in proxy.health()["instances"]}


def wait_until_settled(proxy: Proxy, timeout: float = 30.0) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        instances = instances_by_name(proxy)
        if all(inst["state"] in ("ready", "logged_out") for inst in instances.values()):
            return instances
        time.sleep(0.1)
    raise TimeoutError(proxy.log_text()[-4000:])


def export(proxy: Proxy, instance: str, headers: dict | None = None) -> httpx.Response:
    return httpx.post(f"{proxy.url}/internal/session/export?instance={instance}", headers=headers or {}, timeout=10)


def test_exported_bundle_starts_a_fresh_proxy_logged_in_without_a_browser(make_proxy, tmp_path):
    source = make_proxy({"auth": {"admin_token": ADMIN["Authorization"].split()[1]}, "accounts": [{"name": "src"}]})
    assert export(source, "src-0").status_code == 401
    assert export(source, "nope", ADMIN).status_code == 404
    exported = export(source, "src-0", ADMIN)
    assert exported.status_code == 200
    bundle = exported.json()["session_bundle_b64"]
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(bundle)), mode="r:gz") as tar:
        assert {"cache/id", "cache/user"} <= set(tar.getnames())
        assert not [name for name in tar.getnames() if name.startswith(("logs", ".info"))]
    source.stop()

    # Auto-login is on and the restored account has a password: only the bundle keeps the browser away.
    restored = make_proxy(
        {
            "lingma": {"simulator": {"start_logged_out": True}},
            "login": {"auto_login": True},
            "accounts": [
                {"name": "restored", "username": "bob@example.com", "password_env": "BUNDLE_TEST_PASSWORD",
                 "session_bundle_b64": bundle},
                {"name": "evil", "session_bundle_b64": traversal_bundle_b64()},
            ],
        },
        env={"BUNDLE_TEST_PASSWORD": UNUSED_PASSWORD},
    )  # fmt: skip
    instances = wait_until_settled(restored)
    assert instances["restored-0"]["state"] == "ready" and instances["restored-0"]["logged_in"] is True
    assert instances["evil-0"]["state"] == "logged_out"
    assert not [path for path in tmp_path.rglob("escaped.txt")]

    log = restored.log_text()
    assert "session bundle of account 'evil' rejected" in log and "climbs out" in log
    assert "login flow started" not in log
    assert UNUSED_PASSWORD not in log and bundle not in log

    status = httpx.get(f"{restored.url}/internal/auto-login/status", timeout=5).json()
    evil = next(inst for inst in status["instances"] if inst["instance"] == "evil-0")
    assert "rejected" in evil["login"]["last_error"] and evil["can_auto_login"] is False
    start = httpx.post(f"{restored.url}/internal/auto-login/start?instance=evil-0", timeout=5)
    assert start.status_code == 409 and "no account username and password" in start.json()["error"]["message"]

    # With auth fully open a bundle, being a credential, is never handed out.
    assert export(restored, "restored-0").status_code == 403


def test_export_session_cli_prints_a_bundle_of_the_accounts_first_instance(tmp_path: Path):
    config = {"lingma": {"binary": "simulator", "work_dir": str(tmp_path / "instances")}, "accounts": [{"name": "cli"}]}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LINGMA_PROXY_", "LINGMA_SIM_"))}
    done = subprocess.run(
        [sys.executable, str(REPO / "lingma_proxy.py"), "--config", str(tmp_path / "config.yaml"),
         "export-session", "--account", "cli"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(done.stdout)), mode="r:gz") as tar:
        assert {"cache/id", "cache/user"} <= set(tar.getnames())

    unknown = subprocess.run(
        [sys.executable, str(REPO / "lingma_proxy.py"), "--config", str(tmp_path / "config.yaml"),
         "export-session", "--account", "nobody"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert unknown.returncode == 2
    assert "no account named 'nobody'" in unknown.stderr
