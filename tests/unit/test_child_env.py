"""What children may not inherit (lingma_proxy/child_env.py)."""

from __future__ import annotations

from lingma_proxy.child_env import withheld_variables
from lingma_proxy.config import AccountConfig, Config


def test_proxy_settings_account_passwords_and_the_simulator_password_are_withheld():
    cfg = Config(accounts=[AccountConfig("work", password_env="WORK_PW"), AccountConfig("home", password="inline")])
    environ = {
        "PATH": "/usr/bin",
        "HOME": "/nonexistent",
        "LINGMA_PROXY_AUTH_API_KEYS": '["sk-1"]',
        "LINGMA_PROXY_SERVER_PORT": "8787",
        "WORK_PW": "s3cret",
        "OTHER_PW": "not an account's",
        "LINGMA_SIM_PASSWORD": "sim-secret",
        "LINGMA_SIM_SCENARIO": "scenario.yaml",  # a simulator knob, not a secret
        "LINGMA_BINARY": "/opt/lingma/Lingma",
    }
    assert withheld_variables(environ, cfg) == [
        "LINGMA_PROXY_AUTH_API_KEYS",
        "LINGMA_PROXY_SERVER_PORT",
        "LINGMA_SIM_PASSWORD",
        "WORK_PW",
    ]


def test_nothing_is_withheld_from_a_plain_environment():
    assert withheld_variables({"PATH": "/usr/bin", "LANG": "C.UTF-8"}, Config()) == []
