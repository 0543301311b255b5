"""Starting Lingma instances outside `serve`: for login and export-session (in the configured work
dir) and for check and models (in a temporary copy of it, so a running proxy is left alone)."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from ..config import AccountConfig, Config, secret_values
from ..filemodes import UnsafeWorkDir, secure_files
from ..login.bundle_import import BundleImporter
from ..login.bundles import clone_work_dir
from ..login.manager import LoginManager
from ..logs import setup_logging
from ..redact import Redactor
from ..upstream.choice import choose_upstream
from ..upstream.pool import Instance, Pool, Upstream


class CliError(Exception):
    """One line for the user, then exit status 2."""


def pick_account(cfg: Config, name: str | None) -> AccountConfig | None:
    """The named account; the only one when there is one; None (the anonymous instance) when there are none."""
    names = ", ".join(account.name for account in cfg.accounts)
    if name:
        for account in cfg.accounts:
            if account.name == name:
                return account
        raise CliError(f"no account named {name!r} in {cfg.source} (accounts: {names or 'none'})")
    if len(cfg.accounts) > 1:
        raise CliError(f"several accounts are configured; choose one with --account NAME (one of: {names})")
    return cfg.accounts[0] if cfg.accounts else None


def scoped_config(cfg: Config, account: AccountConfig | None, first_only: bool) -> Config:
    """The same config with a pool of just this account's instances (or only its first)."""
    per_account = 1 if first_only else cfg.lingma.instances_per_account
    lingma = dataclasses.replace(cfg.lingma, instances_per_account=per_account)
    return dataclasses.replace(cfg, lingma=lingma, accounts=[account] if account else [])


@asynccontextmanager
async def running_pool(
    cfg: Config, upstream: Upstream | None = None, before_start: Callable[[Pool], None] | None = None
) -> AsyncIterator[tuple[Pool, LoginManager]]:
    """A started pool for `cfg` (upstream: the one serve would choose), stopped on the way out."""
    redactor = Redactor(secret_values(cfg))
    setup_logging(cfg.server.log_level, cfg.server.log_format, redactor)
    try:
        secure_files(cfg)
    except UnsafeWorkDir as err:
        raise CliError(str(err)) from None
    bundles = BundleImporter()  # session bundles are imported here too
    pool = Pool(cfg, upstream or choose_upstream(cfg), redactor, prepare_work_dir=bundles.prepare_work_dir)
    manager = LoginManager(cfg, pool, redactor, bundles.errors)
    try:
        if before_start is not None:
            before_start(pool)
        await pool.start()
        yield pool, manager
    finally:
        await manager.stop()
        await pool.stop()


@asynccontextmanager
async def private_instance(cfg: Config, account: AccountConfig | None, upstream: Upstream) -> AsyncIterator[Instance]:
    """The account's first instance, started in a temporary copy of its work dir.

    A proxy may be serving from the configured work dir, and two Lingma processes must not share
    one; the clone carries the login exactly as a session bundle does (docs/protocol.md §7).
    """
    real_root = Path(cfg.lingma.work_dir)
    with tempfile.TemporaryDirectory(prefix="lingma-proxy-", ignore_cleanup_errors=True) as tmp:
        scoped = scoped_config(cfg, account, first_only=True)
        private = dataclasses.replace(
            scoped,
            server=dataclasses.replace(scoped.server, log_level=_quieter(scoped.server.log_level)),
            lingma=dataclasses.replace(scoped.lingma, work_dir=tmp),
        )

        def clone_logins(pool: Pool) -> None:
            for inst in pool.instances:
                clone_login(real_root / inst.work_dir.relative_to(tmp), inst.work_dir, inst.name)

        async with running_pool(private, upstream, clone_logins) as (pool, _):
            yield pool.instances[0]


def clone_login(source: Path, target: Path, label: str) -> bool:
    """Copy a logged-in work dir the way a session bundle travels; False when `source` holds no login."""
    if not (source / "cache" / "user").is_file():
        return False
    clone_work_dir(source, target, label)
    return True


def _quieter(level: str) -> str:
    """These commands print their own progress; info-level pool chatter would bury it."""
    return "warning" if level == "info" else level
