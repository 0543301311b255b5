"""Whether a logged-in Lingma or QoderCN that an IDE or the desktop app runs could serve instead of the proxy's
own logged-out instances (docs/features.md §2, attach mode).

Asked when an instance of the proxy's own turns out logged out: the §11.1 folders are read as
`lingma.attach: auto` reads them, and the runtime found is asked `auth/status` over a connection of its own,
closed at once. Nothing is kept from it but one line for the log, the startup summary and the 503 message.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from ..config import HostFacts
from .attach import NoAttachTarget, resolve_attach
from .client import initialize_params, is_logged_in
from .failures import LOGIN_HINT
from .rpc import ConnectionLost, RpcConnection, RpcError, RpcTimeout

_log = logging.getLogger(__name__)

CHECK_TIMEOUT_SEC = 3.0
_FAMILY_NAMES = {"qodercn": "QoderCN", "lingma": "Lingma"}


class LoginHint:
    """What to tell the user while an instance of the proxy's own is logged out."""

    def __init__(self, host: HostFacts, attached: bool) -> None:
        self._host = host
        self._attached = attached
        self.ide_runtime = ""  # "a logged-in QoderCN is running (…)", as last seen

    async def look(self, workspace: Path) -> None:
        """Look again for a logged-in IDE runtime (an attached proxy already uses the one there is)."""
        if self._attached:
            return
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SEC):
                self.ide_runtime = await logged_in_ide_runtime(self._host, workspace)
        except Exception:  # only a hint: looking must never cost the instance its own login check
            _log.debug("looking for a logged-in IDE runtime failed", exc_info=True)
            self.ide_runtime = ""

    def text(self) -> str:
        if self.ide_runtime:
            return (
                f"{self.ide_runtime}: set lingma.attach: auto to use its login, or run `python lingma_proxy.py login`"
            )
        return LOGIN_HINT


async def logged_in_ide_runtime(host: HostFacts, workspace: Path) -> str:
    """"a logged-in QoderCN is running (ws://127.0.0.1:36510/)" when there is one, else ""."""
    try:
        endpoint = resolve_attach("auto", host.home, host.system, host.places)
    except NoAttachTarget:
        return ""
    try:
        rpc = await RpcConnection.connect(endpoint, CHECK_TIMEOUT_SEC)
    except (RpcTimeout, ConnectionLost) as exc:
        _log.debug("a Lingma is advertised at %s but did not answer: %r", endpoint, exc)
        return ""
    try:
        await rpc.call("initialize", initialize_params("auto", workspace), CHECK_TIMEOUT_SEC)
        status = await rpc.call("auth/status", {}, CHECK_TIMEOUT_SEC)
    except (RpcError, RpcTimeout, ConnectionLost) as exc:
        _log.debug("could not ask the Lingma at %s whether it is logged in: %r", endpoint, exc)
        return ""
    finally:
        rpc.close()
    if not is_logged_in(status):
        return ""
    return f"a logged-in {_FAMILY_NAMES.get(endpoint.family, 'Lingma')} is running ({endpoint})"
