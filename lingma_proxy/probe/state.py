"""What the checks share: where Lingma is, the client once connected, and what earlier checks learned."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from lingma_proxy.config import Config
from lingma_proxy.probe.chats import ChatRun
from lingma_proxy.probe.traffic import Tap
from lingma_proxy.redact import Redactor
from lingma_proxy.upstream.client import LingmaClient
from lingma_proxy.upstream.transport import Endpoint

CHAT_IDLE_TIMEOUT_SEC = 60.0  # a chat silent this long has failed, whatever lingma.rpc_timeout allows
QUOTE_CHARS = 80


@dataclass
class ProbeState:
    cfg: Config
    endpoint: Endpoint
    workspace: Path  # an empty dir sent as rootUri, so a real Lingma has nothing of the user's to index
    redactor: Redactor
    tap: Tap = field(default_factory=Tap)
    client: LingmaClient | None = None
    dialect: str = ""
    family: str = ""  # serverInfo.name, else the info file's folder (§11)
    runtime_version: str = ""
    transport: str = ""  # websocket | unix
    token_fact: str = "machine token: not tried (no connection)"
    session_new_fact: str = "session/new: not tried (the handshake failed)"
    logged_in: bool = False
    model_key: str = ""
    stream_run: ChatRun | None = None  # check 5's chat, read by check 6
    session_ids: list[str] = field(default_factory=list)  # ours, deleted upstream at the end

    @property
    def rpc_timeout(self) -> float:
        return min(self.cfg.lingma.rpc_timeout, CHAT_IDLE_TIMEOUT_SEC)

    def quote(self, text: str) -> str:
        """Model output for the report: redacted whole (so no secret is cut in two), then shortened."""
        shown = self.redactor.redact(text)
        more = f"… ({len(text)} chars)" if len(shown) > QUOTE_CHARS else ""
        return repr(shown[:QUOTE_CHARS]) + more


def elapsed_ms(since: float, until: float | None = None) -> str:
    return f"{((until if until is not None else time.monotonic()) - since) * 1000:.0f} ms"
