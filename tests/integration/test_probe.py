"""The protocol probe against real simulator children (the real pexpect and RPC layers), in both dialects."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
import ujson
import yaml

from harness.simulator import running_simulator
from lingma_proxy.config import load_config
from lingma_proxy.probe import run_probe
from lingma_proxy.simulator.state import UserRecord, WorkDir

from .ide_harness import LINUX_QODERCN, IdeRuntime, remove_home, short_home

pytestmark = pytest.mark.timeout(60)
PROBE_BUDGET_SEC = 45


def make_config(tmp_path: Path, lingma: dict | None = None) -> object:
    """A config whose work dirs live under tmp_path, so the probe never copies a real login."""
    settings = {"binary": "simulator", "work_dir": str(tmp_path / "instances"), **(lingma or {})}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"lingma": settings}), encoding="utf-8")
    return load_config(str(path), {})


def probe(capsys: pytest.CaptureFixture, cfg, binary: str | None = None, attach: str | None = None) -> tuple[int, str]:
    code = asyncio.run(asyncio.wait_for(run_probe(cfg, binary, attach), PROBE_BUDGET_SEC))
    return code, capsys.readouterr().out


def verdicts(report: str) -> dict[int, str]:
    return {int(n): status for n, status in re.findall(r"^(\d)\. [^:\n]+: (PASS|FAIL|SKIP)$", report, re.MULTILINE)}


def block(report: str, number: int) -> str:
    """One check's lines: its title line and the indented facts under it."""
    match = re.search(rf"^{number}\. .*\n(?:     .*\n)*", report, re.MULTILINE)
    assert match, report
    return match.group(0)


@pytest.mark.parametrize("dialect", ["classic", "acp"])
def test_every_check_passes_against_the_simulator(tmp_path, capsys, dialect):
    code, report = probe(capsys, make_config(tmp_path, {"simulator": {"dialect": dialect}}))
    assert code == 0, report
    assert verdicts(report) == {n: "PASS" for n in range(1, 10)}, report
    assert re.search(rf"^  dialect: +{dialect}$", report, re.MULTILINE), report
    assert "upstream:     simulator" in report
    assert "probe: 9 passed, 0 failed, 0 skipped" in report
    version = "2.11.1-sim" if dialect == "classic" else "0.7.0-sim"  # plugin binary vs desktop runtime (§3)
    assert f"serverInfo: name 'lingma', version '{version}'" in block(report, 1)
    stream = block(report, 5)
    delta = "chat/answer" if dialect == "classic" else "session/update:agent_message_chunk"
    assert re.search(rf"{re.escape(delta)}×\d+ \(1 empty\)", stream), stream
    if dialect == "classic":
        assert "chat/answer [int id]" in stream and "chat/finish [int id]" in stream
        assert "reason: 'success', statusCode: 200" in block(report, 6)
    else:
        assert "server→client notifications (no id): session/update" in stream
        assert "chat_finish data: reason, fullAnswer" in block(report, 6)
    assert "the second turn remembered the word" in block(report, 7)
    assert "logged in: copying the whole work dir carries the login" in block(report, 9)


