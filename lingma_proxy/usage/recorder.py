"""A finished API request's facts, gathered from its handler into one ledger row."""

from __future__ import annotations

import time
from typing import Any, Protocol

from ..config import Config
from ..events import Finish
from ..upstream.pool import Pool
from .clients import ClientLabels, agent_family
from .ledger import Ledger, UsageRow, db_path


class FinishedRequest(Protocol):
    """What the recorder reads of a finished request: a handler, seen only through these names."""

    api: str
    api_key_id: str
    finish_event: Finish | None
    served_model: str
    served_by: str
    model_asked: str
    error_type: str
    request: Any

    def get_status(self) -> int: ...

    def offered_key(self) -> str: ...

_MAX_TEXT = 200  # route and model come from the client: a hostile one must not bloat the file


class UsageRecorder:
    def __init__(self, ledger: Ledger, labels: ClientLabels, pool: Pool) -> None:
        self.ledger = ledger
        self._labels = labels
        self._pool = pool

    def record(self, handler: FinishedRequest, route: str, ms: float, streamed: bool) -> None:
        """On the event loop, as the request finishes; only an append (the ledger writes later).

        `route` comes redacted: the handler redacts it once for this and the status page's list."""
        if not self.ledger.enabled:
            return
        fin = handler.finish_event
        status = handler.get_status()
        # A 200 whose answer never finished: a stream that failed after its headers, or a client gone.
        error_type = handler.error_type or ("incomplete" if fin is None and handler.served_model else "")
        self.ledger.record(
            UsageRow(
                ts=time.time(),
                api=handler.api,
                route=route[:_MAX_TEXT],
                client=self._labels.label(handler.offered_key() if handler.api_key_id else None),
                agent=agent_family(handler.request.headers.get("User-Agent", "")),
                model_asked=handler.model_asked[:_MAX_TEXT],
                model_served=handler.served_model,
                account=self._account_of(handler.served_by),
                instance=handler.served_by,
                status=status,
                error_type=error_type,
                input_tokens=fin.usage.input_tokens if fin else 0,
                output_tokens=fin.usage.output_tokens if fin else 0,
                upstream_tokens=fin.upstream_tokens if fin else 0,
                session_reused=fin.session_reused if fin else False,
                first_token_ms=fin.latency.first_token_ms if fin else None,
                total_ms=fin.latency.total_ms if fin else int(ms),
                streamed=streamed,
            )
        )

    def _account_of(self, instance: str) -> str:
        """The configured account of the instance that served; "default" when none is configured."""
        if not instance:
            return ""
        inst = next((i for i in self._pool.instances if i.name == instance), None)
        return inst.account.name if inst is not None and inst.account is not None else "default"


def usage_recorder(cfg: Config, pool: Pool) -> UsageRecorder:
    """The recorder serve() uses, its ledger opened (and swept) when usage.enabled."""
    ledger = Ledger(db_path(cfg), cfg.usage.retention_days)
    if cfg.usage.enabled:
        ledger.start()  # a file it cannot open is one warning line; the proxy serves without it
    return UsageRecorder(ledger, ClientLabels(cfg.auth.api_keys, cfg.auth.api_key_names), pool)
