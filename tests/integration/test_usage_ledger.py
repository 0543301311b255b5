"""The usage ledger with a real proxy and its simulator child: rows survive a restart, the aggregates match the
requests sent, retention deletes old rows, and a ledger that cannot be written never stops the proxy."""

from __future__ import annotations

import datetime
import sqlite3
import stat
import time
from pathlib import Path

import httpx
import pytest

from harness.proxy import Proxy, start_proxy
from lingma_proxy.usage.clients import fingerprint
from lingma_proxy.usage.ledger import Ledger, UsageRow

from .ops_support import ANTHROPIC_HEADERS, request_body

pytestmark = pytest.mark.timeout(120)

LAPTOP_KEY = "sk-usage-laptop-51f0c2"
CI_KEY = "sk-usage-ci-88d41e"  # configured without a name: shown as its fingerprint
ADMIN = {"Authorization": f"Bearer {LAPTOP_KEY}"}  # no admin_token: /internal/* takes the API keys


def send(proxy: Proxy, key: str, api: str, model: str, **extra) -> dict:
    """One request; the usage it reported as (input, output) tokens, or the status of a failure."""
    paths = {"chat": "/v1/chat/completions", "responses": "/v1/responses", "messages": "/v1/messages"}
    headers = {"Authorization": f"Bearer {key}", "User-Agent": "claude-cli/2.0.1 (external, cli)"}
    if api == "messages":
        headers.update(ANTHROPIC_HEADERS)
    body = {**request_body(api, f"usage ledger {time.monotonic()}"), "model": model, **extra}
    response = httpx.post(f"{proxy.url}{paths[api]}", json=body, headers=headers, timeout=30)
    if response.status_code != 200 or extra.get("stream"):
        return {"status": response.status_code}
    usage = response.json()["usage"]
    if api == "chat":
        return {"status": 200, "tokens": (usage["prompt_tokens"], usage["completion_tokens"])}
    return {"status": 200, "tokens": (usage["input_tokens"], usage["output_tokens"])}


