"""Start one private Lingma the way serve would and look at it: upstream, dialect, version, login, models.

Shared by `check` (which reports each step as it goes) and `models` (which only wants the list).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from ..config import AccountConfig, Config
from ..errors import ApiError
from ..login.bundles import BundleError
from ..model import ModelInfo
from ..models import flatten_models
from ..startup_summary import upstream_label
from ..upstream.choice import choose_upstream
from ..upstream.pool import Upstream
from .instance import pick_account, private_instance
from .reuse import reuse_line

# On top of lingma.startup_timeout: connect, initialize, the dialect probe (§9), auth/status, the model list.
_AFTER_START_SEC = 30.0


class InspectionFailed(Exception):
    """Why the look failed, as one line for the verdict."""


@dataclass
class Inspection:
    upstream: Upstream
    instance: str
    dialect: str
    version: str
    user_name: str
    models: list[ModelInfo]


def account_to_inspect(cfg: Config, name: str | None) -> AccountConfig | None:
    """The named account, else the first configured one (one instance is enough to look)."""
    return pick_account(cfg, name or (cfg.accounts[0].name if cfg.accounts else None))


def _login_hint(account: AccountConfig | None, upstream: Upstream) -> str:
    if upstream.attach:
        return "log in from the IDE or app that runs this Lingma"
    return "run python lingma_proxy.py login" + (f" --account {account.name}" if account else "")


async def inspect_account(
    cfg: Config, account_name: str | None, say: Callable[[str], None], reuse: bool = False, recheck_reuse: bool = False
) -> Inspection:
    """Everything `check` reports; InspectionFailed at the first step that fails (CliError for a bad --account).
    `reuse` adds the canary's verdict (cli/reuse.py), `recheck_reuse` runs the canary first."""
    account = account_to_inspect(cfg, account_name)
    bound = cfg.lingma.startup_timeout + _AFTER_START_SEC
    try:
        upstream = choose_upstream(cfg)
        say(f"upstream: {upstream_label(upstream)}")
        if upstream.attach:
            say(f"instance: connecting to the attached Lingma (up to {bound:g}s)")
        else:
            whose = f" for account {account.name}" if account else ""
            say(f"instance: starting one Lingma{whose} in a temporary copy of {cfg.lingma.work_dir} (up to {bound:g}s)")
        async with asyncio.timeout(bound):
            async with private_instance(cfg, account, upstream) as inst:
                if inst.client is None:
                    raise InspectionFailed(f"no usable Lingma: {inst.last_error}")
                dialect, version = inst.client.dialect_name, _version(inst.client.server_info)
                transport = inst.client.transport
                say(f"instance: {inst.name} is up: {dialect} dialect, version {version}, {transport} transport")
                if not inst.logged_in:
                    say("login: not logged in")
                    raise InspectionFailed(f"not logged in ({_login_hint(account, upstream)})")
                say(f"login: logged in as {inst.user_name}")
                models = flatten_models(await inst.client.query_models(), cfg.lingma.context_windows)
                say(f"models: {len(models)}: {', '.join(model.id for model in models)}")
                if reuse or recheck_reuse:
                    say(await reuse_line(cfg, inst, models, recheck_reuse))
                return Inspection(upstream, inst.name, dialect, version, inst.user_name, models)
    except TimeoutError:
        raise InspectionFailed(f"gave up after {bound:g}s (lingma.startup_timeout + {_AFTER_START_SEC:g}s)") from None
    except (ApiError, BundleError) as err:
        raise InspectionFailed(str(err)) from None


def _version(server_info: dict) -> str:
    """serverInfo of the initialize answer (§3), e.g. "lingma 2.5.1"; the real binary may leave it out."""
    parts = [str(server_info.get(key) or "") for key in ("name", "version")]
    return " ".join(part for part in parts if part) or "unknown (no serverInfo)"
