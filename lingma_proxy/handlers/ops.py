"""Public operational endpoints: /healthz and Claude Code's /api/hello probe."""

from __future__ import annotations

from .. import __version__
from ..services import Services
from .base import BaseHandler


def upstream_summary(services: Services) -> dict:
    """Real Lingma or the simulator, spawned or attached, and the dialect(s) the instances settled on."""
    dialects = sorted(services.pool.dialects)
    return {
        "kind": services.upstream.kind,
        "mode": "attached" if services.upstream.attach else "spawned",
        "dialect": dialects[0] if len(dialects) == 1 else (dialects or None),
    }


class HealthHandler(BaseHandler):
    auth = "public"

    async def get(self) -> None:
        pool = self.services.pool
        instances = [inst.describe() for inst in pool.instances]
        ready = sum(1 for inst in pool.instances if inst.usable)
        self.write_json(
            {
                "ok": ready > 0,
                "version": __version__,
                "upstream": upstream_summary(self.services),
                "pool_size": len(instances),
                "pool_ready": ready,
                "in_flight": pool.slots.in_flight,
                "instances": instances,
                "session_reuse": self.services.reuse.describe(detail=False),
            },
            status=200 if ready else 503,
        )


class HelloHandler(BaseHandler):
    auth = "public"

    def head(self) -> None:
        self.set_status(200)
        self.finish()

    def get(self) -> None:
        self.write_json({"ok": True})


def capabilities(services, detailed: bool) -> dict:
    cfg = services.cfg
    body = {
        "service": "lingma-proxy",
        "version": __version__,
        "upstream": services.upstream.kind,
        "protocols": {
            "openai_chat": "/v1/chat/completions",
            "openai_responses": "/v1/responses",
            "anthropic_messages": "/v1/messages",
            "anthropic_count_tokens": "/v1/messages/count_tokens",
            "ollama_chat": "/api/chat",
            "ollama_generate": "/api/generate",
        },
        "features": {
            "streaming": True,
            "tools": "off" if cfg.tools.emulation == "off" else "emulated",
            "native_tools_forwarded": cfg.tools.forward_native,
            "session_reuse": cfg.sessions.reuse,  # auto | on | off
            "reasoning": True,
            "images": "acp" in services.pool.dialects,  # the agent dialect forwards them to isVl models
            "previous_response_id": True,
        },
    }
    if detailed:
        body["features"]["native_tools_allowlist"] = list(cfg.tools.allowlist)
        body["auth"] = {"api_keys": len(cfg.auth.api_keys), "open": not cfg.auth.api_keys}
    return body


class CapabilitiesHandler(BaseHandler):
    """Public: no allowlist, no auth details."""

    auth = "public"

    def get(self) -> None:
        self.write_json(capabilities(self.services, detailed=False))


class V1CapabilitiesHandler(BaseHandler):
    def get(self) -> None:
        self.write_json(capabilities(self.services, detailed=True))


class MetricsHandler(BaseHandler):
    auth = "metrics"

    def get(self) -> None:
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.finish(self.services.metrics.render())
