"""Owner-only files on a real run: the work dir tree, cache/id and cache/user the simulator child
writes, a loose work dir tightened at startup, an unsafe one refused, the config warning, export --output."""

from __future__ import annotations

import base64
import gzip
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from harness.proxy import start_proxy

from .test_cli import run, write_config

pytestmark = pytest.mark.timeout(90)

NOBODY = 65534


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def modes_under(root: Path) -> dict[str, int]:
    return {str(path.relative_to(root)): mode(path) for path in [root, *root.rglob("*")]}


def loose_entries(root: Path) -> dict[str, int]:
    """Everything under root that is not 0700 (directories) or 0600/0700 (files)."""
    return {
        name: bits
        for name, bits in modes_under(root).items()
        if bits & 0o077 or ((root / name).is_dir() and bits != 0o700)
    }


@pytest.fixture
def traversable_dir() -> Iterator[Path]:
    """A directory another user may pass through (0711), unlike pytest's tmp_path (0700 all the way up):
    only the work dir's own modes can then keep a second uid out."""
    path = Path(tempfile.mkdtemp(prefix="lingma-sec-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def as_nobody(*argv: str) -> subprocess.CompletedProcess:
    if os.geteuid() != 0 or not shutil.which("runuser"):
        pytest.skip("needs root and runuser to run a command as a second uid")
    return subprocess.run(["runuser", "-u", "nobody", "--", *argv], capture_output=True, text=True, timeout=30)


def test_a_served_work_dir_is_owner_only_and_another_uid_cannot_read_the_login(tmp_path, traversable_dir):
    work_dir = traversable_dir / "instances"
    proxy = start_proxy(tmp_path, {"lingma": {"work_dir": str(work_dir)}})
    try:
        instance = work_dir / "default" / "0"
        for name in ("cache/id", "cache/user"):
            assert mode(instance / name) == 0o600, name
        assert mode(instance.parent / "0.workspace") == 0o700
        assert loose_entries(work_dir) == {}, modes_under(work_dir)

        denied = as_nobody("cat", str(instance / "cache" / "user"))
        assert denied.returncode != 0 and "Permission denied" in denied.stderr, denied
        assert as_nobody("ls", str(traversable_dir)).returncode != 0  # the fixture's own dir: passable, not listable
    finally:
        proxy.stop()


def test_a_loose_work_dir_is_tightened_at_startup_with_one_warning_line(tmp_path):
    work_dir = tmp_path / "instances"
    instance = work_dir / "default" / "0"
    (instance / "logs").mkdir(parents=True)
    (instance.parent / "0.workspace").mkdir()
    (instance / "logs" / "lingma.log").write_text("an older run's log, with tokens in it\n")
    (instance / "notes.txt").write_text("left by an earlier version\n")
    for path in (work_dir, work_dir / "default", instance, instance / "logs", instance.parent / "0.workspace"):
        path.chmod(0o755)
    for path in (instance / "logs" / "lingma.log", instance / "notes.txt"):
        path.chmod(0o644)

    proxy = start_proxy(tmp_path, {"lingma": {"work_dir": str(work_dir)}})
    try:
        assert loose_entries(work_dir) == {}, modes_under(work_dir)
        warnings = [line for line in proxy.log_text().splitlines() if "removed group and other access" in line]
        assert len(warnings) == 1, proxy.log_text()[-3000:]
        assert "WARNING" in warnings[0] and f"from 7 files and directories under {work_dir}" in warnings[0]
    finally:
        proxy.stop()


@pytest.mark.parametrize("unsafe", ["world-writable", "group-writable", "another user's"])
def test_an_unsafe_work_dir_is_refused_with_one_line_and_exit_status_2(tmp_path, unsafe):
    work_dir = tmp_path / "instances"
    work_dir.mkdir(mode=0o700)
    if unsafe == "another user's":
        if os.geteuid() != 0:
            pytest.skip("only root can give a directory to another user")
        os.chown(work_dir, NOBODY, NOBODY)
    else:
        work_dir.chmod(0o777 if unsafe == "world-writable" else 0o770)

    proxy = start_proxy(tmp_path, {"lingma": {"work_dir": str(work_dir)}}, wait_ready=False)
    assert proxy.process.wait(timeout=60) == 2, proxy.log_text()
    lines = proxy.log_text().strip().splitlines()
    refusals = [line for line in lines if "lingma.work_dir" in line]
    assert len(refusals) == 1 and "ERROR" in refusals[0], lines
    why = "belongs to another user" if unsafe == "another user's" else "is writable by group or others"
    assert f"lingma.work_dir {work_dir} {why}" in refusals[0]
    assert list(work_dir.iterdir()) == [], "nothing may be started in a refused work dir"


def test_a_config_with_api_keys_that_others_can_read_gets_a_startup_warning(tmp_path):
    config = write_config(tmp_path, {"auth": {"api_keys": ["sk-readable-config-2718"]}})
    for file_mode, warned in ((0o644, True), (0o600, False)):
        config.chmod(file_mode)
        done = run("--config", str(config), "check")
        assert done.returncode == 0, done.stdout + done.stderr
        warning = f"{config} holds secrets and group or others can read it (mode {file_mode:04o}); run chmod 600"
        assert (warning in done.stderr) is warned, done.stderr
        assert "sk-readable-config-2718" not in done.stdout + done.stderr


def test_export_session_output_is_created_0600_and_stdout_still_works(tmp_path):
    config = write_config(tmp_path, {"accounts": [{"name": "alice"}]})
    written = tmp_path / "alice.b64"
    written.write_text("an older, world-readable export\n")
    written.chmod(0o644)

    done = run("--config", str(config), "export-session", "--output", str(written))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert mode(written) == 0o600
    assert gzip.decompress(base64.b64decode(written.read_text()))  # a whole bundle replaced the old text

    fresh = tmp_path / "new" / "bob.b64"
    fresh.parent.mkdir()
    assert run("--config", str(config), "export-session", "--output", str(fresh)).returncode == 0
    assert mode(fresh) == 0o600

    printed = run("--config", str(config), "export-session")
    assert printed.returncode == 0, printed.stderr
    assert base64.b64decode(printed.stdout.strip()).startswith(b"\x1f\x8b")
    assert "--output" in run("export-session", "--help").stdout

    missing_dir = run("--config", str(config), "export-session", "--output", str(tmp_path / "nope" / "x.b64"))
    assert missing_dir.returncode == 2 and "cannot write" in missing_dir.stderr
    assert yaml.safe_load(config.read_text())["accounts"] == [{"name": "alice"}]
