"""Owner-only files: the umask, the work dir's modes, and warnings about readable secret files.

A work dir is a login (cache/id is the key that decrypts cache/user), and the config and bundle files may
hold keys and passwords, so nobody but the user who runs the proxy may read them, or change a work dir.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from .config import Config, secret_values
from .config_builder import read_yaml_file

# Set once at startup and inherited by every child: whatever the proxy, Lingma (or the simulator) and the
# login browser create is 0600 (files) or 0700 (directories), even where they ask for more.
PRIVATE_UMASK = 0o077
_GROUP_OTHER = 0o077
_GROUP_OTHER_READ = 0o044
_GROUP_OTHER_WRITE = 0o022

log = logging.getLogger("lingma_proxy")


class UnsafeWorkDir(Exception):
    """lingma.work_dir belongs to another user, or others may write to it; the message is one line."""


def write_private(path: Path, data: bytes) -> None:
    """Write `path` readable by this user only, also when it already existed with a looser mode."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        if stat.S_ISREG(os.fstat(fd).st_mode):  # not a terminal or a pipe named on the command line
            os.fchmod(fd, 0o600)  # O_CREAT's mode only applies to a file it creates
        handle.write(data)


def check_work_root(root: Path) -> None:
    """Refuse a work dir someone else could read or plant files in; a missing one is created later, private."""
    try:
        st = root.stat()
    except FileNotFoundError:
        return
    if st.st_uid != os.geteuid():
        raise UnsafeWorkDir(
            f"lingma.work_dir {root} belongs to another user (uid {st.st_uid}); use a directory of your own"
        )
    if st.st_mode & _GROUP_OTHER_WRITE:
        raise UnsafeWorkDir(
            f"lingma.work_dir {root} is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"run chmod 700 {root}, or choose another directory"
        )


def tighten_tree(root: Path) -> tuple[int, int]:
    """Remove group and other access from `root` and everything under it: (changed, could not be changed).

    Symlinks are skipped, since chmod would follow them out of the tree; check_work_root has made sure
    nobody else can swap an entry for one. Parents come before their children, so once a directory
    is private nobody else can reach what is below it."""
    changed = failed = 0
    for path in _tree(root):
        try:
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode) or not st.st_mode & _GROUP_OTHER:
                continue
            path.chmod(stat.S_IMODE(st.st_mode) & ~_GROUP_OTHER)
            changed += 1
        except OSError:
            failed += 1
    return changed, failed


def _tree(root: Path) -> Iterator[Path]:
    yield root
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            yield Path(folder) / name


def readable_secret_files(cfg: Config) -> list[Path]:
    """The config file (when it holds a secret) and the bundle files that group or others can read."""
    candidates = [Path(cfg.source)] if cfg.source != "<defaults>" and _file_holds_secrets(cfg) else []
    candidates += [Path(account.session_bundle_file) for account in cfg.accounts if account.session_bundle_file]
    return [path for path in candidates if path.stat().st_mode & _GROUP_OTHER_READ]


def _file_holds_secrets(cfg: Config) -> bool:
    """Only a secret written in the file counts: one from the environment (password_env included) does not."""
    secrets = set(secret_values(cfg))
    return any(value in secrets for value in _scalars(read_yaml_file(cfg.source)))


def _scalars(data: object) -> Iterator[str]:
    if isinstance(data, dict):
        for item in data.values():
            yield from _scalars(item)
    elif isinstance(data, list):
        for item in data:
            yield from _scalars(item)
    elif data is not None:
        yield str(data)


def secure_files(cfg: Config) -> None:
    """At startup: refuse an unsafe work dir (UnsafeWorkDir), tighten a loose one (one warning line for
    the whole tree), and warn about each secret file that group or others can read."""
    root = Path(cfg.lingma.work_dir)
    check_work_root(root)
    for path in readable_secret_files(cfg):
        mode = stat.S_IMODE(path.stat().st_mode)
        log.warning("%s holds secrets and group or others can read it (mode %04o); run chmod 600 %s", path, mode, path)
    changed, failed = tighten_tree(root) if root.exists() else (0, 0)
    if changed or failed:
        could_not = f"; {failed} could not be changed" if failed else ""
        log.warning("removed group and other access from %d files and directories under %s%s", changed, root, could_not)
