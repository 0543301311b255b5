"""`python lingma_proxy.py models [--json]`: the ids a request's `model` accepts, as /v1/models lists them."""

from __future__ import annotations

import dataclasses
import sys

import ujson

from ..config import Config
from ..model import ModelInfo
from .inspection import InspectionFailed, inspect_account
from .instance import CliError

_COLUMNS = ("id", "name", "reasoning", "vision", "context")


async def run_models(cfg: Config, account_name: str | None, as_json: bool) -> int:
    try:
        found = await inspect_account(cfg, account_name, lambda line: None)
    except CliError as err:
        print(f"lingma-proxy models: {err}", file=sys.stderr)
        return 2
    except InspectionFailed as failure:
        print(f"lingma-proxy models: {failure}", file=sys.stderr)
        return 1
    if as_json:
        print(ujson.dumps([dataclasses.asdict(model) for model in found.models], ensure_ascii=False, indent=2))
    else:
        print("\n".join(model_table(found.models, cfg.lingma.model_aliases)))
    return 0


def model_table(models: list[ModelInfo], aliases: dict[str, str]) -> list[str]:
    """Aligned columns, then the configured aliases, which `model` accepts too."""
    rows = [_COLUMNS] + [
        (m.id, m.display_name, _yes(m.is_reasoning), _yes(m.is_vision), f"{m.context_window:,}") for m in models
    ]
    widths = [max(len(row[col]) for row in rows) for col in range(len(_COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip() for row in rows]
    lines += [f"alias {alias} -> {target}" for alias, target in aliases.items()]
    return lines


def _yes(flag: bool) -> str:
    return "yes" if flag else "-"
