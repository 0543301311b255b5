"""The startup summary block: built from real config, upstream and instance objects, no server."""

from __future__ import annotations

from pathlib import Path

from lingma_proxy.config import AccountConfig, AuthConfig, Config, ServerConfig
from lingma_proxy.startup_summary import auth_posture_lines, auth_warnings, local_url, summary_lines, upstream_label
from lingma_proxy.upstream.pool import Instance, Upstream

SIMULATOR = Upstream(kind="simulator", command=["python", "-m", "lingma_proxy.simulator"])


def connected(inst: Instance, dialect: str) -> Instance:
    """An instance that has settled on a dialect, as the pool records it after the first connection."""
    inst.dialect = dialect
    return inst


def test_upstream_labels_name_the_binary_the_simulator_or_the_attach_url():
    assert upstream_label(SIMULATOR) == "simulator"
    assert upstream_label(Upstream(kind="lingma", command=["/opt/lingma/Lingma"])) == "binary /opt/lingma/Lingma"
    attached = Upstream(kind="lingma", command=[], attach="ws://127.0.0.1:36510/")
    assert upstream_label(attached) == "attached ws://127.0.0.1:36510/"


def test_the_status_page_url_reaches_a_wildcard_listener_through_loopback():
    assert local_url("0.0.0.0", 8787) == "http://127.0.0.1:8787"
    assert local_url("::", 8787) == "http://127.0.0.1:8787"
    assert local_url("::1", 8787) == "http://[::1]:8787"
    assert local_url("localhost", 9000) == "http://localhost:9000"


def test_the_block_names_address_status_page_upstream_dialects_and_every_instance():
    alice = AccountConfig(name="alice")
    cfg = Config(server=ServerConfig(host="0.0.0.0", port=0), accounts=[alice, AccountConfig(name="bob")])
    ready = connected(Instance("alice-0", Path("/w/alice/0"), alice), "acp")
    ready.state, ready.logged_in, ready.user_name = "ready", True, "Alice Li"
    out = connected(Instance("bob-0", Path("/w/bob/0"), cfg.accounts[1]), "classic")
    out.state = "logged_out"
    out.family, out.runtime_version, out.transport = "qodercn", "0.4.3", "unix"
    broken = Instance("bob-1", Path("/w/bob/1"), cfg.accounts[1])
    broken.state, broken.last_error = "failed", "start failed: no socket after 20s"

    lines = summary_lines(cfg, 41234, SIMULATOR, [ready, out, broken])
    text = "\n".join(lines)
    assert lines[0] == "lingma-proxy is up"
    assert "  listening:   http://0.0.0.0:41234" in lines
    assert "  status page: http://127.0.0.1:41234/" in lines
    assert "  upstream:    simulator" in lines
    assert "  dialect:     acp, classic" in lines
    assert "  accounts:    alice, bob" in lines
    assert "    alice-0 (account alice): ready, logged in as Alice Li" in lines
    assert "    bob-0 (account bob): logged_out, not logged in (qodercn 0.4.3 over unix)" in lines
    assert "    bob-1 (account bob): failed, start failed: no socket after 20s" in lines
    assert text.count("auth posture:") == 1
    assert lines[-len(auth_posture_lines(cfg)):] == [f"  {line}" for line in auth_posture_lines(cfg)]


def test_no_connected_instance_means_no_dialect_yet():
    cfg = Config()
    lines = summary_lines(cfg, 8787, SIMULATOR, [Instance("default-0", Path("/w/default/0"), None)])
    assert "  dialect:     not settled (no instance connected)" in lines
    assert "    default-0: stopped, not logged in" in lines
    assert "  accounts:    none configured (one anonymous instance)" in lines


def test_auth_posture_open_and_its_loud_warning():
    cfg = Config()
    posture = auth_posture_lines(cfg)
    assert posture[0] == "auth posture:"
    assert posture[1].split()[:4] == ["/v1/*", "OPEN:", "no", "auth.api_keys"]
    assert posture[2].split() == ["/internal/*", "OPEN"] and posture[3].split() == ["/metrics", "OPEN"]
    assert auth_warnings(cfg, 41234) == [
        "auth.api_keys is empty: anyone who can reach 127.0.0.1:41234 can use this Lingma account"
    ]


def test_auth_posture_with_keys_tokens_and_public_metrics():
    full = Config(auth=AuthConfig(api_keys=["k1", "k2"], admin_token="a", metrics_token="m"))
    assert [line.split(None, 1)[1] for line in auth_posture_lines(full)[1:4]] == [
        "2 API key(s) (Authorization or x-api-key header)",
        "admin token",
        "metrics token",
    ]
    assert auth_warnings(full, 8787) == []
    fallback = Config(auth=AuthConfig(api_keys=["k1"], metrics_public=True))
    assert auth_posture_lines(fallback)[2].split(None, 1)[1] == "the API keys (no admin_token set)"
    assert auth_posture_lines(fallback)[3].split(None, 1)[1] == "public (metrics_public)"
    assert auth_warnings(fallback, 8787) == [
        "auth.admin_token is not set: /internal/* accepts the API keys, "
        "except session export and the request ring, which stay closed",
        "auth.metrics_public is on: /metrics is readable without a token",
    ]
