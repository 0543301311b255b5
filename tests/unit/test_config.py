"""load_config(): defaults, the shipped config.yaml, env overrides, and one-line errors for bad input."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lingma_proxy.config import (
    AccountConfig,
    Config,
    ConfigError,
    effective_config,
    load_config,
    secret_values,
)

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def config_error(path: str | None, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ or {})
    message = str(caught.value)
    assert "\n" not in message, message
    return message


def expected_defaults(source: str) -> Config:
    cfg = Config(source=source)
    cfg.lingma.work_dir = os.path.expanduser(cfg.lingma.work_dir)
    return cfg


# --- defaults and the shipped file


def test_empty_file_gives_all_defaults(tmp_path):
    path = write(tmp_path, "")
    assert load_config(path, {}) == expected_defaults(path)


def test_file_of_only_comments_and_empty_sections_gives_defaults(tmp_path):
    path = write(tmp_path, "# nothing\nserver:\nauth:\naccounts:\n")
    assert load_config(path, {}) == expected_defaults(path)


def test_shipped_config_yaml_equals_the_defaults():
    path = str(REPO / "config.yaml")
    assert load_config(path, {}) == expected_defaults(path)


def test_no_path_uses_config_yaml_next_to_the_entry_point():
    cfg = load_config(None, {})
    assert cfg.source == str(REPO / "config.yaml")
    assert (REPO / "lingma_proxy.py").is_file()


def test_missing_explicit_file_is_an_error(tmp_path):
    missing = str(tmp_path / "nope.yaml")
    assert config_error(missing) == f"{missing}: config file not found"


def test_work_dir_expands_home_and_is_relative_to_the_config_file(tmp_path):
    path = write(tmp_path, "lingma:\n  work_dir: state/instances\n")
    assert load_config(path, {}).lingma.work_dir == str(tmp_path / "state" / "instances")
    path = write(tmp_path, "lingma:\n  work_dir: ~/x\n")
    assert load_config(path, {}).lingma.work_dir == os.path.expanduser("~/x")


def test_values_of_every_kind_are_read_from_the_file(tmp_path):
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text("rules: []\n")
    path = write(
        tmp_path,
        """
        server: {port: 9000, log_format: json}
        auth: {api_keys: [k1, k2]}
        limits: {queue_timeout_sec: 3}
        lingma:
          attach: off
          model_aliases: {gpt-4o: q35model}
          context_windows: {q35model: 131072}
          simulator: {scenario: scenario.yaml, dialect: acp}
        login:
          selectors: {submit: "#go"}
        tools: {allowlist: [read_file]}
        accounts:
          - name: work
            username: me@example.com
        """,
    )
    cfg = load_config(path, {})
    assert cfg.server.port == 9000 and cfg.server.log_format == "json"
    assert cfg.auth.api_keys == ["k1", "k2"]
    assert cfg.limits.queue_timeout_sec == 3.0 and isinstance(cfg.limits.queue_timeout_sec, float)
    assert cfg.lingma.attach == "off"  # a word, not YAML 1.1's false
    assert cfg.lingma.model_aliases == {"gpt-4o": "q35model"}
    assert cfg.lingma.context_windows == {"q35model": 131072}
    assert cfg.lingma.simulator.scenario == str(scenario)
    assert cfg.lingma.simulator.dialect == "acp"
    assert cfg.login.selectors["submit"] == "#go"
    assert cfg.login.selectors["username"] == "input[name=username]"  # merged over the defaults
    assert cfg.tools.allowlist == ["read_file"]
    assert cfg.accounts == [AccountConfig(name="work", username="me@example.com")]


# --- environment overrides


def test_env_overrides_scalars_by_type(tmp_path):
    path = write(tmp_path, "server: {port: 9000}\n")
    cfg = load_config(
        path,
        {
            "LINGMA_PROXY_SERVER_PORT": "8081",
            "LINGMA_PROXY_AUTH_METRICS_PUBLIC": "yes",
            "LINGMA_PROXY_SESSIONS_REUSE": "0",
            "LINGMA_PROXY_LIMITS_QUEUE_TIMEOUT_SEC": "2.5",
            "LINGMA_PROXY_LINGMA_BINARY": "simulator",
        },
    )
    assert cfg.server.port == 8081
    assert cfg.auth.metrics_public is True
    assert cfg.sessions.reuse == "off"  # the old boolean words still work
    assert cfg.limits.queue_timeout_sec == 2.5
    assert cfg.lingma.binary == "simulator"


def test_env_overrides_nested_list_and_map_keys():
    cfg = load_config(
        None,
        {
            "LINGMA_PROXY_LINGMA_SIMULATOR_START_LOGGED_OUT": "true",
            "LINGMA_PROXY_AUTH_API_KEYS": '["k1","k2"]',
            "LINGMA_PROXY_LINGMA_MODEL_ALIASES": "{gpt-4o: q35model}",
        },
    )
    assert cfg.lingma.simulator.start_logged_out is True
    assert cfg.auth.api_keys == ["k1", "k2"]
    assert cfg.lingma.model_aliases == {"gpt-4o": "q35model"}


def test_env_accounts_list_with_password_env():
    accounts = '[{"name": "a", "password_env": "PW_A"}, {"name": "b", "session_bundle_b64": "H4sI"}]'
    cfg = load_config(None, {"LINGMA_PROXY_ACCOUNTS": accounts, "PW_A": "s3cret"})
    assert [a.name for a in cfg.accounts] == ["a", "b"]
    assert cfg.accounts[0].password == "s3cret"
    assert cfg.accounts[1].session_bundle_b64 == "H4sI"


def test_env_error_names_the_variable():
    message = config_error(None, {"LINGMA_PROXY_SERVER_PORT": "abc"})
    assert message == "LINGMA_PROXY_SERVER_PORT: server.port: must be an integer between 0 and 65535, got 'abc'"


def test_env_bool_must_be_a_boolean_word():
    message = config_error(None, {"LINGMA_PROXY_LOGIN_HEADLESS": "maybe"})
    assert message.startswith("LINGMA_PROXY_LOGIN_HEADLESS: login.headless: must be true or false")


def test_env_unknown_key_in_accounts_names_the_variable():
    message = config_error(None, {"LINGMA_PROXY_ACCOUNTS": '[{"name": "a", "pasword": "x"}]'})
    assert message.startswith("LINGMA_PROXY_ACCOUNTS: accounts[0].pasword: unknown key")


def test_env_list_that_is_not_yaml_names_the_variable():
    message = config_error(None, {"LINGMA_PROXY_AUTH_API_KEYS": '["k1",'})
    assert message.startswith("LINGMA_PROXY_AUTH_API_KEYS: auth.api_keys: not valid YAML/JSON")


def test_env_typo_in_a_section_variable_is_an_error():
    message = config_error(None, {"LINGMA_PROXY_SERVER_PROT": "1"})
    assert message == "LINGMA_PROXY_SERVER_PROT: unknown setting (did you mean LINGMA_PROXY_SERVER_PORT?)"


# --- one-line errors for bad files


@pytest.mark.parametrize(
    "text, expected",
    [
        ("servr: {}\n", ": servr: unknown key (did you mean server?)"),
        ("server:\n  prot: 1\n", ": server.prot: unknown key (did you mean port?)"),
        ("lingma:\n  simulator:\n    scenery: x\n", ": lingma.simulator.scenery: unknown key"),
        ("accounts:\n  - name: a\n    pasword: x\n", ": accounts[0].pasword: unknown key"),
        ("server:\n  port: abc\n", ": server.port: must be an integer between 0 and 65535, got 'abc'"),
        ("server:\n  port: 70000\n", ": server.port: must be an integer between 0 and 65535, got 70000"),
        ("server:\n  port: true\n", ": server.port: must be an integer between 0 and 65535, got true"),
        ("server:\n  log_format: xml\n", ": server.log_format: must be one of text, json, got 'xml'"),
        ("auth:\n  metrics_public: 1\n", ": auth.metrics_public: must be true or false, got 1"),
        ("auth:\n  api_keys: k1\n", ": auth.api_keys: must be a list"),
        ("limits:\n  queue_timeout_sec: -1\n", ": limits.queue_timeout_sec: must be a number >= 0, got -1.0"),
        ("lingma:\n  rpc_timeout: 0\n", ": lingma.rpc_timeout: must be a number > 0, got 0.0"),
        ("lingma:\n  attach: maybe\n", ": lingma.attach: must be off, auto, qodercn, lingma, a ws:// URL or unix:///path, got 'maybe'"),
        ("lingma:\n  dialect: modern\n", ": lingma.dialect: must be one of auto, classic, acp, got 'modern'"),
        ("lingma:\n  instances_per_account: 17\n", ": lingma.instances_per_account: must be an integer between 1 and 16"),
        ("lingma:\n  context_windows: {q: -5}\n", ": lingma.context_windows.q: must be an integer >= 1, got -5"),
        ("lingma:\n  simulator: 3\n", ": lingma.simulator: must be a mapping, got 3"),
        ("lingma:\n  binary: ./no-such-binary\n", ": lingma.binary: no such file"),
        ("tools:\n  emulation: on\n", ": tools.emulation: must be one of auto, off, got 'on'"),
        ("accounts:\n  - username: x\n", ": accounts[0].name: is required"),
        ("accounts:\n  - name: ../up\n", ": accounts[0].name: must be a name of letters"),
        ("accounts:\n  - name: a\n  - name: a\n", ": accounts[1].name: duplicate account name 'a'"),
        ("accounts: {name: a}\n", ": accounts: must be a list, got a mapping"),
        ("- server\n", ": the file must hold a mapping of sections, got a list"),
        ("server:\n  port: [1\n", ": line 3: invalid YAML"),
        ("server:\n port: 1\n  host: x\n", ": line 3: invalid YAML: mapping values are not allowed here"),
        ("server:\n  port: 1\n  port: 2\n", ": line 3: invalid YAML: duplicate key 'port'"),
    ],
)
def test_bad_value_is_one_line_naming_the_file_and_key(tmp_path, text, expected):
    path = write(tmp_path, text)
    message = config_error(path)
    assert message.startswith(path + expected), message


def test_non_loopback_host_without_keys_refuses_to_load(tmp_path):
    path = write(tmp_path, "server:\n  host: 0.0.0.0\n")
    message = config_error(path)
    assert message.startswith(f"{path}: server.host: '0.0.0.0' is not a loopback address and auth.api_keys is empty")
    assert "auth.allow_open" in message


@pytest.mark.parametrize(
    "auth",
    [
        "auth: {api_keys: [k], admin_token: t}",
        "auth: {allow_open: true, admin_token: t}",
        "auth: {api_keys: [k], allow_without_admin_token: true}",
    ],
)
def test_non_loopback_host_is_allowed_with_keys_or_explicit_open_and_an_admin_token(tmp_path, auth):
    path = write(tmp_path, f"server: {{host: 0.0.0.0}}\n{auth}\n")
    assert load_config(path, {}).server.host == "0.0.0.0"


def test_non_loopback_host_without_an_admin_token_refuses_to_load(tmp_path):
    """Beyond loopback, every key holder would otherwise be an admin of the account's login."""
    path = write(tmp_path, "server: {host: 0.0.0.0}\nauth: {api_keys: [k]}\n")
    message = config_error(path)
    assert "auth.admin_token is empty" in message and "auth.allow_without_admin_token" in message


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1"])
def test_loopback_hosts_need_no_keys(tmp_path, host):
    path = write(tmp_path, f"server: {{host: '{host}'}}\n")
    assert load_config(path, {}).server.host == host


