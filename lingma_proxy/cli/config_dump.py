"""`python lingma_proxy.py config`: the effective config, secrets redacted; `--print-defaults`: the built-in one."""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml

from ..config import Config, effective_config


def effective_yaml(cfg: Config) -> str:
    """The config as loaded (file plus LINGMA_PROXY_* overrides), as /internal/effective-config shows it."""
    data = effective_config(cfg)
    source = data.pop("source")  # where it came from, not a key the file may set
    header = f"# effective config from {source} and the LINGMA_PROXY_* environment; secrets shown as ***\n"
    return header + _dump(data)


def defaults_yaml() -> str:
    """The dataclass defaults in file order and shape, so load_config reads them back unchanged."""
    header = "# lingma-proxy built-in defaults (python lingma_proxy.py config --print-defaults)\n"
    return header + _dump(_keys(Config()))


def _keys(value: Any) -> Any:
    """Plain data for YAML, without the fields the loader sets itself (Config.source)."""
    if dataclasses.is_dataclass(value):
        keys = [f.name for f in dataclasses.fields(value) if not f.metadata.get("not_a_key")]
        return {name: _keys(getattr(value, name)) for name in keys}
    if isinstance(value, list):
        return [_keys(item) for item in value]
    if isinstance(value, dict):
        return {name: _keys(item) for name, item in value.items()}
    return value


def _dump(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)
