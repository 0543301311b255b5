"""Lingma's own tool calls (`tool/invoke`, agent mode): decline them, or hand them to the client.

With `tools.forward_native` on, an allow-listed call goes to the client as an ordinary tool call and
the upstream chat is parked, still open, until the client's next request brings the result for that
call id; the result then goes back through `tool/invokeResult` and the same upstream stream continues
in the new response (docs/features.md §6). A parked chat whose result never comes is failed back to Lingma
after `lingma.rpc_timeout`, so it never holds a slot for ever.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import ujson

from ..config import ToolsConfig
from ..errors import ApiError
from ..events import NativeToolCall, ToolCall
from ..model import Conversation, ToolChoice
from ..upstream.client import ChatStream
from ..upstream.slots import Lease
from ..upstream.tool_replies import tool_result

log = logging.getLogger("lingma_proxy.native_tools")

_CALL_PREFIXES = ("call_", "toolu_")


def _bare_id(call_id: str) -> str:
    """Our ids are `call_<toolCallId>`; Anthropic clients see `toolu_<toolCallId>`."""
    for prefix in _CALL_PREFIXES:
        if call_id.startswith(prefix):
            return call_id[len(prefix) :]
    return call_id


def _client_id(call: NativeToolCall) -> str:
    return call.tool_call_id if call.tool_call_id.startswith("call_") else f"call_{call.tool_call_id}"


def as_client_call(call: NativeToolCall) -> ToolCall:
    return ToolCall(
        id=_client_id(call),
        name=call.name,
        arguments=ujson.dumps(call.parameters, ensure_ascii=False, escape_forward_slashes=False),
    )


def may_forward(cfg: ToolsConfig, call: NativeToolCall, choice: ToolChoice) -> bool:
    """Forwarded only when enabled, allow-listed, and not against a forced choice of a client tool."""
    if not cfg.forward_native or call.name not in cfg.allowlist:
        return False
    return choice.mode in ("auto", "required") or (choice.mode == "named" and choice.name == call.name)


async def decline(lease: Lease, call: NativeToolCall, why: str) -> None:
    """Tell Lingma the tool did not run, so the model can carry on without it."""
    log.info("native tool %s declined: %s", call.name, why)
    try:
        refusal = tool_result(call.tool_call_id, call.name, success=False, error_message=why)
        await lease.client.tool_invoke_result(refusal)
    except ApiError as err:
        log.warning("could not decline native tool %s: %s", call.name, err.message)


@dataclass
class ParkedChat:
    call: NativeToolCall
    stream: ChatStream
    lease: Lease
    session_id: str
    owner: str  # the API key that made the call: only its holder may bring the result
    expiry: asyncio.TimerHandle | None = None


@dataclass
class Resumption:
    parked: ParkedChat
    result: str
    is_error: bool


class ParkedChats:
    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._parked: dict[str, ParkedChat] = {}
        self._tasks: set[asyncio.Task] = set()

    def __len__(self) -> int:
        return len(self._parked)

    def park(self, parked: ParkedChat) -> None:
        key = f"{parked.owner}/{_bare_id(_client_id(parked.call))}"
        loop = asyncio.get_running_loop()
        parked.expiry = loop.call_later(self._timeout, self._expire, key)
        self._parked[key] = parked

    def claim(self, conv: Conversation, owner: str) -> Resumption | None:
        """The parked chat whose call the newest tool results answer, if any."""
        for message in reversed(conv.messages):
            if message.role != "tool":
                break
            parked = self._parked.pop(f"{owner}/{_bare_id(message.tool_call_id or '')}", None)
            if parked is not None:
                if parked.expiry is not None:
                    parked.expiry.cancel()
                return Resumption(parked, message.text, message.is_error)
        return None

    def _expire(self, key: str) -> None:
        parked = self._parked.pop(key, None)
        if parked is not None:
            task = asyncio.get_running_loop().create_task(self._abandon(parked))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _abandon(self, parked: ParkedChat) -> None:
        await decline(parked.lease, parked.call, "the client sent no result in time")
        await parked.stream.abandon()
        parked.lease.release()

    async def close(self) -> None:
        for key in list(self._parked):
            parked = self._parked.pop(key)
            if parked.expiry is not None:
                parked.expiry.cancel()
            await self._abandon(parked)
