"""`python lingma_proxy.py <command>` as a user runs it: a subprocess on a temporary config and the simulator."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import ujson
import yaml

from harness.proxy import REPO
from lingma_proxy.config import load_config
from lingma_proxy.usage.ledger import Ledger, UsageRow

pytestmark = pytest.mark.timeout(90)

COMMANDS = ("serve", "login", "export-session", "check", "doctor", "models", "config", "probe", "usage")
SECRETS = {"api_key": "sk-cli-key-4815162342", "admin": "adm-cli-token-0815", "password": "pw-cli-secret-777"}


def write_config(tmp: Path, extra: dict | None = None, name: str = "config.yaml") -> Path:
    config = {"lingma": {"binary": "simulator", "work_dir": str(tmp / "instances")}, **(extra or {})}
    path = tmp / name
    path.write_text(yaml.safe_dump(config))
    return path


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LINGMA_PROXY_", "LINGMA_SIM_"))}
    return subprocess.run(
        [sys.executable, str(REPO / "lingma_proxy.py"), *args],
        cwd=REPO, env={**clean, **(env or {})}, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def files_of(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def test_help_names_every_command_and_each_command_has_its_own():
    done = run("--help")
    assert done.returncode == 0, done.stderr
    for command in COMMANDS:
        assert command in done.stdout
    for command in COMMANDS:
        sub = run(command, "--help")
        assert sub.returncode == 0, (command, sub.stderr)
        assert f"lingma_proxy.py {'check' if command == 'doctor' else command}" in sub.stdout
        assert "--config" in sub.stdout
    assert "--show-browser" in run("login", "--help").stdout
    assert "--json" in run("models", "--help").stdout
    assert "--print-defaults" in run("config", "--help").stdout
    assert all(option in run("usage", "--help").stdout for option in ("--since", "--by", "--json", "--csv"))
    probe = run("probe", "--binary", "simulator", "--attach", "ws://127.0.0.1:1/")
    assert probe.returncode == 2 and "not allowed with" in probe.stderr


def test_check_reports_each_step_and_an_ok_verdict_without_touching_the_work_dir(tmp_path):
    config = write_config(tmp_path)
    done = run("--config", str(config), "check")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    for step in ("config:", "upstream: simulator", "instance:", "login: logged in as", "models:"):
        assert any(line.startswith(step) for line in lines), (step, lines)
    assert re.fullmatch(r"check: OK: simulator, classic dialect, logged in as \S+, [1-9]\d* models", lines[-1]), lines
    assert "version lingma" in done.stdout  # from the initialize answer's serverInfo
    assert not (tmp_path / "instances").exists(), "check must run in a temporary work dir"
    assert any(re.fullmatch(r"session reuse: auto, lingma \S+ classic: not checked yet .*", line) for line in lines)


def test_check_recheck_reuse_runs_the_canary_and_keeps_its_verdict_for_serve(tmp_path):
    config = write_config(tmp_path)
    remembers = run("--config", str(config), "check", "--recheck-reuse")
    assert remembers.returncode == 0, remembers.stdout + remembers.stderr
    assert re.search(r"^session reuse: auto, lingma \S+ classic: on \(canary of \S+Z: asked for", remembers.stdout, re.M)
    forgets = run("--config", str(config), "check", "--recheck-reuse", env={"LINGMA_SIM_FORGET_HISTORY": "1"})
    assert re.search(r"^session reuse: auto, lingma \S+ classic: off ", forgets.stdout, re.M), forgets.stdout
    assert (tmp_path / "instances" / "reuse-verdicts.json").stat().st_mode & 0o777 == 0o600


def test_check_copies_the_login_of_the_configured_work_dir_and_leaves_it_as_it_was(tmp_path):
    config = write_config(tmp_path, {"accounts": [{"name": "alice"}]})
    assert run("--config", str(config), "export-session").returncode == 0  # logs alice-0 in, in the real work dir
    before = files_of(tmp_path / "instances")
    # A fresh simulator work dir would now start logged out: only the copied login can make this pass.
    done = run("check", "--config", str(config), env={"LINGMA_PROXY_LINGMA_SIMULATOR_START_LOGGED_OUT": "true"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "for account alice" in done.stdout
    assert files_of(tmp_path / "instances") == before


def test_doctor_fails_on_a_logged_out_simulator_and_names_login(tmp_path):
    config = write_config(tmp_path, {"lingma": {"binary": "simulator", "work_dir": str(tmp_path / "instances"),
                                                "simulator": {"start_logged_out": True}}})  # fmt: skip
    done = run("doctor", "--config", str(config))
    assert done.returncode == 1, done.stdout + done.stderr
    verdict = done.stdout.strip().splitlines()[-1]
    assert verdict == "check: FAIL: not logged in (run python lingma_proxy.py login)", done.stdout


def test_a_broken_config_exits_2_with_one_line(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("server:\n  port: nope\n")
    for args in (("check", "--config", str(broken)), ("--config", str(broken), "models"), ("--config", str(broken))):
        done = run(*args)
        assert done.returncode == 2, args
        assert done.stdout == ""
        assert len(done.stderr.strip().splitlines()) == 1 and "server.port" in done.stderr, done.stderr


def test_models_lists_what_v1_models_lists_while_that_proxy_keeps_serving(make_proxy):
    proxy = make_proxy()
    config = proxy.tmp / "config.yaml"  # the very config, and work dir, the proxy is serving from
    live_info = sorted((proxy.tmp / "instances").rglob(".info.json"))[0].read_bytes()
    served = [model["id"] for model in httpx.get(f"{proxy.url}/v1/models", timeout=10).json()["data"]]

    listed = run("models", "--json", "--config", str(config))
    assert listed.returncode == 0, listed.stderr
    models = ujson.loads(listed.stdout)
    assert [model["id"] for model in models] == served
    assert set(models[0]) >= {"id", "display_name", "context_window", "is_reasoning", "is_vision"}

    table = run("--config", str(config), "models")
    assert table.returncode == 0, table.stderr
    rows = table.stdout.strip().splitlines()
    assert rows[0].split() == ["id", "name", "reasoning", "vision", "context"]
    assert [row.split()[0] for row in rows[1:]] == served

    assert proxy.health()["ok"] is True
    assert sorted((proxy.tmp / "instances").rglob(".info.json"))[0].read_bytes() == live_info


def test_serve_logs_one_startup_summary_with_the_status_page_and_the_auth_posture(make_proxy):
    proxy = make_proxy({"auth": {"api_keys": [SECRETS["api_key"]]}})
    deadline = time.monotonic() + 10  # the block follows the pool's start, which /healthz may beat by a moment
    while "lingma-proxy is up" not in proxy.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    log_text = proxy.log_text()
    assert log_text.count("lingma-proxy is up") == 1, log_text
    block = log_text.split("lingma-proxy is up", 1)[1]
    assert f"status page: {proxy.url}/" in block
    assert f"listening:   {proxy.url}" in block
    assert "upstream:    simulator" in block
    assert f"dialect:     {proxy.health()['upstream']['dialect']}" in block
    assert "default-0: ready, logged in as" in block
    assert "auth posture:" in block and "/v1/*        1 API key(s)" in block
    assert "auth.admin_token is not set: /internal/* accepts the API keys" in log_text
    assert SECRETS["api_key"] not in log_text


def test_config_prints_the_effective_config_with_every_secret_redacted(tmp_path):
    config = write_config(tmp_path, {
        "auth": {"api_keys": [SECRETS["api_key"]], "admin_token": SECRETS["admin"]},
        "accounts": [{"name": "alice", "password": SECRETS["password"]}],
    })  # fmt: skip
    done = run("config", "--config", str(config))
    assert done.returncode == 0, done.stderr
    for secret in SECRETS.values():
        assert secret not in done.stdout + done.stderr
    shown = yaml.safe_load(done.stdout)
    assert shown["auth"]["api_keys"] == ["***"] and shown["auth"]["admin_token"] == "***"
    assert shown["accounts"][0]["password"] == "***" and shown["accounts"][0]["name"] == "alice"
    assert shown["lingma"]["work_dir"] == str(tmp_path / "instances")


def test_print_defaults_loads_back_to_the_defaults(tmp_path):
    done = run("config", "--print-defaults", "--config", str(tmp_path / "does-not-exist.yaml"))
    assert done.returncode == 0, done.stderr
    printed = tmp_path / "defaults.yaml"
    printed.write_text(done.stdout)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    loaded = dataclasses.replace(load_config(str(printed), environ={}), source="")
    assert loaded == dataclasses.replace(load_config(str(empty), environ={}), source="")
    assert set(yaml.safe_load(done.stdout)) == {"server", "auth", "limits", "lingma", "login", "sessions", "tools", "debug", "usage", "accounts"}


def _ledger_row(ts: float, client: str, model: str, status: int = 200, first_token_ms: int | None = 100) -> UsageRow:
    return UsageRow(
        ts=ts, api="openai_chat", route="/v1/chat/completions", client=client, agent="curl", model_asked=model,
        model_served=model if status == 200 else "", account="default" if status == 200 else "",
        instance="default-0" if status == 200 else "", status=status,
        error_type="" if status == 200 else "invalid_request", input_tokens=10 if status == 200 else 0,
        output_tokens=3 if status == 200 else 0, upstream_tokens=4 if status == 200 else 0, session_reused=False,
        first_token_ms=first_token_ms if status == 200 else None, total_ms=200, streamed=False,
    )  # fmt: skip


def test_usage_prints_the_ledger_as_a_table_json_and_csv(tmp_path):
    config = write_config(tmp_path)
    assert "no requests recorded in the last 7d" in run("usage", "--config", str(config)).stdout  # no file yet
    ledger = Ledger(tmp_path / "usage.db", retention_days=90)  # where the config's default db_path points
    ledger.start()
    now = time.time()
    for row in [
        _ledger_row(now - 60, "laptop", "qwen-coder", first_token_ms=100),
        _ledger_row(now - 120, "laptop", "qwen-coder", first_token_ms=300),
        _ledger_row(now - 180, "ci", "qwen-max", status=400),
        _ledger_row(now - 10 * 86400, "laptop", "qwen-max"),  # outside --since 7d
    ]:
        ledger.record(row)
    ledger.close()

    done = run("usage", "--config", str(config), "--by", "client", "--json")
    assert done.returncode == 0, done.stderr
    assert ujson.loads(done.stdout) == [
        {"client": "laptop", "requests": 2, "errors": 0, "input_tokens": 20, "output_tokens": 6,
         "upstream_tokens": 8, "first_token_p50_ms": 200.0},
        {"client": "ci", "requests": 1, "errors": 1, "input_tokens": 0, "output_tokens": 0,
         "upstream_tokens": 0, "first_token_p50_ms": None},
    ]  # fmt: skip
    models = ujson.loads(run("usage", "--config", str(config), "--by", "model", "--since", "30d", "--json").stdout)
    assert {row["model"]: row["requests"] for row in models} == {"qwen-coder": 2, "qwen-max": 2}
    assert sum(row["requests"] for row in ujson.loads(run("usage", "--config", str(config), "--json").stdout)) == 3

    csv_lines = run("usage", "--config", str(config), "--by", "account", "--csv").stdout.splitlines()
    assert csv_lines == [
        "account,requests,errors,input_tokens,output_tokens,upstream_tokens,first_token_p50_ms",
        "default,2,0,20,6,8,200.0",
        ",1,1,0,0,0,",  # the 400 never reached an account
    ]
    table = run("usage", "--config", str(config), "--by", "client").stdout.splitlines()
    assert table[0].split()[:3] == ["client", "requests", "errors"]
    assert table[1].split() == ["laptop", "2", "0", "20", "6", "8", "200", "ms"]
    assert table[-1].split()[:3] == ["total", "3", "1"]

    bad = run("usage", "--config", str(config), "--since", "forever")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "since must be" in bad.stderr
