"""An instance's Lingma child: made for its work dir and ports, and stopped with its connection."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..redact import Redactor
from .process import LingmaProcess

if TYPE_CHECKING:
    from .pool import Instance, Upstream


def new_child(inst: Instance, upstream: Upstream, redactor: Redactor) -> LingmaProcess:
    """The child for `inst`'s work dir and ports; its output is logged under the instance's name, redacted."""
    return LingmaProcess(
        upstream.command,
        inst.work_dir,
        inst.socket_port,
        inst.http_port,
        env=upstream.env,
        name=inst.name,
        log=logging.getLogger(f"lingma_proxy.child.{inst.name}"),
        redact=redactor.redact,
    )


async def stop_child(inst: Instance) -> None:
    """Close the connection (keeping its error counts for /metrics), then stop the child and reap it; the
    instance is then stopped, unless it failed (a failure stays visible until the restart)."""
    client, process = inst.client, inst.process
    inst.client = None
    inst.process = None
    if client is not None:
        inst.keep_rpc_errors(client.rpc.error_counts)
        client.close()
    if process is not None:
        await process.stop()
    if inst.state != "failed":
        inst.state = "stopped"
