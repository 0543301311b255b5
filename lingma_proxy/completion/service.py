"""One completion, whatever API asked for it: Conversation in, OutputEvents then one Finish out.

The service checks and renders a request (prepared.py), takes an upstream slot, and runs one Turn on it
(turn.py); a native tool call handed to the client parks the chat until its result comes (parking.py).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from ..config import Config
from ..errors import ApiError, bad_request
from ..events import Finish, OutputEvent
from ..metrics import Metrics
from ..model import Conversation
from ..models import ModelRegistry
from ..prompt import newest_turn_images
from ..sessions import ReusePlan, SessionCache, SessionEntry
from ..upstream.pool import Pool
from ..upstream.slots import Lease
from .calibration import TokenCalibration
from .fallback import ModelFallback
from .images import check_images_forwardable
from .parking import ParkedChat, ParkedChats
from .prepared import Prepared, rendered_prompt
from .turn import Turn, TurnContext

log = logging.getLogger("lingma_proxy.completion")


class CompletionService:
    def __init__(
        self,
        cfg: Config,
        pool: Pool,
        models: ModelRegistry,
        sessions: SessionCache,
        metrics: Metrics,
        before_acquire: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`before_acquire` runs before a slot is taken: the login manager logs someone in there when
        nobody is (login.auto_login), so the pool itself never waits on a browser."""
        self.cfg = cfg
        self.pool = pool
        self.models = models
        self.sessions = sessions
        self.metrics = metrics
        self.native = ParkedChats(timeout=cfg.lingma.rpc_timeout)
        self.calibration = TokenCalibration()
        self._before_acquire = before_acquire
        self._turn_context = TurnContext(
            ask_mode=cfg.lingma.default_ask_mode,
            context_usage=cfg.lingma.context_usage,
            queue_wait_sec=cfg.lingma.queue_wait_sec,
            tools=cfg.tools,
            sessions=sessions,
            metrics=metrics,
            recycle=pool.recycle,
        )

    async def count_tokens(self, conv: Conversation) -> int:
        """The input tokens a request for this conversation would report, rendered as it would be."""
        _, input_tokens = await rendered_prompt(conv, attach_images=bool(newest_turn_images(conv)))
        return input_tokens

    async def prepare(self, conv: Conversation, started: float, api_key_id: str = "") -> Prepared:
        """Checks that need no upstream slot: model, images, tools; then the prompt and its token count."""
        model = await self.models.resolve(conv.model)
        images = newest_turn_images(conv)
        if images:
            lingma = self.cfg.lingma
            check_images_forwardable(images, model, lingma.dialect, self.pool.dialects, lingma.classic_images)
        if conv.tools and self.cfg.tools.emulation == "off":
            raise bad_request("Tool calling is disabled on this proxy (tools.emulation: off).", param="tools")
        prompt, input_tokens = await rendered_prompt(conv, attach_images=bool(images))
        if input_tokens > model.context_window:
            # Worded as both vendors word it: Claude Code and Codex compact the conversation on it.
            raise ApiError(
                "invalid_request",
                f"prompt is too long: {input_tokens} tokens > {model.context_window} maximum (this model's "
                f"maximum context length is {model.context_window} tokens; compact the conversation).",
                code="context_length_exceeded",
            )
        return Prepared(conv, model.id, prompt, input_tokens, started, api_key_id, images)

    async def run(self, prepared: Prepared) -> AsyncIterator[OutputEvent | Finish]:
        """Take a slot, stream the answer, always release the slot and stop the upstream if abandoned."""
        resumption = self.native.claim(prepared.conv, prepared.api_key_id)
        if resumption is not None:
            parked = resumption.parked
            lease = parked.lease
            turn = Turn(self._turn_context, prepared, lease, ReusePlan(None, 0), session_id=parked.session_id)
            events = turn.resume(resumption)
        else:
            lease, plan = await self._acquire(prepared)
            turn = Turn(self._turn_context, prepared, lease, plan)
            events = turn.events()
        fallback = ModelFallback(self.cfg.lingma.fallback_models, prepared.model)
        try:
            while True:
                try:
                    async for event in events:
                        yield event
                    return
                except ApiError as err:
                    model = None if turn.upstream_spoke else await self._fallback(fallback, prepared.model, err)
                    if model is None:
                        raise
                # Nothing reached the client: the same slot asks the next model, in a new session.
                self.sessions.discard(SessionEntry(lease.instance.name, lease.generation, turn.session_id))
                self.metrics.model_fallbacks.labels(prepared.model, model).inc()
                prepared.model = model  # the response names the model that answered
                turn = Turn(self._turn_context, prepared, lease, ReusePlan(None, 0))
                events = turn.events()
        finally:
            self._settle(turn, lease)

    async def _fallback(self, fallback: ModelFallback, current: str, err: ApiError) -> str | None:
        while (key := fallback.next_model(current, err)) is not None:
            found = await self.models.find(key)
            if found is not None:
                log.warning("model %s failed (%s); trying %s (lingma.fallback_models)", current, err.code, found.id)
                return found.id
            log.warning("lingma.fallback_models: the account has no model %r; skipping it", key)
        return None

    async def _acquire(self, prepared: Prepared) -> tuple[Lease, ReusePlan]:
        conv = prepared.conv
        if self._before_acquire is not None:
            await self._before_acquire()
        plan = self.sessions.plan(prepared.api_key_id, prepared.model, conv)
        try:
            lease = await self.pool.acquire(affinity_key(conv), prefer=plan.entry.instance if plan.entry else None)
        except ApiError:
            if plan.entry:
                self.sessions.abandon(plan.entry)
            raise
        if plan.entry and (lease.instance.name, lease.generation) != (plan.entry.instance, plan.entry.generation):
            self.sessions.abandon(plan.entry)  # its instance is busy or was restarted: resend everything
            plan = ReusePlan(None, 0)
        return lease, plan

    def _settle(self, turn: Turn, lease: Lease) -> None:
        prepared, context = turn.prepared, turn.upstream_context_tokens
        self.calibration.observe(prepared.model, context, turn.output.tokens(), prepared.input_tokens)
        if turn.parked_call is not None and turn.stream is not None:
            # A native tool call went to the client: the upstream chat waits, slot and all, for its result.
            owner = turn.prepared.api_key_id
            self.native.park(ParkedChat(turn.parked_call, turn.stream, lease, turn.session_id, owner))
            return
        if not turn.stored:
            self.sessions.discard(SessionEntry(lease.instance.name, lease.generation, turn.session_id))
        lease.release()


def affinity_key(conv: Conversation) -> str:
    """The client's own key, else the system prompt, else the first message (docs/features.md §2)."""
    if conv.affinity_key:
        return "client:" + conv.affinity_key
    system = conv.system or next((m.text for m in conv.messages if m.role == "system"), "")
    basis = system or (conv.messages[0].text if conv.messages else "")
    return "hash:" + hashlib.sha256(basis.encode("utf-8")).hexdigest()
