"""Public operational endpoints: /healthz and Claude Code's /api/hello probe."""

from __future__ import annotations

from .. import __version__
from .base import BaseHandler


class HealthHandler(BaseHandler):
    auth = "public"

    async def get(self) -> None:
        pool = self.services.pool
        upstream = self.services.upstream
        instances = [inst.describe() for inst in pool.instances]
        ready = sum(1 for inst in pool.instances if inst.usable)
        dialects = sorted({inst.client.dialect_name for inst in pool.instances if inst.client is not None})
        self.write_json(
            {
                "ok": ready > 0,
                "version": __version__,
                "upstream": {
                    "kind": upstream.kind,
                    "mode": "attached" if upstream.attach_url else "spawned",
                    "dialect": dialects[0] if len(dialects) == 1 else (dialects or None),
                },
                "pool_size": len(instances),
                "pool_ready": ready,
                "in_flight": pool.in_flight,
                "instances": instances,
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
