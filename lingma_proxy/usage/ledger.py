"""The request ledger: one SQLite row per API request, batched by a writer thread, kept retention_days.

The event loop only appends a row to a bounded in-memory list; a thread writes the list in one
transaction every FLUSH_SEC, and at shutdown. The ledger is a record, not a dependency: when the file
cannot be opened the proxy serves without it (one warning at startup), and when a write fails (a full
disk, a locked or read-only file) the batch is dropped with one warning until writes succeed again.
"""

from __future__ import annotations

import dataclasses
import logging
import operator
import os
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from ..config import Config

log = logging.getLogger("lingma_proxy.usage")

FLUSH_SEC = 1.0
SWEEP_EVERY_SEC = 24 * 3600.0
_MAX_PENDING = 50_000  # rows waiting for the writer; beyond, new rows are dropped (the disk cannot keep up)
_BUSY_TIMEOUT_MS = 2000  # a `usage` command reading the file holds no write lock; anything longer is a lock

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,                -- unix time the request finished
    api TEXT NOT NULL,               -- openai_chat, openai_responses, anthropic, ollama
    route TEXT NOT NULL,
    client TEXT NOT NULL,            -- the API key's name or fingerprint, or anonymous
    agent TEXT NOT NULL,             -- the User-Agent's family: claude-cli, codex, openai-python, ...
    model_asked TEXT NOT NULL,
    model_served TEXT NOT NULL,
    account TEXT NOT NULL,
    instance TEXT NOT NULL,
    status INTEGER NOT NULL,
    error_type TEXT NOT NULL,        -- the error's kind; incomplete = a stream that ended without finishing
    input_tokens INTEGER NOT NULL,   -- as reported to the client
    output_tokens INTEGER NOT NULL,
    upstream_tokens INTEGER NOT NULL,  -- prompt tokens actually sent to Lingma (less with a reused session)
    session_reused INTEGER NOT NULL,
    first_token_ms INTEGER,
    total_ms INTEGER NOT NULL,
    streamed INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_ts ON requests (ts);
"""


@dataclass(slots=True)
class UsageRow:
    """What a request cost and how it went; never a body or a prompt."""

    ts: float
    api: str
    route: str
    client: str
    agent: str
    model_asked: str
    model_served: str
    account: str
    instance: str
    status: int
    error_type: str
    input_tokens: int
    output_tokens: int
    upstream_tokens: int
    session_reused: bool
    first_token_ms: int | None
    total_ms: int
    streamed: bool


COLUMNS = tuple(f.name for f in dataclasses.fields(UsageRow))
_ROW_VALUES = operator.attrgetter(*COLUMNS)  # astuple() deep-copies every field, at ~5× the cost
_INSERT = f"INSERT INTO requests ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"


def db_path(cfg: Config) -> Path:
    """usage.db_path, else usage.db beside the work dir (~/.lingma-proxy/usage.db by default)."""
    return Path(cfg.usage.db_path) if cfg.usage.db_path else Path(cfg.lingma.work_dir).parent / "usage.db"


def open_ledger_db(path: Path) -> sqlite3.Connection:
    """Open (creating it owner-only, in an owner-only directory, like every file of the proxy) and migrate."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # The db holds no secret, but who asked what and when is nobody else's business either.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode only applies to a file it creates
    finally:
        os.close(fd)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL stays consistent; a power cut may lose the last second
        conn.executescript(SCHEMA)
    except sqlite3.Error:
        conn.close()
        raise
    return conn


def sweep(conn: sqlite3.Connection, retention_days: int, now: float | None = None) -> int:
    """Delete the rows older than retention_days; how many went."""
    cutoff = (time.time() if now is None else now) - retention_days * 86400
    return conn.execute("DELETE FROM requests WHERE ts < ?", (cutoff,)).rowcount


