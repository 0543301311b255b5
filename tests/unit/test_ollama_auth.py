"""auth.ollama: who may use the Ollama routes (keys by default, open on request), and how startup says so."""

from __future__ import annotations

import pytest

from lingma_proxy.config import load_config
from lingma_proxy.startup_summary import auth_posture_lines, auth_warnings
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


def test_the_startup_posture_says_who_may_use_the_ollama_api(tmp_path):
    keyed = load_config(write(tmp_path, "auth: {api_keys: [k]}\n"), {})
    opened = load_config(write(tmp_path, "auth: {api_keys: [k], ollama: open}\n"), {})
    assert [line for line in auth_posture_lines(keyed) if "/api/*" in line][0].split()[1:4] == ["the", "API", "keys"]
    assert [line for line in auth_posture_lines(opened) if "/api/*" in line][0].split()[1] == "OPEN"
    assert not any("auth.ollama" in warning for warning in auth_warnings(keyed, 8787))
    assert any("auth.ollama is open" in warning for warning in auth_warnings(opened, 8787))
