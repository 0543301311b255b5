"""GET /internal/stats (admin): the session cache and the pool, as counters an operator can read."""

from __future__ import annotations

from ..upstream.pool import Instance
from .base import BaseHandler


def _describe_instance(inst: Instance) -> dict:
    return {
        "name": inst.name,
        "state": inst.state,
        "in_flight": inst.in_flight,
        "restarts": inst.restarts,
        "socket_port": inst.socket_port,
        "http_port": inst.http_port,
        "generation": inst.generation,
    }


class StatsHandler(BaseHandler):
    auth = "admin"

    def get(self) -> None:
        pool, responses = self.services.pool, self.services.responses
        self.write_json(
            {
                "session_cache": self.services.sessions.stats(),
                # Per model: the runtime's input figure over our count (lingma.context_usage reports the former).
                "token_calibration": self.services.completions.calibration.stats(),
                "pool": {"instances": [_describe_instance(inst) for inst in pool.instances]},
                "in_flight": pool.slots.in_flight,
                "queued": pool.slots.queued,
                "rejections": pool.slots.rejections,
                "response_store": {
                    "entries": len(responses),
                    "bytes": responses.bytes,
                    "max_bytes": responses.max_bytes,
                },
            }
        )
