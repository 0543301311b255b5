"""Owner-only files (lingma_proxy/filemodes.py)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

from lingma_proxy.config import load_config
from lingma_proxy.filemodes import (
    UnsafeWorkDir,
    check_work_root,
    readable_secret_files,
    tighten_tree,
    write_private,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_write_private_creates_0600_and_tightens_an_existing_file(tmp_path):
    fresh = tmp_path / "fresh.b64"
    write_private(fresh, b"bundle")
    assert mode(fresh) == 0o600 and fresh.read_bytes() == b"bundle"
    old = tmp_path / "old.b64"
    old.write_bytes(b"a longer older content")
    old.chmod(0o644)
    write_private(old, b"new")
    assert mode(old) == 0o600 and old.read_bytes() == b"new"


def test_tighten_tree_removes_group_and_other_access_and_leaves_symlinks_alone(tmp_path):
    root = tmp_path / "instances"
    (root / "a" / "0" / "cache").mkdir(parents=True)
    (root / "a" / "0" / "cache" / "user").write_text("login")
    (root / "a" / "0" / "run.sh").write_text("#!/bin/sh\n")
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours to change")
    outside.chmod(0o644)
    (root / "a" / "link").symlink_to(outside)
    for path, loose in [(root, 0o755), (root / "a", 0o775), (root / "a" / "0", 0o755),
                        (root / "a" / "0" / "cache", 0o755), (root / "a" / "0" / "cache" / "user", 0o644),
                        (root / "a" / "0" / "run.sh", 0o755)]:  # fmt: skip
        path.chmod(loose)

    assert tighten_tree(root) == (6, 0)
    assert [mode(p) for p in (root, root / "a", root / "a" / "0", root / "a" / "0" / "cache")] == [0o700] * 4
    assert mode(root / "a" / "0" / "cache" / "user") == 0o600
    assert mode(root / "a" / "0" / "run.sh") == 0o700
    assert mode(outside) == 0o644
    assert tighten_tree(root) == (0, 0)


def test_a_work_dir_others_can_write_to_is_refused(tmp_path):
    check_work_root(tmp_path / "missing")  # created later, under the private umask
    for loose in (0o775, 0o757, 0o777):
        tmp_path.chmod(loose)
        with pytest.raises(UnsafeWorkDir, match=f"writable by group or others \\(mode 0{loose:o}\\)"):
            check_work_root(tmp_path)
    tmp_path.chmod(0o755)
    check_work_root(tmp_path)  # readable is tightened at startup, not refused


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a directory to another user")
def test_a_work_dir_another_user_owns_is_refused(tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 65534, 65534)
    with pytest.raises(UnsafeWorkDir, match="belongs to another user"):
        check_work_root(theirs)


def write_config(path: Path, data: dict, file_mode: int) -> Path:
    path.write_text(yaml.safe_dump({"lingma": {"binary": "simulator"}, **data}))
    path.chmod(file_mode)
    return path


def test_a_readable_config_counts_only_when_the_file_itself_holds_a_secret(tmp_path):
    keys = write_config(tmp_path / "keys.yaml", {"auth": {"api_keys": ["sk-in-the-file"]}}, 0o644)
    assert readable_secret_files(load_config(str(keys))) == [keys]
    keys.chmod(0o600)
    assert readable_secret_files(load_config(str(keys))) == []

    from_env = write_config(tmp_path / "env.yaml", {"accounts": [{"name": "a", "password_env": "A_PW"}]}, 0o644)
    env = {"A_PW": "pw-from-env", "LINGMA_PROXY_AUTH_ADMIN_TOKEN": "token-from-env"}
    assert readable_secret_files(load_config(str(from_env), env)) == []

    inline = write_config(tmp_path / "inline.yaml", {"accounts": [{"name": "a", "password": "pw-inline"}]}, 0o640)
    assert readable_secret_files(load_config(str(inline))) == [inline]


def test_a_readable_bundle_file_is_reported(tmp_path):
    bundle = tmp_path / "server.b64"
    bundle.write_text("H4sI")
    bundle.chmod(0o604)
    config = write_config(
        tmp_path / "c.yaml", {"accounts": [{"name": "a", "session_bundle_file": "server.b64"}]}, 0o600
    )
    assert readable_secret_files(load_config(str(config))) == [bundle]
    bundle.chmod(0o600)
    assert readable_secret_files(load_config(str(config))) == []
