"""The LiteLLM proxy, for comparison: installed into its own venv (bench/.venv-litellm, never the project's)
and started in front of the floor server, so it does the same job as lingma-proxy with a free upstream.

    .venv/bin/python bench/litellm_env.py     # install only (what run.py does when the venv is missing)

The version is pinned: the bench compares against one known release, and a pin never silently pulls a
new (or a yanked, compromised) upload. Override with LITELLM_SPEC='litellm[proxy]==X.Y.Z'.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from targets import API_KEY, BENCH, Target, free_port, terminate, wait_for_http

VENV = BENCH / ".venv-litellm"
LITELLM_SPEC = os.environ.get("LITELLM_SPEC", "litellm[proxy]==1.106.12")
INSTALL_TIMEOUT_SEC = 900
INSTALL_LOG = BENCH / "results" / "litellm-install.log"  # bench/results/ is git-ignored


def litellm_executable() -> Path:
    return VENV / "bin" / "litellm"


def ensure_installed(log: Path = INSTALL_LOG) -> str | None:
    """Install LiteLLM into its venv unless it is already there; None on success, else why not."""
    if litellm_executable().exists():
        return None
    log.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        [sys.executable, "-m", "venv", str(VENV)],
        [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", LITELLM_SPEC],
    ]
    with open(log, "ab") as out:
        for step in steps:
            try:
                result = subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT_SEC)
            except (OSError, subprocess.TimeoutExpired) as exc:
                return f"{' '.join(step[:4])} failed: {exc}"
            if result.returncode != 0:
                return f"{' '.join(step[:4])} exited {result.returncode} (see {log})"
    return None if litellm_executable().exists() else f"no {litellm_executable()} after install (see {log})"


def start_litellm(tmp: Path, floor: Target) -> Target:
    """`litellm --config` with one model routed to the floor server as an OpenAI-compatible backend."""
    port = free_port()
    config = {
        "model_list": [
            {
                "model_name": "bench",
                "litellm_params": {"model": "openai/bench", "api_base": f"{floor.url}/v1", "api_key": "bench"},
            }
        ],
        "litellm_settings": {"telemetry": False, "drop_params": True, "set_verbose": False},
        # One deployment, no retries: a failed request must show as an error, not bench the cooldown logic.
        "router_settings": {"disable_cooldowns": True, "num_retries": 0},
    }
    config_path = tmp / "litellm.yaml"
    config_path.write_text(yaml.safe_dump(config))
    env = {
        **os.environ,
        "LITELLM_MASTER_KEY": API_KEY,
        "LITELLM_LOG": "ERROR",
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # don't fetch the cost map from the internet at start-up
        "NO_DOCS": "True",
        # Anthropic /v1/messages for an openai/ model goes to the backend's /v1/responses unless told to use
        # chat completions, the one API the floor server (like lingma-proxy's own upstream path) speaks.
        "LITELLM_USE_CHAT_COMPLETIONS_URL_FOR_ANTHROPIC_MESSAGES": "True",
    }
    log = open(tmp / "litellm.log", "wb")
    process = subprocess.Popen(
        [str(litellm_executable()), "--config", str(config_path), "--host", "127.0.0.1", "--port", str(port),
         "--num_workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=tmp,
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health/liveliness", process, 120, "litellm")
    except (RuntimeError, TimeoutError):
        terminate(process)
        raise
    return Target("litellm", url, "bench", process.pid, lambda: terminate(process))


if __name__ == "__main__":
    problem = ensure_installed()
    print(problem or f"LiteLLM is installed: {litellm_executable()}")
    sys.exit(1 if problem else 0)
