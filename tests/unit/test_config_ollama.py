"""auth.ollama: who may use the Ollama routes (keys by default, open on request)."""

from __future__ import annotations

import pytest

from lingma_proxy.config import load_config
from tests.unit.test_config import config_error, write


def test_the_default_asks_for_the_api_keys_like_every_other_route(tmp_path):
    assert load_config(write(tmp_path, ""), {}).auth.ollama == "keys"


@pytest.mark.parametrize("value", ["open", "keys"])
def test_open_and_keys_are_read_from_the_file_and_the_environment(tmp_path, value):
    assert load_config(write(tmp_path, f"auth: {{ollama: {value}}}\n"), {}).auth.ollama == value
    assert load_config(write(tmp_path, ""), {"LINGMA_PROXY_AUTH_OLLAMA": value}).auth.ollama == value


def test_any_other_value_is_one_line_naming_the_key(tmp_path):
    path = write(tmp_path, "auth:\n  ollama: never\n")
    assert config_error(path).startswith(f"{path}: auth.ollama: must be one of open, keys, got 'never'")
