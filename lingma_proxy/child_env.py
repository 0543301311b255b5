"""The variables no child process may inherit.

Every child (Lingma or the simulator, Chromium and chromedriver for a login) inherits this process's
environment, and anything that can read a process's environment (/proc/<pid>/environ, a crash report,
a debugger) reads it there. load_config has consumed these by the time a child starts, so they are
removed from this process once, at startup, rather than from each spawn.
"""

from __future__ import annotations

from collections.abc import Mapping

from .config import ENV_PREFIX, Config

# The simulator's password: choose_upstream hands the simulator the configured one itself, so the proxy's own
# copy is never needed, and a real Lingma has no business seeing it.
SIMULATOR_SECRETS = ("LINGMA_SIM_PASSWORD",)


def withheld_variables(environ: Mapping[str, str], cfg: Config) -> list[str]:
    """The names in `environ` that children must not see: LINGMA_PROXY_* (api keys, tokens, any setting),
    each account's password_env, and the simulator's password."""
    password_vars = {account.password_env for account in cfg.accounts if account.password_env}
    return sorted(
        name for name in environ if name.startswith(ENV_PREFIX) or name in password_vars or name in SIMULATOR_SECRETS
    )
