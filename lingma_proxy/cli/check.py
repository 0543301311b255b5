"""`python lingma_proxy.py check` (alias `doctor`): can this config serve? One line per step, then a verdict.

Exit status: 0 OK, 1 FAIL, 2 for a config or usage error (the config itself is loaded, and its
errors reported, by lingma_proxy.py before this runs).
"""

from __future__ import annotations

import sys

from ..config import Config
from ..startup_summary import upstream_label
from .inspection import InspectionFailed, inspect_account
from .instance import CliError


def _say(line: str) -> None:
    print(line, flush=True)  # progress as it happens, even when stdout is a pipe


async def run_check(cfg: Config, account_name: str | None, recheck_reuse: bool = False) -> int:
    _say(f"config: {cfg.source}: valid")
    try:
        found = await inspect_account(cfg, account_name, _say, reuse=True, recheck_reuse=recheck_reuse)
    except CliError as err:
        print(f"lingma-proxy check: {err}", file=sys.stderr)
        return 2
    except InspectionFailed as failure:
        _say(f"check: FAIL: {failure}")
        return 1
    if not found.models:
        _say(f"check: FAIL: logged in as {found.user_name}, but Lingma lists no models")
        return 1
    _say(
        f"check: OK: {upstream_label(found.upstream)}, {found.dialect} dialect, "
        f"logged in as {found.user_name}, {len(found.models)} models"
    )
    return 0