def test_a_simulator_that_forgets_history_fails_the_memory_check(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LINGMA_SIM_FORGET_HISTORY", "1")
    code, report = probe(capsys, make_config(tmp_path), binary="simulator")
    assert code == 1, report
    assert verdicts(report)[7] == "FAIL", report
    assert "the second turn did NOT remember the word" in block(report, 7)
    assert [n for n, status in verdicts(report).items() if status == "FAIL"] == [7]
    assert "probe: 8 passed, 1 failed, 0 skipped" in report


def test_a_logged_out_lingma_skips_the_chat_checks(tmp_path, capsys):
    code, report = probe(capsys, make_config(tmp_path, {"simulator": {"start_logged_out": True}}))
    assert code == 0, report
    assert "status: 1 (logged out)" in block(report, 2)
    assert verdicts(report) == {1: "PASS", 2: "PASS", 3: "PASS", 4: "PASS", **{n: "SKIP" for n in range(5, 10)}}
    assert "not logged in" in block(report, 5) and "not logged in" in block(report, 9)


def test_no_token_or_account_id_reaches_the_report(tmp_path, capsys):
    """The configured work dir holds a known login, and the model is made to repeat every secret of it."""
    source = tmp_path / "instances" / "default" / "0"
    user = UserRecord.new_login("probe.user@example.com")
    WorkDir(source).write_user(user)
    secrets = [user.token, user.refresh_token, user.uid, user.aid, user.name]
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump({"rules": [{"match": "pong", "reply": "pong " + " ".join(secrets)}]}))
    code, report = probe(capsys, make_config(tmp_path, {"simulator": {"scenario": str(scenario)}}))
    assert code == 0, report
    assert "a temp copy of" in report  # the probe ran on a copy of the logged-in dir ...
    assert not (source / ".info.json").exists()  # ... never on the configured dir itself
    assert "answer: 'pong ***" in block(report, 5)
    for secret in secrets:
        assert secret not in report


def test_attach_probes_a_running_lingma_without_stopping_it(tmp_path, capsys):
    async def scenario() -> tuple[int, bool, dict]:
        async with running_simulator(tmp_path) as sim:
            code = await run_probe(make_config(tmp_path), None, sim.url)
            return code, sim.process.alive, await sim.status()

    code, alive, status = asyncio.run(asyncio.wait_for(scenario(), PROBE_BUDGET_SEC))
    report = capsys.readouterr().out
    assert code == 0, report
    assert alive and status["logged_in"]
    assert verdicts(report) == {**{n: "PASS" for n in range(1, 9)}, 9: "SKIP"}, report
    assert "attach mode" in block(report, 9)
    assert re.search(r"^  upstream: +attach ws://127\.0\.0\.1:\d+/$", report, re.MULTILINE), report
    user = WorkDir(tmp_path / "sim").read_user()
    assert user is not None
    for secret in (user.token, user.refresh_token, user.uid, user.aid):
        assert secret not in report


def test_every_check_passes_against_a_qodercn_on_a_unix_socket_that_requires_a_token(capsys, monkeypatch, tmp_path):
    home = short_home()
    runtime = IdeRuntime(home, LINUX_QODERCN, family="qodercn", transport="unix", require_token=True)
    try:
        runtime.start()
        monkeypatch.setenv("HOME", str(home))
        code, report = probe(capsys, make_config(tmp_path), attach="auto")
        token = ujson.loads(runtime.token_file.read_text())["token"]
    finally:
        runtime.stop()
        remove_home(home)
    assert code == 0, report
    assert verdicts(report) == {**{n: "PASS" for n in range(1, 9)}, 9: "SKIP"}, report
    assert re.search(r"^  runtime: +qodercn 0\.4\.3-sim$", report, re.MULTILINE), report
    assert re.search(r"^  transport: +unix$", report, re.MULTILINE), report
    assert f"info file:    ~/{LINUX_QODERCN} (qodercn folder)" in report
    assert "machine token: present, not used (a unix socket has no upgrade headers)" in report
    assert token not in report


def test_a_spawned_qodercn_that_requires_a_token_gets_it_and_the_probe_says_it_was_needed(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("LINGMA_SIM_REQUIRE_MACHINE_TOKEN", "1")
    code, report = probe(capsys, make_config(tmp_path, {"simulator": {"family": "qodercn"}}))
    assert code == 0, report
    assert verdicts(report) == {n: "PASS" for n in range(1, 10)}, report
    assert re.search(r"^  runtime: +qodercn 0\.4\.3-sim$", report, re.MULTILINE), report
    assert re.search(r"^  dialect: +acp$", report, re.MULTILINE), report
    assert "machine token: NEEDED (refused without the Cosy-MachineToken header, accepted with it)" in report
