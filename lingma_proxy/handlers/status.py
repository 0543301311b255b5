"""The status page: GET / (public HTML, holds no data) and GET /internal/status (admin JSON it polls)."""

from __future__ import annotations

import time
from pathlib import Path

from .. import __version__
from ..errors import ApiError
from ..services import Services
from ..upstream.pool import Instance
from .base import BaseHandler
from .ops import upstream_summary

_PAGE = Path(__file__).with_name("status_page.html").read_bytes()
# The page is self-contained: the browser may load nothing from anywhere, and talk only to this proxy.
_PAGE_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class StatusPageHandler(BaseHandler):
    auth = "public"

    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Content-Security-Policy", _PAGE_POLICY)
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "no-referrer")
        self.finish(_PAGE)

    def head(self) -> None:
        """Claude Code sends `HEAD /` on every run; Tornado sends headers only for a HEAD."""
        self.get()


class StatusHandler(BaseHandler):
    auth = "admin"

    async def get(self) -> None:
        services = self.services
        cfg = services.cfg
        instances = [_describe_instance(inst) for inst in services.pool.instances]
        models, models_error = await _models(services)
        self.write_json(
            {
                "version": __version__,
                "uptime_sec": round(time.time() - services.started_at, 1),
                "upstream": upstream_summary(services),
                "server": {"host": cfg.server.host, "port": self._listening_port()},
                "auth": {
                    "open": not cfg.auth.api_keys,
                    "api_keys": len(cfg.auth.api_keys),
                    "admin_token": bool(cfg.auth.admin_token),
                },
                "accounts": _accounts(services, instances),
                "instances": instances,
                "session_reuse": services.reuse.describe(),
                "models": models,
                "models_error": models_error,
                "default_model": cfg.lingma.default_model,
                "counters": _counters(services),
                "recent": services.recent.recent(),
            }
        )

    def _listening_port(self) -> int:
        """The port this connection came in on: the configured one may be 0 (any free port)."""
        sock = getattr(getattr(self.request.connection, "stream", None), "socket", None)
        return sock.getsockname()[1] if sock is not None else self.services.cfg.server.port


def _describe_instance(inst: Instance) -> dict:
    return {
        **inst.describe(),
        "last_error": inst.last_error or None,  # redacted, but fuller than /healthz's fixed code
        "account": inst.account.name if inst.account else None,
        "user": inst.user_name or None,
    }


def _accounts(services: Services, instances: list[dict]) -> list[dict]:
    """Per configured account (or the one implicit default): its instances and who they are logged in as."""
    names = [account.name for account in services.cfg.accounts] or [None]
    return [
        {
            "name": name,
            "instances": [inst["name"] for inst in instances if inst["account"] == name],
            "ready": sum(1 for inst in instances if inst["account"] == name and inst["state"] == "ready"),
            "users": sorted({inst["user"] for inst in instances if inst["account"] == name and inst["user"]}),
        }
        for name in names
    ]


async def _models(services: Services) -> tuple[list[dict], str | None]:
    """The registry's list, which it caches, so polling does not ask the upstream every time."""
    try:
        models = await services.models.list()
    except (TimeoutError, ApiError, ConnectionError) as exc:
        message = exc.message if isinstance(exc, ApiError) else repr(exc)
        return [], services.redactor.redact(f"model list unavailable: {message}")
    listing = [
        {
            "id": model.id,
            "display_name": model.display_name,
            "context_window": model.context_window,
            "is_reasoning": model.is_reasoning,
            "is_vision": model.is_vision,
        }
        for model in models
    ]
    return listing, None


def _counters(services: Services) -> dict:
    cache = services.sessions.stats()
    lookups = cache["hits"] + cache["misses"]
    return {
        **services.recent.counters(),
        "in_flight": services.pool.slots.in_flight,
        "session_cache": {**cache, "hit_rate": cache["hits"] / lookups if lookups else None},
    }
