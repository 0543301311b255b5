#!/usr/bin/env python3
"""lingma-proxy: OpenAI- and Anthropic-compatible APIs for your Tongyi Lingma account.

    python lingma_proxy.py [--config config.yaml]
    python lingma_proxy.py login [--account NAME] [--show-browser]
    python lingma_proxy.py export-session [--account NAME] > bundle.txt
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from lingma_proxy.config import ConfigError, load_config


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="lingma_proxy.py", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="config file (default: config.yaml next to this script)")
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=["serve", "login", "export-session"],
        help="what to run (default: serve); login and export-session start their own Lingma, so stop the proxy first",
    )
    # For login and export-session only:
    parser.add_argument("--account", help="the account to log in or export (default: the only one)")
    parser.add_argument(
        "--show-browser", action="store_true", help="login: open a visible browser and wait for you to log in there"
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        cfg = load_config(args.config)
    except ConfigError as err:
        print(f"lingma-proxy: {err}", file=sys.stderr)
        return 2
    if args.command == "login":
        from lingma_proxy.login.cli import run_login

        return asyncio.run(run_login(cfg, args.account, args.show_browser))
    if args.command == "export-session":
        from lingma_proxy.login.cli import run_export

        return asyncio.run(run_export(cfg, args.account))
    from lingma_proxy.app import serve

    return asyncio.run(serve(cfg))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
