"""Which upstream serves: a Lingma to attach to, a real binary, or the embedded simulator (loudly)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..config import Config
from ..errors import ApiError
from .discovery import find_lingma_binary, simulator_command
from .pool import Upstream

log = logging.getLogger("lingma_proxy")


def choose_upstream(cfg: Config) -> Upstream:
    """The real binary when configured or found; otherwise the embedded simulator, loudly."""
    lingma = cfg.lingma
    if lingma.attach != "off":
        return Upstream(kind="lingma", command=[], attach=lingma.attach)
    if lingma.binary != "simulator":
        found = find_lingma_binary(lingma.binary, cfg.host.places, cfg.host.home)
        if found is not None:
            return Upstream(kind="lingma", command=[str(found)])
        if lingma.binary != "auto":
            raise ApiError("unavailable", f"lingma.binary {lingma.binary!r} does not exist or is not executable")
        log.warning(
            "\n" + "!" * 78 + "\n"
            "!! No Lingma install was found: serving from the embedded Lingma SIMULATOR.\n"
            "!! Replies are canned test output, not a real model. To use your account, set\n"
            "!! lingma.binary: /path/to/Lingma in config.yaml (or LINGMA_BINARY), or lingma.attach: auto.\n" + "!" * 78
        )
    sim = lingma.simulator
    package_root = str(Path(__file__).resolve().parents[2])
    env = {
        # `python -m lingma_proxy.simulator` must import this very package, wherever the cwd is.
        "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH", "")])),
        "LINGMA_SIM_START_LOGGED_OUT": "1" if sim.start_logged_out else "0",
        "LINGMA_SIM_PASSWORD": sim.password,
        "LINGMA_SIM_DIALECT": sim.dialect,
        "LINGMA_SIM_FAMILY": sim.family,
        "LINGMA_SIM_MAX_CONCURRENT": str(sim.max_concurrent),
    }
    if sim.scenario:
        env["LINGMA_SIM_SCENARIO"] = sim.scenario
    return Upstream(kind="simulator", command=simulator_command(), env=env)
