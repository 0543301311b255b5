"""The long-lived objects handlers need, built once in app.py and passed down explicitly."""

from __future__ import annotations

from dataclasses import dataclass, field
import time

from .completion import CompletionService
from .config import Config
from .models import ModelRegistry
from .sessions import SessionCache
from .upstream.pool import Pool, Upstream
from .wire.responses import ResponseStore


@dataclass
class Services:
    cfg: Config
    upstream: Upstream
    pool: Pool
    models: ModelRegistry
    completions: CompletionService
    sessions: SessionCache
    responses: ResponseStore
    started_at: float = field(default_factory=time.time)
