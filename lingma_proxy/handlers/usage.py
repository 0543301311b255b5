"""GET /internal/usage?since=30d&by=model: the ledger's aggregates, for the status page's usage panel (admin)."""

from __future__ import annotations

import asyncio
import sqlite3
import time

from ..errors import ApiError, bad_request
from ..usage.ledger import Ledger
from ..usage.report import GROUPS, UsageQueryError, chart, open_for_reading, parse_since, totals
from .base import BaseHandler

CHART_HOURS = 48
CHART_DAYS = 30


class UsageHandler(BaseHandler):
    auth = "admin"

    async def get(self) -> None:
        since, by = self.get_query_argument("since", "30d"), self.get_query_argument("by", "model")
        try:
            span = parse_since(since)
        except UsageQueryError as err:
            raise bad_request(str(err), param="since") from None
        if by not in GROUPS:
            raise bad_request(f"by must be one of {', '.join(GROUPS)}; got {by!r}", param="by")
        ledger = self.services.usage.ledger
        try:
            # SQLite blocks: read (after the writer has caught up, so a request just answered counts) off the loop.
            report = await asyncio.to_thread(_report, ledger, time.time() - span, by)
        except sqlite3.Error as exc:
            raise ApiError("unavailable", f"cannot read the usage ledger: {exc}") from None
        self.write_json({"enabled": ledger.enabled, "since": since, "by": by, **report})


def _report(ledger: Ledger, since_ts: float, by: str) -> dict:
    ledger.flush()
    conn = open_for_reading(ledger.path) if ledger.enabled else None
    try:
        return {
            "rows": totals(conn, since_ts, by) if conn is not None else [],
            "hour": chart(conn, "hour", CHART_HOURS),
            "day": chart(conn, "day", CHART_DAYS),
        }
    finally:
        if conn is not None:
            conn.close()
