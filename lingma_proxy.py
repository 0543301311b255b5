#!/usr/bin/env python3
"""lingma-proxy: OpenAI- and Anthropic-compatible APIs for your Tongyi Lingma account.

    python lingma_proxy.py [--config config.yaml]
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from lingma_proxy.config import ConfigError, load_config


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="lingma_proxy.py", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="config file (default: config.yaml next to this script)")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve"], help="what to run (default: serve)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        cfg = load_config(args.config)
    except ConfigError as err:
        print(f"lingma-proxy: {err}", file=sys.stderr)
        return 2
    from lingma_proxy.app import serve

    return asyncio.run(serve(cfg))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
