"""The usage ledger's parts: client labels and families, {key, name} API keys in the config, the writer
(batching, and a locked file that drops rows with one warning), retention, and the aggregates."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

import pytest

from lingma_proxy.config import ConfigError, effective_config, load_config, secret_values
from lingma_proxy.usage.clients import ANONYMOUS, ClientLabels, agent_family, fingerprint
from lingma_proxy.usage.ledger import Ledger, UsageRow, db_path, sweep
from lingma_proxy.usage.report import UsageQueryError, chart, parse_since, percentile, totals


def row(ts: float, client: str = "laptop", model: str = "qwen", first_token_ms: int | None = 50, **extra) -> UsageRow:
    fields = dict(
        ts=ts, api="openai_chat", route="/v1/chat/completions", client=client, agent="curl", model_asked=model,
        model_served=model, account="default", instance="default-0", status=200, error_type="", input_tokens=10,
        output_tokens=2, upstream_tokens=10, session_reused=False, first_token_ms=first_token_ms, total_ms=80,
        streamed=False,
    )  # fmt: skip
    return UsageRow(**{**fields, **extra})


# --- clients


def test_an_unnamed_key_is_labelled_by_a_stable_fingerprint_that_does_not_contain_it():
    key = "sk-usage-unit-0123456789abcdef"
    label = fingerprint(key)
    assert label == fingerprint(key) and label.startswith("key-") and len(label) == 12
    assert key not in label
    labels = ClientLabels([key, "sk-other-key"], ["", "laptop"])
    assert labels.label(key) == label
    assert labels.label("sk-other-key") == "laptop"
    assert labels.label(None) == ANONYMOUS
    assert ClientLabels(["k1"], []).label("k1") == fingerprint("k1")  # no names configured at all


@pytest.mark.parametrize(
    ("user_agent", "family"),
    [
        ("claude-cli/2.0.14 (external, cli)", "claude-cli"),
        ("codex_cli_rs/0.46.0 (Ubuntu 24.4.0; x86_64) xterm-256color", "codex"),
        ("QwenCode/0.0.14 (linux; x64)", "qwen-code"),
        ("aider/0.86.1", "aider"),
        ("opencode/0.15.0 ai-sdk/provider-utils/3.0.9", "opencode"),
        ("OpenAI/Python 1.109.1", "openai-python"),
        ("Anthropic/Python 0.69.0", "anthropic-python"),
        ("ollama-python/0.6.0 (x86_64 linux) Python/3.12.3", "ollama-python"),
        ("curl/8.5.0", "curl"),
        ("python-httpx/0.28.1", "httpx"),
        ("Mozilla/5.0 (X11; Linux x86_64) Chrome/141.0", "browser"),
        ("my-own-tool/1.0", "other"),
        ("", "unknown"),
    ],
)
def test_the_user_agent_family(user_agent, family):
    assert agent_family(user_agent) == family


# --- config: api_keys entries with names, and the usage section


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return str(path)


def test_api_keys_take_key_and_name_entries_beside_plain_keys(tmp_path):
    path = write(tmp_path, "auth:\n  api_keys:\n    - {key: sk-laptop-1, name: laptop}\n    - sk-plain-2\n")
    cfg = load_config(path, {})
    assert cfg.auth.api_keys == ["sk-laptop-1", "sk-plain-2"]
    assert cfg.auth.api_key_names == ["laptop", ""]
    assert sorted(secret_values(cfg)) == ["sk-laptop-1", "sk-plain-2"]  # the keys, never the names
    plain = effective_config(cfg)
    assert plain["auth"]["api_keys"] == ["***", "***"] and "sk-laptop-1" not in repr(plain)
    assert load_config(write(tmp_path, "auth: {api_keys: [k1, k2]}\n"), {}).auth.api_key_names == []


def test_api_keys_entries_from_the_environment(tmp_path):
    env = {"LINGMA_PROXY_AUTH_API_KEYS": '[{"key": "sk-env-1", "name": "ci"}]'}
    cfg = load_config(write(tmp_path, ""), env)
    assert (cfg.auth.api_keys, cfg.auth.api_key_names) == (["sk-env-1"], ["ci"])


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("{name: laptop}", "auth.api_keys[0].key: is required"),
        ("{key: sk-secret-77, nme: laptop}", "auth.api_keys[0]: unknown field 'nme'"),
        ("{key: sk-secret-77, name: ''}", "auth.api_keys[0].name: must be up to 64 letters"),
        ("{key: sk-secret-77, name: [a]}", "auth.api_keys[0].name: must be up to 64 letters, digits, spaces or . _ @ -, got a list"),
        ("{key: '', name: laptop}", "auth.api_keys[0]: must be a non-empty string"),
        ("{key: 12345, name: laptop}", "auth.api_keys[0]: must be a non-empty string"),
    ],
)
def test_a_bad_api_keys_entry_is_one_line_that_never_shows_the_key(tmp_path, entry, problem):
    path = write(tmp_path, f"auth:\n  api_keys:\n    - {entry}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    message = str(caught.value)
    assert message.startswith(f"{path}: {problem}"), message
    assert "\n" not in message and "sk-secret-77" not in message and "12345" not in message


def test_the_usage_section(tmp_path):
    cfg = load_config(write(tmp_path, "lingma: {work_dir: state/instances}\n"), {})
    assert cfg.usage.enabled and cfg.usage.retention_days == 90
    assert db_path(cfg) == tmp_path / "state" / "usage.db"  # beside the work dir: ~/.lingma-proxy by default
    cfg = load_config(write(tmp_path, "usage: {db_path: data/u.db, retention_days: 7}\n"), {})
    assert db_path(cfg) == tmp_path / "data" / "u.db" and cfg.usage.retention_days == 7
    with pytest.raises(ConfigError, match="usage.retention_days: must be an integer >= 1, got 0"):
        load_config(write(tmp_path, "usage: {retention_days: 0}\n"), {})


# --- the ledger


def test_rows_are_batched_by_the_writer_and_flushed_at_close(tmp_path):
    ledger = Ledger(tmp_path / "usage.db", retention_days=90, flush_sec=60)  # only flush() and close() write
    ledger.start()
    now = time.time()
    ledger.record(row(now - 5))
    ledger.record(row(now - 4, client="ci"))
    ledger.flush()
    ledger.record(row(now - 3))
    ledger.close()
    conn = sqlite3.connect(tmp_path / "usage.db")
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert [r[0] for r in conn.execute("SELECT client FROM requests ORDER BY ts")] == ["laptop", "ci", "laptop"]
    ledger.record(row(now))  # after close: dropped, no error
    assert conn.execute("SELECT COUNT(*) FROM requests").fetchone() == (3,)


def test_a_locked_file_drops_rows_with_one_warning_and_the_ledger_recovers(tmp_path, caplog):
    db = tmp_path / "usage.db"
    ledger = Ledger(db, retention_days=90, flush_sec=60)
    ledger.start()
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holding the write lock past the busy timeout
    with caplog.at_level(logging.WARNING, logger="lingma_proxy.usage"):
        for n in range(3):
            ledger.record(row(time.time(), client=f"lost-{n}"))
            ledger.flush()
        warnings = [r.getMessage() for r in caplog.records]
        assert len(warnings) == 1 and "cannot write to" in warnings[0] and "database is locked" in warnings[0]
        blocker.execute("ROLLBACK")
        ledger.record(row(time.time(), client="kept"))
        ledger.flush()
    assert "writing to" in caplog.records[-1].getMessage()
    ledger.close()
    assert [r[0] for r in blocker.execute("SELECT client FROM requests")] == ["kept"]


def test_retention_sweeps_rows_older_than_the_limit(tmp_path):
    ledger = Ledger(tmp_path / "usage.db", retention_days=3650)
    ledger.start()
    now = time.time()
    for days in (100, 91, 89, 1):
        ledger.record(row(now - days * 86400))
    ledger.close()
    conn = sqlite3.connect(tmp_path / "usage.db")
    assert sweep(conn, 90, now) == 2
    assert conn.execute("SELECT COUNT(*) FROM requests").fetchone() == (2,)


# --- the aggregates


def test_percentile_and_since():
    assert percentile([], 0.5) is None
    assert percentile([10], 0.95) == 10
    assert percentile([10, 20, 30, 40], 0.5) == 25
    assert percentile(list(range(1, 101)), 0.95) == pytest.approx(95.05)
    assert [parse_since(text) for text in ("30m", "48h", "7d", "2w")] == [1800, 172800, 604800, 1209600]
    for text in ("7", "d", "-1d", "1y", "7 days"):
        with pytest.raises(UsageQueryError):
            parse_since(text)


def test_totals_and_charts_from_the_file(tmp_path):
    ledger = Ledger(tmp_path / "usage.db", retention_days=90)
    ledger.start()
    now = time.time()
    for r in [row(now - 60, first_token_ms=100), row(now - 30, first_token_ms=300, model="max"),
              row(now - 2 * 3600, client="ci", status=500, error_type="internal", first_token_ms=None),
              row(now - 3 * 86400, model="max")]:  # fmt: skip
        ledger.record(r)
    ledger.close()
    conn = sqlite3.connect(tmp_path / "usage.db")
    assert [(r["client"], r["requests"], r["errors"]) for r in totals(conn, now - 86400, "client")] == [
        ("laptop", 2, 0), ("ci", 1, 1)
    ]
    assert totals(conn, now - 86400, "client")[0]["first_token_p50_ms"] == 200
    assert {r["model"]: r["requests"] for r in totals(conn, now - 7 * 86400, "model")} == {"qwen": 2, "max": 2}
    hours = chart(conn, "hour", 48, now)
    assert len(hours["buckets"]) == 48 and hours["buckets"][-1] == int(now // 3600) * 3600
    assert sum(hours["models"]["qwen"]["requests"]) == 2 and sum(hours["models"]["max"]["requests"]) == 1
    assert hours["first_token_p50_ms"][-1] is not None or hours["first_token_p50_ms"][-2] is not None
    days = chart(conn, "day", 30, now)
    assert len(days["buckets"]) == 30 and sum(days["models"]["max"]["requests"]) == 2
    assert chart(None, "day", 30, now)["models"] == {}