class Ledger:
    """Rows in from the event loop (record), out to SQLite from a writer thread. A closed ledger drops rows."""

    def __init__(self, path: Path, retention_days: int, flush_sec: float = FLUSH_SEC) -> None:
        self.path = path
        self.retention_days = retention_days
        self.enabled = False
        self._flush_sec = flush_sec
        self._pending: deque[UsageRow] = deque()
        self._queued = 0  # rows accepted by record(), ever
        self._handled = 0  # of those, rows the writer has written or dropped
        self._progress = threading.Condition()
        self._wake = threading.Event()
        self._stopping = False
        self._failing = False  # the last write failed: said once, quiet until one succeeds
        self._overflowing = False
        self._conn: sqlite3.Connection | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Open the file, sweep old rows and start the writer; a file that cannot be opened is one warning."""
        try:
            self._conn = open_ledger_db(self.path)
            swept = sweep(self._conn, self.retention_days)
        except (OSError, sqlite3.Error) as exc:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            log.warning(
                "usage ledger off: cannot open %s (%s); requests are served but not recorded", self.path, _reason(exc)
            )
            return
        if swept:
            log.info("usage ledger: deleted %d rows older than %d days", swept, self.retention_days)
        self.enabled = True
        self._thread = threading.Thread(target=self._run, name="usage-ledger", daemon=True)
        self._thread.start()

    def record(self, row: UsageRow) -> None:
        """From the event loop: never blocks, never raises."""
        if not self.enabled:
            return
        if len(self._pending) >= _MAX_PENDING:
            if not self._overflowing:
                self._overflowing = True
                log.warning("usage ledger: the writer is behind by %d rows; dropping new rows", _MAX_PENDING)
            return
        self._overflowing = False
        self._pending.append(row)
        self._queued += 1

    def flush(self, timeout: float = 10.0) -> None:
        """Block (off the loop) until every row recorded before the call is written or dropped."""
        if self._thread is None:
            return
        target = self._queued
        self._wake.set()
        with self._progress:
            self._progress.wait_for(lambda: self._handled >= target or not self._thread.is_alive(), timeout)

    def close(self) -> None:
        """At shutdown: write what is pending, stop the writer, close the file."""
        if self._thread is None:
            return
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=10)
        self.enabled = False

    def _run(self) -> None:
        conn = self._conn
        assert conn is not None
        next_sweep = time.monotonic() + SWEEP_EVERY_SEC
        while not self._stopping:
            self._wake.wait(self._flush_sec)
            self._wake.clear()
            self._write_pending(conn)
            if time.monotonic() >= next_sweep:
                next_sweep += SWEEP_EVERY_SEC
                self._sweep(conn)
        self._write_pending(conn)
        conn.close()

    def _write_pending(self, conn: sqlite3.Connection) -> None:
        batch = [self._pending.popleft() for _ in range(len(self._pending))]
        if batch:
            try:
                with conn:  # one transaction: a batch is written whole or not at all
                    conn.execute("BEGIN")
                    conn.executemany(_INSERT, [_ROW_VALUES(row) for row in batch])
            except (OSError, sqlite3.Error) as exc:
                self._write_failed(len(batch), exc)
            else:
                if self._failing:
                    self._failing = False
                    log.warning("usage ledger: writing to %s again", self.path)
        with self._progress:
            self._handled += len(batch)
            self._progress.notify_all()

    def _write_failed(self, rows: int, exc: BaseException) -> None:
        if not self._failing:
            self._failing = True
            log.warning(
                "usage ledger: cannot write to %s (%s); dropped %d rows, and will drop more until it can",
                self.path, _reason(exc), rows,
            )  # fmt: skip

    def _sweep(self, conn: sqlite3.Connection) -> None:
        try:
            swept = sweep(conn, self.retention_days)
        except sqlite3.Error as exc:
            log.warning("usage ledger: retention sweep failed: %s", _reason(exc))
            return
        if swept:
            log.info("usage ledger: deleted %d rows older than %d days", swept, self.retention_days)


def _reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
