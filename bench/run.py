#!/usr/bin/env python3
"""lingma-proxy's benchmark: floor, direct upstream, the proxy and LiteLLM, side by side, from one run.

    .venv/bin/python bench/run.py [--quick] [--skip-litellm] [--reuse] [--json out.json]

A measurement, not a test: it prints the table and the targets beside the measured values,
and exits 0 whatever they say (non-zero only when the bench itself cannot run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import sys
import tempfile
import time
from pathlib import Path

import ujson
import workloads  # noqa: F401  (puts the repo on sys.path for the imports below)
from direct import direct_upstream
from litellm_env import LITELLM_SPEC, ensure_installed, start_litellm
from report import checks, load_note, machine_line, table
from rounds import alternating_rounds
from suite import DEFAULT_PLAN, QUICK_PLAN, Plan, direct_callers, http_callers, run_workloads
from targets import Target, start_floor, start_lingma_proxy


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def measure_target(target: Target, plan: Plan) -> dict:
    log(f"  {target.name} at {target.url} (pids {target.pids})")
    return await run_workloads(http_callers(target.url, target.model), plan, target.pids, log)


async def measure_direct(tmp: Path, plan: Plan) -> dict:
    async with direct_upstream(tmp) as (sim, client):
        log(f"  direct upstream: IPC client → simulator pid {sim.process.pid}")
        pids = {"simulator": sim.process.pid} if sim.process.pid is not None else {}
        return await run_workloads(direct_callers(client), plan, pids, log)


def start_litellm_target(tmp: Path, floor: Target, notes: list[str]) -> Target | None:
    log(f"  LiteLLM: making sure {LITELLM_SPEC} is installed in bench/.venv-litellm ...")
    problem = ensure_installed()
    if problem:
        notes.append(f"LiteLLM skipped: {problem}")
        return None
    try:
        return start_litellm(tmp, floor)
    except (RuntimeError, TimeoutError, OSError) as exc:
        notes.append(f"LiteLLM skipped: it did not start ({exc}); see {tmp / 'litellm.log'}")
        return None


async def run(args: argparse.Namespace, tmp: Path) -> dict:
    plan = QUICK_PLAN if args.quick else DEFAULT_PLAN
    notes = [
        load_note("before the run"),
        "client and servers share this machine's cores: the load generator (this process, raw asyncio "
        "HTTP/1.1) takes CPU from the server it measures, equally for every column",
        "direct = our IPC client → simulator child in this process, no HTTP; floor = bare Tornado with canned "
        "replies; litellm = LiteLLM proxy → floor server (an OpenAI backend that costs nothing)",
        f"lingma-proxy: one simulator instance, sessions.reuse {'on' if args.reuse else 'off'}, log_level warning",
    ]
    results: dict = {}
    with contextlib.ExitStack() as running:
        floor = start_floor(tmp)
        running.callback(floor.stop)
        log("floor server:")
        results["floor"] = await measure_target(floor, plan)
        log("direct upstream:")
        results["direct"] = await measure_direct(tmp / "direct", plan)
        log("lingma-proxy:")
        proxy, _ = start_lingma_proxy(tmp / "proxy", {"sessions": {"reuse": args.reuse}})
        running.callback(proxy.stop)
        results["lingma-proxy"] = await measure_target(proxy, plan)
        litellm = None
        if args.skip_litellm:
            notes.append("LiteLLM skipped: --skip-litellm")
        else:
            log("litellm:")
            litellm = start_litellm_target(tmp, floor, notes)
            if litellm is not None:
                running.callback(litellm.stop)
                results["litellm"] = await measure_target(litellm, plan)
                notes.append(f"LiteLLM version: {LITELLM_SPEC}, one worker")
        log(f"alternating rounds ({plan.rounds}): floor, lingma-proxy{', LiteLLM' if litellm else ''} ...")
        results["rounds"] = await alternating_rounds(floor, proxy, litellm, plan)
    notes.insert(1, load_note("after the run"))
    return {"results": results, "notes": notes, "plan": plan.__dict__}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests per workload (about a minute)")
    parser.add_argument("--skip-litellm", action="store_true", help="do not install or run the LiteLLM column")
    parser.add_argument("--reuse", action="store_true", help="run the proxy with sessions.reuse on (default off)")
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lingma-bench-") as tmp:
        outcome = asyncio.run(run(args, Path(tmp)))
    when = datetime.datetime.now().isoformat(timespec="seconds")
    print(f"lingma-proxy bench, {when}, {machine_line()}, {'quick' if args.quick else 'full'} run "
          f"in {time.monotonic() - started:.0f} s\n")
    print(table(outcome["results"], outcome["notes"]))
    if args.json:
        document = {
            "when": when,
            "machine": machine_line(),
            **outcome,
            "checks": [check.__dict__ for check in checks(outcome["results"])],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(ujson.dumps(document, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
