"""`python lingma_proxy.py login` and `export-session`: start only the instances they need, then stop them.

Run them while the proxy is stopped: two Lingma processes must not share one work dir.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path

from ..config import AccountConfig, Config
from ..errors import ApiError
from ..filemodes import write_private
from ..login.bundles import BundleError, export_bundle
from .instance import CliError, pick_account, running_pool, scoped_config


def _scoped(cfg: Config, account: AccountConfig | None, first_only: bool) -> Config:
    if cfg.lingma.attach != "off":
        raise CliError("lingma.attach is set: the attached Lingma's login belongs to the IDE that runs it")
    return scoped_config(cfg, account, first_only)


async def run_login(cfg: Config, account_name: str | None, show_browser: bool) -> int:
    """Log in each logged-out instance of the account, in the foreground; 0 when all end logged in."""
    try:
        scoped = _scoped(cfg, pick_account(cfg, account_name), first_only=False)
        failures = 0
        async with running_pool(scoped) as (pool, manager):
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
                    print(
                        f"{inst.name}: login failed: {status.last_error}; see {status.failure_files()}", file=sys.stderr
                    )
                    failures += 1
        return 1 if failures else 0
    except (CliError, ApiError) as err:
        print(f"lingma-proxy login: {err}", file=sys.stderr)
        return 2


async def run_export(cfg: Config, account_name: str | None, output: str | None = None) -> int:
    """Write the base64 session bundle of the account's first instance to `output` (mode 0600), else stdout."""
    try:
        scoped = _scoped(cfg, pick_account(cfg, account_name), first_only=True)
        async with running_pool(scoped) as (pool, _):
            inst = pool.instances[0]
        # Exported after the stop: the work dir is quiescent (SQLite WAL, docs/protocol.md §7).
        if not inst.logged_in:
            print(
                f"lingma-proxy export-session: instance {inst.name} is not logged in; "
                f"run `python lingma_proxy.py login{' --account ' + inst.account.name if inst.account else ''}` first",
                file=sys.stderr,
            )
            return 1
        text = base64.b64encode(export_bundle(inst.work_dir)).decode("ascii") + "\n"
        if not output:
            print(text, end="")
            return 0
        try:
            write_private(Path(output), text.encode("ascii"))
        except OSError as exc:
            print(f"lingma-proxy export-session: cannot write {output}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        return 0
    except (CliError, ApiError, BundleError) as err:
        print(f"lingma-proxy export-session: {err}", file=sys.stderr)
        return 2
