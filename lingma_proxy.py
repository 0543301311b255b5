#!/usr/bin/env python3
"""lingma-proxy: OpenAI- and Anthropic-compatible APIs for your Tongyi Lingma account.

    python lingma_proxy.py [--config FILE] [COMMAND] [OPTIONS]   (--config may also follow COMMAND)

    serve                          serve the APIs (the default when no command is given)
    login [--account NAME] [--show-browser]
                                   log an account's Lingma instances in (stop the proxy first)
    export-session [--account NAME] [--output FILE]
                                   write an account's session bundle (stop the proxy first)
    check [--account NAME] [--recheck-reuse]
                                   start one Lingma as serve would and report whether it can serve
                                   (alias: doctor; exit 0 OK, 1 FAIL, 2 config error)
    models [--account NAME] [--json]
                                   list the model ids requests accept, as /v1/models does
    config [--print-defaults]      print the effective config (secrets redacted), or the built-in defaults
    probe [--binary PATH|simulator | --attach auto|qodercn|lingma|URL]
                                   probe a Lingma's protocol and report what it supports
    usage [--since 7d] [--by day|model|client|account] [--json|--csv]
                                   what was asked and spent, from the usage ledger

`python lingma_proxy.py COMMAND --help` describes a command and its options.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from lingma_proxy.child_env import withheld_variables
from lingma_proxy.config import Config, ConfigError, load_config
from lingma_proxy.filemodes import PRIVATE_UMASK

_ACCOUNT_HELP = "the account to use (default: %s)"


def build_parser() -> argparse.ArgumentParser:
    # --config on the main parser and on every subparser; SUPPRESS keeps a subparser that was not
    # given it from overwriting a value given before the command.
    config_option = argparse.ArgumentParser(add_help=False)
    config_option.add_argument(
        "--config", metavar="FILE", default=argparse.SUPPRESS,
        help="config file (default: config.yaml next to lingma_proxy.py)",
    )  # fmt: skip
    parser = argparse.ArgumentParser(
        prog="lingma_proxy.py",
        description=__doc__.split("\n", 1)[0],
        epilog=__doc__.strip().rsplit("\n\n", 1)[1],
        parents=[config_option],
    )
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")

    def command(name: str, summary: str, details: str = "", aliases: tuple[str, ...] = ()) -> argparse.ArgumentParser:
        return commands.add_parser(
            name, help=summary, description=f"{summary}. {details}".strip(), aliases=aliases, parents=[config_option]
        )

    command("serve", "serve the OpenAI- and Anthropic-compatible APIs (the default)")
    login = command(
        "login", "log an account's Lingma instances in (stop the proxy first)",
        "It runs in the configured work dir, where the login must land, so no proxy may be running on it.",
    )  # fmt: skip
    login.add_argument("--account", metavar="NAME", help=_ACCOUNT_HELP % "the only one")
    login.add_argument("--show-browser", action="store_true", help="open a visible browser and wait for you to log in")
    export = command(
        "export-session", "write an account's base64 session bundle (stop the proxy first)",
        "The bundle is a login: --output creates the file readable by you only.",
    )  # fmt: skip
    export.add_argument("--account", metavar="NAME", help=_ACCOUNT_HELP % "the only one")
    export.add_argument("--output", metavar="FILE", help="write the bundle to FILE, mode 0600 (default: stdout)")
    check = command(
        "check", "start one Lingma as serve would and report whether it can serve",
        "It runs in a temporary copy of the work dir, so a running proxy is not disturbed, and reports the "
        "upstream, dialect, version, login and models, then a verdict. Exit status: 0 OK, 1 FAIL, 2 config error.",
        aliases=("doctor",),
    )  # fmt: skip
    check.add_argument("--account", metavar="NAME", help=_ACCOUNT_HELP % "the first")
    check.add_argument(
        "--recheck-reuse", action="store_true",
        help="run the session-reuse canary again (two tiny requests) and keep its verdict for serve",
    )  # fmt: skip
    check.set_defaults(command="check")  # also when invoked as doctor
    models = command(
        "models", "list the model ids requests accept, as /v1/models does",
        "It starts one Lingma in a temporary copy of the work dir, as check does.",
    )  # fmt: skip
    models.add_argument("--account", metavar="NAME", help=_ACCOUNT_HELP % "the first")
    models.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    config = command("config", "print the effective config as YAML, every secret redacted")
    config.add_argument(
        "--print-defaults", action="store_true", help="print the built-in defaults instead (a valid config file)"
    )
    probe = command(
        "probe", "probe a Lingma's protocol step by step and report what it supports",
        "Without --binary or --attach it probes the configured upstream.",
    )  # fmt: skip
    target = probe.add_mutually_exclusive_group()
    target.add_argument("--binary", metavar="PATH|simulator", help="the binary to start (default: as configured)")
    target.add_argument(
        "--attach", metavar="WHERE",
        help="a running runtime instead of starting one: auto, qodercn, lingma, a ws:// URL or unix:///path",
    )
    usage = command(
        "usage", "print requests, errors and tokens from the usage ledger, grouped",
        "It reads the ledger (usage.db_path) read-only, so the proxy may be running.",
    )  # fmt: skip
    usage.add_argument("--since", metavar="SPAN", default="7d", help="how far back: 30m, 48h, 7d, 2w (default: 7d)")
    usage.add_argument(
        "--by", choices=("day", "model", "client", "account"), default="day", help="group by (default: day)"
    )
    output = usage.add_mutually_exclusive_group()
    output.add_argument("--json", dest="output", action="store_const", const="json", help="print a JSON list of rows")
    output.add_argument("--csv", dest="output", action="store_const", const="csv", help="print CSV with a header line")
    usage.set_defaults(output="table")
    return parser


def main(argv: list[str]) -> int:
    os.umask(PRIVATE_UMASK)  # first: every file and child of this process starts out private
    args = build_parser().parse_args(argv)
    command = args.command or "serve"
    if command == "config" and args.print_defaults:
        from lingma_proxy.cli.config_dump import defaults_yaml

        print(defaults_yaml(), end="")  # needs no config, so a broken one cannot stop it
        return 0
    try:
        cfg = load_config(getattr(args, "config", None))
    except ConfigError as err:
        print(f"lingma-proxy: {err}", file=sys.stderr)
        return 2
    for name in withheld_variables(os.environ, cfg):
        del os.environ[name]  # consumed by load_config; no child may inherit them (lingma_proxy/child_env.py)
    return dispatch(command, args, cfg)


def dispatch(command: str, args: argparse.Namespace, cfg: Config) -> int:
    """Run one command; imports are lazy so `config` and `--help` don't load the server."""
    if command == "login":
        from lingma_proxy.cli.login import run_login

        return asyncio.run(run_login(cfg, args.account, args.show_browser))
    if command == "export-session":
        from lingma_proxy.cli.login import run_export

        return asyncio.run(run_export(cfg, args.account, args.output))
    if command == "check":
        from lingma_proxy.cli.check import run_check

        return asyncio.run(run_check(cfg, args.account, args.recheck_reuse))
    if command == "models":
        from lingma_proxy.cli.models import run_models

        return asyncio.run(run_models(cfg, args.account, args.json))
    if command == "config":
        from lingma_proxy.cli.config_dump import effective_yaml

        print(effective_yaml(cfg), end="")
        return 0
    if command == "probe":
        from lingma_proxy.probe import run_probe

        return asyncio.run(run_probe(cfg, args.binary, args.attach))
    if command == "usage":
        from lingma_proxy.cli.usage import run_usage

        return run_usage(cfg, args.since, args.by, args.output)
    from lingma_proxy.app import serve

    return asyncio.run(serve(cfg))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