def usage(proxy: Proxy, by: str, since: str = "1d") -> dict:
    response = httpx.get(f"{proxy.url}/internal/usage", params={"since": since, "by": by}, headers=ADMIN, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def ledger_rows(db: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM requests ORDER BY id").fetchall()
    finally:
        conn.close()


def test_rows_survive_a_restart_and_the_aggregates_match_the_requests_by_client_model_and_day(tmp_path):
    db = tmp_path / "ledger" / "usage.db"  # a directory that does not exist yet
    config = {
        "auth": {"api_keys": [{"key": LAPTOP_KEY, "name": "laptop"}, CI_KEY]},
        "usage": {"db_path": str(db)},
    }
    proxy = start_proxy(tmp_path, config)
    models = [m["id"] for m in httpx.get(f"{proxy.url}/v1/models", headers=ADMIN, timeout=10).json()["data"]]
    coder, other = models[2], models[-1]
    sent = [
        ("laptop", coder, send(proxy, LAPTOP_KEY, "chat", coder)),
        ("laptop", coder, send(proxy, LAPTOP_KEY, "messages", coder)),
        ("laptop", other, send(proxy, LAPTOP_KEY, "responses", other)),
        ("ci", other, send(proxy, CI_KEY, "chat", other)),
        ("ci", other, send(proxy, CI_KEY, "chat", other, messages=[])),  # a 400, before any upstream call
    ]
    assert [outcome["status"] for _, _, outcome in sent] == [200, 200, 200, 200, 400]
    assert proxy.stop() == 0  # graceful: the rows still pending are written on the way out

    assert stat.S_IMODE(db.stat().st_mode) == 0o600 and stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    assert len(ledger_rows(db)) == 6  # the five, and GET /v1/models

    proxy = start_proxy(tmp_path, config)  # same file, new process
    try:
        sent.append(("laptop", coder, send(proxy, LAPTOP_KEY, "chat", coder, stream=True)))
        label = {"laptop": "laptop", "ci": fingerprint(CI_KEY)}
        by_client = {row["client"]: row for row in usage(proxy, "client")["rows"]}
        assert set(by_client) == {"laptop", fingerprint(CI_KEY)}
        assert CI_KEY not in str(by_client) and fingerprint(CI_KEY).startswith("key-")
        for who in ("laptop", "ci"):
            mine = [outcome for client, _, outcome in sent if client == who]
            row = by_client[label[who]]
            listings = 1 if who == "laptop" else 0  # the GET /v1/models above
            assert row["requests"] == len(mine) + listings, row
            assert row["errors"] == sum(outcome["status"] != 200 for outcome in mine), row
            reported = [outcome["tokens"] for outcome in mine if "tokens" in outcome]
            assert row["input_tokens"] >= sum(tokens[0] for tokens in reported)  # the stream reports none here
            assert row["first_token_p50_ms"] is not None

        by_model = {row["model"]: row for row in usage(proxy, "model")["rows"]}
        assert by_model[coder]["requests"] == sum(model == coder for _, model, _ in sent)
        assert by_model[other]["requests"] == sum(model == other for _, model, _ in sent)

        [today] = usage(proxy, "day")["rows"]
        assert today["day"] in {datetime.date.today().isoformat(), datetime.date.fromtimestamp(time.time() - 60).isoformat()}
        assert today["requests"] == len(sent) + 1

        rows = ledger_rows(db)
        non_stream = [row for row in rows if row["status"] == 200 and row["route"] != "/v1/models" and not row["streamed"]]
        assert [(row["input_tokens"], row["output_tokens"]) for row in non_stream] == [
            outcome["tokens"] for _, _, outcome in sent[:4]
        ]
        last = rows[-1]
        assert (last["streamed"], last["client"], last["agent"], last["api"]) == (1, "laptop", "claude-cli", "openai_chat")
        assert (last["model_asked"], last["model_served"], last["account"], last["instance"]) == (coder, coder, "default", "default-0")
        assert last["upstream_tokens"] > 0 and last["total_ms"] >= (last["first_token_ms"] or 0)
        failed = rows[5]
        assert (failed["status"], failed["error_type"], failed["model_served"]) == (400, "invalid_request", "")
        assert all("usage ledger" not in text for text in map(str, rows))  # no prompt text in any row
        charts = usage(proxy, "model")
        assert sum(sum(series["requests"]) for series in charts["hour"]["models"].values()) == len(sent) + 1
        assert charts["hour"]["first_token_p50_ms"][-1] is not None and len(charts["day"]["buckets"]) == 30
    finally:
        proxy.stop()


def test_retention_deletes_old_rows_at_startup(tmp_path):
    db = tmp_path / "usage.db"
    seeder = Ledger(db, retention_days=3650)  # keeps everything: the proxy's own sweep is under test
    seeder.start()
    now = time.time()
    for days_ago in (45, 31, 29, 1):
        seeder.record(
            UsageRow(
                ts=now - days_ago * 86400, api="openai_chat", route="/v1/chat/completions", client="old", agent="curl",
                model_asked="auto", model_served="auto", account="default", instance="default-0", status=200,
                error_type="", input_tokens=10, output_tokens=5, upstream_tokens=10, session_reused=False,
                first_token_ms=100, total_ms=200, streamed=False,
            )
        )  # fmt: skip
    seeder.close()
    proxy = start_proxy(tmp_path, {"usage": {"retention_days": 30}})
    try:
        assert [round((now - row["ts"]) / 86400) for row in ledger_rows(db)] == [29, 1]
        assert "usage ledger: deleted 2 rows older than 30 days" in proxy.log_text()
        assert usage(proxy, "client", since="60d")["rows"][0]["requests"] == 2
    finally:
        proxy.stop()


@pytest.mark.parametrize("where", ["under_a_file", "read_only_dir"])
def test_a_ledger_it_cannot_open_is_one_line_at_startup_and_the_proxy_still_serves(tmp_path, where):
    if where == "under_a_file":
        (tmp_path / "not-a-dir").write_text("")
        db = tmp_path / "not-a-dir" / "ledger" / "usage.db"  # its directory cannot be created
    else:
        db = Path("/proc") / "usage.db"  # a directory nobody may create files in, not even root
    proxy = start_proxy(tmp_path, {"auth": {"api_keys": [LAPTOP_KEY]}, "usage": {"db_path": str(db)}})
    try:
        assert send(proxy, LAPTOP_KEY, "chat", "auto")["status"] == 200
        report = usage(proxy, "client")
        assert report["enabled"] is False and report["rows"] == []
        lines = [line for line in proxy.log_text().splitlines() if "usage ledger" in line]
        assert len(lines) == 1, lines
        assert "WARNING" in lines[0] and f"usage ledger off: cannot open {db}" in lines[0]
        assert "requests are served but not recorded" in lines[0]
    finally:
        assert proxy.stop() == 0
    assert "Traceback" not in proxy.log_text()


def test_usage_enabled_false_creates_no_file(tmp_path):
    proxy = start_proxy(tmp_path, {"usage": {"enabled": False}})
    try:
        assert send(proxy, "unused", "chat", "auto")["status"] == 200
        assert httpx.get(f"{proxy.url}/internal/usage", timeout=10).json()["enabled"] is False
    finally:
        proxy.stop()
    assert not (tmp_path / "usage.db").exists()


def test_internal_usage_rejects_a_bad_since_or_by(tmp_path):
    proxy = start_proxy(tmp_path)
    try:
        for params, param in (({"since": "forever"}, "since"), ({"by": "colour"}, "by")):
            response = httpx.get(f"{proxy.url}/internal/usage", params=params, timeout=10)
            assert response.status_code == 400 and response.json()["error"]["param"] == param, response.text
    finally:
        proxy.stop()
