"""How a native tool call's result goes back to Lingma (docs/protocol.md §6): in the reply to its
`tool/invoke`, or through `tool/invokeResult` after a null reply.

The plugin binary sends `async: true`: it takes a null reply at once and the result later. QoderCN takes
the result in the reply itself [reported, unverified]. So by default (`tools.native_result: auto`) a call
whose `async` is not true keeps its reply open until its result is known; `reply` and `invoke_result`
force one way for every call. A held reply is never left unanswered: when no result has come within the
hold time, it is answered with a failure.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lingma_proxy.upstream.dialects import timestamp_ms
from lingma_proxy.upstream.rpc import HOLD, RpcConnection

_log = logging.getLogger(__name__)

# A parked call is declined after lingma.rpc_timeout (completion/parking.py), which answers its held reply;
# the hold outlasts that by this much, so it only answers calls that nobody parked or declined.
HOLD_GRACE_SEC = 5.0


def tool_result(
    tool_call_id: str,
    name: str,
    *,
    success: bool,
    result: Any = None,
    error_message: str = "",
) -> dict:
    """The result of one call, as `tool/invokeResult` params; a held reply carries the same object."""
    return {
        "toolCallId": tool_call_id,
        "name": name,
        "success": success,
        "errorMessage": error_message,
        "result": result,
        "startTime": timestamp_ms(),
        "timeConsuming": 0,
    }


class ToolReplies:
    """The `tool/invoke` replies of one connection that wait for their results, by toolCallId."""

    def __init__(self, rpc: RpcConnection, mode: str, hold_sec: float) -> None:
        self._rpc = rpc
        self._mode = mode
        self._hold_sec = hold_sec
        self._held: dict[str, tuple[Any, asyncio.TimerHandle]] = {}
        if mode != "invoke_result":
            rpc.set_request_handler("tool/invoke", self._on_invoke)

    def answer(self, tool_call_id: str, result: dict) -> bool:
        """Send `result` as the held reply of this call; False when its reply was not held (it was a null one)."""
        held = self._held.pop(tool_call_id, None)
        if held is None:
            return False
        msg_id, expiry = held
        expiry.cancel()
        self._rpc.reply(msg_id, result)
        return True

    def _on_invoke(self, msg_id: Any, params: dict) -> Any:
        tool_call_id = str(params.get("toolCallId") or "")
        wants_result = self._mode == "reply" or params.get("async") is not True
        if not wants_result or not tool_call_id or tool_call_id in self._held:
            return None  # a call that could not be told apart from another gets the plain null reply
        name = str(params.get("name") or "")
        expiry = asyncio.get_running_loop().call_later(self._hold_sec, self._expire, tool_call_id, name)
        self._held[tool_call_id] = (msg_id, expiry)
        return HOLD

    def _expire(self, tool_call_id: str, name: str) -> None:
        held = self._held.pop(tool_call_id, None)
        if held is not None:
            _log.warning("native tool %s (%s): no result within %.0f s; answered as failed", name, tool_call_id,
                         self._hold_sec)  # fmt: skip
            failure = tool_result(tool_call_id, name, success=False, error_message="no result in time")
            self._rpc.reply(held[0], failure)