def test_missing_password_env_names_account_and_variable(tmp_path):
    path = write(tmp_path, "accounts:\n  - name: work\n    password_env: WORK_PW\n")
    message = config_error(path, {"OTHER": "x"})
    assert message == (
        f"{path}: accounts[0].password_env: environment variable WORK_PW (password of account 'work') is not set"
    )


def test_secret_values_are_never_quoted_in_errors(tmp_path):
    path = write(tmp_path, "auth:\n  api_keys: [12345678]\n  admin_token: 987654321\n")
    message = config_error(path)
    assert message == f"{path}: auth.api_keys[0]: must be a non-empty string"
    assert "12345678" not in message
    path = write(tmp_path, "accounts:\n  - {name: a, password: 55555555}\n")
    assert "55555555" not in config_error(path)


def test_yaml_error_does_not_quote_the_offending_line(tmp_path):
    path = write(tmp_path, "accounts:\n  - name: a\n    password: hunter2: oops\n")
    message = config_error(path)
    assert "line 3" in message and "hunter2" not in message


# --- the entry point's contract: exit 2 and one stderr line, no traceback


ENTRY = """
import sys
from lingma_proxy.config import ConfigError, load_config
try:
    load_config(sys.argv[1])
except ConfigError as e:
    print(e, file=sys.stderr)
    sys.exit(2)
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("text", ["server:\n  port: abc\n", "server: [\n", "bogus: 1\n"])
def test_entry_point_exits_2_with_one_stderr_line(tmp_path, text):
    path = write(tmp_path, text)
    done = subprocess.run(
        [sys.executable, "-c", ENTRY, path], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(path), done.stderr
    assert "Traceback" not in done.stderr


# --- effective_config and secret_values


def secret_config(tmp_path: Path) -> Config:
    path = write(
        tmp_path,
        """
        auth: {api_keys: [key-one, key-two], admin_token: adm-tok, metrics_token: ""}
        lingma: {simulator: {password: sim-pw}}
        accounts:
          - {name: a, username: user-a, password_env: PW_A, session_bundle_b64: bundle-data}
        """,
    )
    return load_config(path, {"PW_A": "env-password"})


def test_effective_config_hides_every_secret(tmp_path):
    plain = effective_config(secret_config(tmp_path))
    text = repr(plain)
    for secret in ["key-one", "key-two", "adm-tok", "sim-pw", "env-password", "bundle-data"]:
        assert secret not in text
    assert plain["auth"]["api_keys"] == ["***", "***"]
    assert plain["auth"]["metrics_token"] == ""  # an empty secret stays empty
    assert plain["accounts"][0]["password"] == "***"
    assert plain["accounts"][0]["username"] == "user-a"
    assert plain["accounts"][0]["password_env"] == "PW_A"  # a name, not a secret
    assert plain["server"]["port"] == 8787


def test_secret_values_lists_every_non_empty_secret(tmp_path):
    assert sorted(secret_values(secret_config(tmp_path))) == sorted(
        ["key-one", "key-two", "adm-tok", "sim-pw", "env-password", "bundle-data"]
    )


def test_the_public_default_simulator_password_is_not_a_secret_value():
    assert secret_values(load_config(None, {})) == []


@pytest.mark.parametrize(("written", "meant"), [("auto", "auto"), ("on", "on"), ("off", "off"), ("true", "on"), ("false", "off")])
def test_session_reuse_is_auto_on_or_off_and_the_old_booleans_still_mean_on_and_off(tmp_path, written, meant):
    assert load_config(None, {}).sessions.reuse == "auto"
    assert load_config(write(tmp_path, f"sessions: {{reuse: {written}}}\n"), {}).sessions.reuse == meant


def test_session_reuse_refuses_other_words(tmp_path):
    with pytest.raises(ConfigError, match="sessions.reuse: must be one of auto, on, off"):
        load_config(write(tmp_path, "sessions: {reuse: sometimes}\n"), {})
