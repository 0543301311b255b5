"""The long-lived objects handlers need, built once in app.py and passed down explicitly."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .completion import CompletionService
from .completion.reuse_trust import ReuseTrust
from .config import Config
from .debug_ring import RequestRing
from .login.manager import LoginManager
from .metrics import Metrics
from .models import ModelRegistry
from .recent_requests import RecentRequests
from .redact import Redactor
from .response_store import ResponseStore
from .sessions import SessionCache
from .upstream.pool import Pool, Upstream
from .usage.recorder import UsageRecorder


@dataclass
class Services:
    cfg: Config
    upstream: Upstream
    redactor: Redactor
    pool: Pool
    models: ModelRegistry
    completions: CompletionService
    sessions: SessionCache
    reuse: ReuseTrust  # sessions.reuse: auto's canary verdicts per runtime
    responses: ResponseStore
    metrics: Metrics
    debug_ring: RequestRing
    login: LoginManager  # auto-login, session bundles; its hooks are installed on the pool
    recent: RecentRequests  # the status page's last requests and live totals
    usage: UsageRecorder  # the durable ledger: a row per API request
    started_at: float = field(default_factory=time.time)
    # Handlers answering a completion right now; graceful shutdown ends the ones that outlive the grace period.
    active: set[Any] = field(default_factory=set)
