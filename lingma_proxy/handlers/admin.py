"""Admin endpoints for logins, session bundles and the raw model list (docs/features.md §7).

They take the admin token, or the API keys when no admin token is set (handlers/auth.py);
session export takes the admin token alone.
"""

from __future__ import annotations

import asyncio
import base64

from ..errors import ApiError, bad_request
from ..login.bundles import BundleError, export_bundle
from ..models import flatten_models
from ..redact import redact_json
from ..upstream.pool import Instance
from .base import BaseHandler


class _AdminHandler(BaseHandler):
    auth = "admin"

    def instance(self) -> Instance:
        """The `instance` query parameter; it may be left out when the pool has a single instance."""
        pool = self.services.pool
        name = self.get_query_argument("instance", "")
        if name:
            return pool.find(name)  # 404 for an unknown name
        if len(pool.instances) == 1:
            return pool.instances[0]
        names = ", ".join(inst.name for inst in pool.instances)
        raise bad_request(f"Name the instance with ?instance= (one of: {names}).", param="instance")


class AutoLoginStartHandler(_AdminHandler):
    async def post(self) -> None:
        inst = self.instance()
        # Repeated wrong passwords can lock the account: only the admin token may skip the cool-down.
        self.services.login.start(inst, force=self.holds_admin_token())
        self.write_json({"instance": inst.name, "started": True, "status_url": "/internal/auto-login/status"}, 202)


class AutoLoginStatusHandler(_AdminHandler):
    async def get(self) -> None:
        self.write_json(self.services.login.status())


class SessionExportHandler(_AdminHandler):
    auth = "admin_token"  # a session bundle is the account's login

    async def post(self) -> None:
        inst = self.instance()
        if not inst.logged_in:
            raise ApiError("conflict", f"Instance {inst.name} is not logged in, so it has no session to export.")
        try:
            bundle = await asyncio.to_thread(export_bundle, inst.work_dir)
        except BundleError as err:
            raise ApiError("conflict", str(err)) from None
        self.write_json(
            {
                "instance": inst.name,
                "account": inst.account.name if inst.account else None,
                "bytes": len(bundle),
                "session_bundle_b64": base64.b64encode(bundle).decode("ascii"),
            }
        )


class RawModelsHandler(_AdminHandler):
    async def get(self) -> None:
        inst = self.instance()
        if inst.client is None:
            raise ApiError("unavailable", f"Instance {inst.name} is not running (state: {inst.state}).")
        raw = await inst.client.query_models()
        exposed = flatten_models(raw, self.services.cfg.lingma.context_windows)
        self.write_json(
            {
                "instance": inst.name,
                "logged_in": inst.logged_in,
                "raw": redact_json(raw),  # a custom model's entry may carry its own apiKey
                "exposed": [model.id for model in exposed],
                "aliases": self.services.cfg.lingma.model_aliases,
            }
        )
