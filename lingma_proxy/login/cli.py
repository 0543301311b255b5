"""`python lingma_proxy.py login` and `export-session`: start only the instances they need, then stop them.

Run them while the proxy is stopped: two Lingma processes must not share one work dir.
"""

from __future__ import annotations

import base64
import dataclasses
import sys
from contextlib import asynccontextmanager
from typing import AsyncIterator

from ..config import AccountConfig, Config, secret_values
from ..errors import ApiError
from ..logs import setup_logging
from ..redact import Redactor
from ..upstream.pool import Pool
from .bundles import BundleError, export_bundle
from .manager import LoginManager


class CliError(Exception):
    """One line for the user, then exit status 2."""


def _pick_account(cfg: Config, name: str | None) -> AccountConfig | None:
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


def _scoped(cfg: Config, account: AccountConfig | None, first_only: bool) -> Config:
    """The same config with a pool of just this account's instances (or only its first)."""
    if cfg.lingma.attach != "off":
        raise CliError("lingma.attach is set: the attached Lingma's login belongs to the IDE that runs it")
    per_account = 1 if first_only else cfg.lingma.instances_per_account
    lingma = dataclasses.replace(cfg.lingma, instances_per_account=per_account)
    return dataclasses.replace(cfg, lingma=lingma, accounts=[account] if account else [])


@asynccontextmanager
async def _running_pool(cfg: Config) -> AsyncIterator[tuple[Pool, LoginManager]]:
    from ..app import choose_upstream  # app imports every handler; only the CLI paths need it

    redactor = Redactor(secret_values(cfg))
    setup_logging(cfg.server.log_level, cfg.server.log_format, redactor)
    pool = Pool(cfg, choose_upstream(cfg), redactor)
    manager = LoginManager(cfg, pool, redactor)
    manager.install()  # session bundles are imported here too
    try:
        await pool.start()
        yield pool, manager
    finally:
        await manager.stop()
        await pool.stop()


async def run_login(cfg: Config, account_name: str | None, show_browser: bool) -> int:
    """Log in each logged-out instance of the account, in the foreground; 0 when all end logged in."""
    try:
        scoped = _scoped(cfg, _pick_account(cfg, account_name), first_only=False)
        failures = 0
        async with _running_pool(scoped) as (pool, manager):
            for inst in pool.instances:
                if inst.logged_in:
                    print(f"{inst.name}: already logged in as {inst.user_name}")
                    continue
                if inst.client is None:
                    print(f"{inst.name}: did not start: {inst.last_error}", file=sys.stderr)
                    failures += 1
                    continue
                status = await manager.log_in(inst, interactive=show_browser)
                if status.state == "succeeded":
                    print(f"{inst.name}: logged in as {inst.user_name}")
                else:
                    print(f"{inst.name}: login failed: {status.last_error}; see {status.failure_files()}", file=sys.stderr)
                    failures += 1
        return 1 if failures else 0
    except (CliError, ApiError) as err:
        print(f"lingma-proxy login: {err}", file=sys.stderr)
        return 2


async def run_export(cfg: Config, account_name: str | None) -> int:
    """Print the base64 session bundle of the account's first instance on stdout."""
    try:
        scoped = _scoped(cfg, _pick_account(cfg, account_name), first_only=True)
        async with _running_pool(scoped) as (pool, _):
            inst = pool.instances[0]
        # Exported after the stop: the work dir is quiescent (SQLite WAL, lingma-protocol.md §7).
        if not inst.logged_in:
            print(
                f"lingma-proxy export-session: instance {inst.name} is not logged in; "
                f"run `python lingma_proxy.py login{' --account ' + inst.account.name if inst.account else ''}` first",
                file=sys.stderr,
            )
            return 1
        print(base64.b64encode(export_bundle(inst.work_dir)).decode("ascii"))
        return 0
    except (CliError, ApiError, BundleError) as err:
        print(f"lingma-proxy export-session: {err}", file=sys.stderr)
        return 2
