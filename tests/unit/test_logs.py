"""setup_logging(): text and JSON lines on stderr, the request id on each, secrets never written."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest
import ujson

from lingma_proxy.logs import request_id_var, setup_logging
from lingma_proxy.redact import Redactor

SECRET = "sk-proxy-test-secret-42"
TOKEN = "pt-Zx81Kq0vB7nW3mYpLr5Ts2Ua9"

log = logging.getLogger("lingma_proxy.test")


@pytest.fixture(autouse=True)
def restore_root_logger():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def stderr_lines(capsys) -> list[str]:
    return capsys.readouterr().err.splitlines()


def log_secrets_every_way() -> None:
    log.info("key %s and token %s", SECRET, TOKEN)
    log.warning("auth/status result", extra={"result": {"token": TOKEN}, "note": f"key={SECRET}"})
    try:
        raise RuntimeError(f"upstream refused {SECRET}")
    except RuntimeError:
        log.exception("call failed")


def test_text_format_has_time_level_request_id_logger_and_message(capsys):
    setup_logging("info", "text", Redactor())
    token = request_id_var.set("req-abc")
    try:
        log.info("hello %s", "world")
    finally:
        request_id_var.reset(token)
    log.info("outside a request")
    lines = stderr_lines(capsys)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO \[req-abc\] lingma_proxy\.test: hello world", lines[0])
    assert lines[1].endswith("INFO [-] lingma_proxy.test: outside a request")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_secrets_never_reach_the_output(capsys, fmt):
    setup_logging("info", fmt, Redactor([SECRET]))
    log_secrets_every_way()
    err = capsys.readouterr().err
    assert "call failed" in err and "RuntimeError" in err  # the records and the traceback were written
    assert SECRET not in err
    assert TOKEN not in err


def test_json_format_is_one_object_per_line_with_extras(capsys):
    setup_logging("debug", "json", Redactor([SECRET]))
    token = request_id_var.set("req-json")
    try:
        log.debug("first", extra={"instance": "default-0", "result": {"token": TOKEN, "status": 2}})
        log.error("second: 中文")
    finally:
        request_id_var.reset(token)
    first, second = (ujson.loads(line) for line in stderr_lines(capsys))
    assert {"ts", "level", "logger", "request_id", "msg"} <= set(first)
    assert first["level"] == "DEBUG" and first["logger"] == "lingma_proxy.test"
    assert first["request_id"] == "req-json" and first["msg"] == "first"
    assert first["instance"] == "default-0"
    assert first["result"] == {"token": "***", "status": 2}
    assert second["msg"] == "second: 中文"


def test_json_exception_is_a_field(capsys):
    setup_logging("info", "json", Redactor([SECRET]))
    log_secrets_every_way()
    *_, last = (ujson.loads(line) for line in stderr_lines(capsys))
    assert last["msg"] == "call failed"
    assert "RuntimeError: upstream refused ***" in last["exc"]


def test_calling_setup_twice_does_not_duplicate_output(capsys):
    setup_logging("info", "text", Redactor())
    setup_logging("info", "json", Redactor())
    log.info("once")
    lines = stderr_lines(capsys)
    assert len(lines) == 1
    assert ujson.loads(lines[0])["msg"] == "once"  # the second call's format wins


def test_level_filters_records(capsys):
    setup_logging("warning", "text", Redactor())
    log.info("quiet")
    log.warning("loud")
    lines = stderr_lines(capsys)
    assert len(lines) == 1 and lines[0].endswith("loud")


@pytest.mark.timeout(30)
def test_each_task_logs_its_own_request_id(capsys):
    setup_logging("info", "json", Redactor())

    async def request(request_id: str) -> None:
        request_id_var.set(request_id)
        await asyncio.sleep(0)  # let the other task run in between
        log.info("handled")

    async def main() -> None:
        await asyncio.gather(request("req-1"), request("req-2"))

    asyncio.run(main())
    ids = sorted(ujson.loads(line)["request_id"] for line in stderr_lines(capsys))
    assert ids == ["req-1", "req-2"]
