"""Admin diagnostics: the effective config and the ring of recent request bodies, secrets removed."""

from __future__ import annotations

from ..config import effective_config
from ..errors import ApiError, bad_request
from .base import BaseHandler

_DEFAULT_LIMIT = 20
_MAX_LIMIT = 100


class EffectiveConfigHandler(BaseHandler):
    auth = "admin"

    def get(self) -> None:
        self.write_json(effective_config(self.services.cfg))


class DebugRequestsHandler(BaseHandler):
    auth = "admin_token"  # the ring holds every client's prompts

    def get(self) -> None:
        if not self.services.cfg.debug.request_ring:
            raise ApiError(
                "not_found", "The request ring is off; set debug.request_ring: true to keep recent requests."
            )
        raw = self.get_query_argument("limit", str(_DEFAULT_LIMIT))
        try:
            limit = int(raw)
        except ValueError:
            raise bad_request("limit must be an integer", param="limit") from None
        limit = min(max(limit, 1), _MAX_LIMIT)
        self.write_json({"requests": self.services.debug_ring.recent(limit)})
