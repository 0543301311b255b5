"""make_app(): routes and wiring; serve(): startup, the startup summary, signals and graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import tornado.netutil
import tornado.web

from . import tokens
from .completion import CompletionService
from .completion.reuse_trust import ReuseTrust
from .config import Config, secret_values
from .debug_ring import RequestRing
from .errors import ApiError
from .filemodes import UnsafeWorkDir, secure_files
from .handlers.admin import AutoLoginStartHandler, AutoLoginStatusHandler, RawModelsHandler, SessionExportHandler
from .handlers.anthropic import CountTokensHandler, MessagesHandler
from .handlers.base import NotFoundHandler
from .handlers.diagnostics import DebugRequestsHandler, EffectiveConfigHandler
from .handlers.ollama import ollama_routes
from .handlers.openai import ChatCompletionsHandler, ModelsHandler
from .handlers.ops import CapabilitiesHandler, HealthHandler, HelloHandler, MetricsHandler, V1CapabilitiesHandler
from .handlers.responses import ResponsesHandler
from .handlers.stats import StatsHandler
from .handlers.status import StatusHandler, StatusPageHandler
from .handlers.usage import UsageHandler
from .http_server import GuardedHTTPServer, connection_cap, raise_descriptor_limit
from .login.bundle_import import BundleImporter
from .login.manager import LoginManager
from .logs import setup_logging
from .metrics import Metrics
from .models import ModelRegistry
from .recent_requests import RecentRequests
from .redact import Redactor
from .response_store import ResponseStore
from .reuse_verdicts import VerdictStore
from .services import Services
from .sessions import SessionCache, SessionEntry
from .startup_summary import auth_warnings, listen_url, summary_lines
from .upstream.choice import choose_upstream
from .upstream.pool import Pool
from .usage.recorder import usage_recorder

log = logging.getLogger("lingma_proxy")
_background: set[asyncio.Task] = set()


def make_app(services: Services) -> tornado.web.Application:
    ctx = {"services": services}
    routes = [
        (r"/", StatusPageHandler, ctx),
        (r"/healthz", HealthHandler, ctx),
        (r"/api/hello", HelloHandler, ctx),
        *ollama_routes(ctx),
        (r"/v1/models", ModelsHandler, ctx),
        (r"/v1/chat/completions", ChatCompletionsHandler, ctx),
        (r"/(?:v1/)?responses", ResponsesHandler, ctx),
        (r"/v1/messages", MessagesHandler, ctx),
        (r"/v1/messages/count_tokens", CountTokensHandler, ctx),
        (r"/capabilities", CapabilitiesHandler, ctx),
        (r"/v1/capabilities", V1CapabilitiesHandler, ctx),
        (r"/metrics", MetricsHandler, ctx),
        (r"/internal/stats", StatsHandler, ctx),
        (r"/internal/status", StatusHandler, ctx),
        (r"/internal/usage", UsageHandler, ctx),
        (r"/internal/effective-config", EffectiveConfigHandler, ctx),
        (r"/internal/debug/requests", DebugRequestsHandler, ctx),
        (r"/internal/auto-login/start", AutoLoginStartHandler, ctx),
        (r"/internal/auto-login/status", AutoLoginStatusHandler, ctx),
        (r"/internal/session/export", SessionExportHandler, ctx),
        (r"/internal/models/raw", RawModelsHandler, ctx),
    ]
    return tornado.web.Application(
        routes,
        default_handler_class=NotFoundHandler,
        default_handler_args=ctx,
        log_function=lambda handler: None,  # BaseHandler.on_finish writes the one access line per request
    )


def build_services(cfg: Config, redactor: Redactor) -> Services:
    upstream = choose_upstream(cfg)
    bundles = BundleImporter()
    pool = Pool(cfg, upstream, redactor, prepare_work_dir=bundles.prepare_work_dir)
    models = ModelRegistry(cfg.lingma, pool)
    verdicts = VerdictStore(Path(cfg.lingma.work_dir))
    reuse = ReuseTrust(cfg.sessions.reuse, cfg.lingma.default_model, pool, models, verdicts)
    sessions = SessionCache(cfg.sessions, lambda entry: _delete_upstream_session(pool, entry), reuse.allowed)
    pool.restart_listeners.append(lambda inst: sessions.forget_instance(inst.name))
    metrics = Metrics(pool, sessions)
    login = LoginManager(cfg, pool, redactor, bundles.errors)
    login.result_listeners.append(lambda result: metrics.logins.labels(result).inc())
    return Services(
        cfg=cfg,
        upstream=upstream,
        redactor=redactor,
        pool=pool,
        models=models,
        completions=CompletionService(cfg, pool, models, sessions, metrics, before_acquire=login.log_in_if_nobody_is),
        sessions=sessions,
        reuse=reuse,
        responses=ResponseStore(max_bytes=cfg.limits.response_store_bytes),
        metrics=metrics,
        debug_ring=RequestRing(redactor),
        login=login,
        recent=RecentRequests(),
        usage=usage_recorder(cfg, pool),
    )


def _delete_upstream_session(pool: Pool, entry: SessionEntry) -> None:
    """Evicted sessions are deleted upstream so they don't pile up in the account (best effort)."""
    inst = next((i for i in pool.instances if i.name == entry.instance), None)
    if inst is None or not inst.usable or inst.generation != entry.generation:
        return
    client = inst.client
    assert client is not None

    async def delete() -> None:
        try:
            await client.delete_session(entry.session_id)
        except (TimeoutError, ApiError, ConnectionError) as exc:
            log.debug("could not delete upstream session: %r", exc)

    task = asyncio.get_running_loop().create_task(delete())
    _background.add(task)  # the loop keeps only weak references to tasks
    task.add_done_callback(_background.discard)


def log_startup_summary(cfg: Config, port: int, services: Services) -> None:
    """One block once the pool has started; the risky auth choices follow as warnings of their own."""
    lines = summary_lines(cfg, port, services.upstream, services.pool.instances)
    if services.pool.login_hint.ide_runtime:  # the pool looked, because an instance is logged out
        lines.append(f"  login:       {services.pool.login_hint.text()}")
    log.info("%s", "\n".join([*lines, f"  {services.reuse.summary()}"]))
    for warning in auth_warnings(cfg, port):
        log.warning("%s", warning)


async def serve(cfg: Config) -> int:
    redactor = Redactor(secret_values(cfg))
    setup_logging(cfg.server.log_level, cfg.server.log_format, redactor)
    tokens.warm_up()
    try:
        secure_files(cfg)
    except UnsafeWorkDir as err:
        log.error("%s", err)
        return 2
    try:
        services = build_services(cfg, redactor)
    except ApiError as err:
        log.error("%s", err.message)
        return 2
    server = GuardedHTTPServer(
        make_app(services),
        header_timeout=cfg.server.header_timeout_sec,
        idle_timeout=cfg.server.idle_timeout_sec,
        body_timeout=cfg.server.body_timeout_sec,
        max_connections=connection_cap(cfg.limits.max_connections, raise_descriptor_limit()),
        max_body_size=max(64 * 1024 * 1024, 2 * cfg.limits.max_body_bytes),
    )
    sockets = tornado.netutil.bind_sockets(cfg.server.port, address=cfg.server.host)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    log.info(
        "lingma-proxy listening on %s; starting %d Lingma instance(s)",
        listen_url(cfg.server.host, port),
        len(services.pool.instances),
    )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    pool_start = asyncio.create_task(services.pool.start())
    pool_start.add_done_callback(lambda task: task.cancelled() or log_startup_summary(cfg, port, services))
    services.login.start_background()  # with login.auto_login: logs in logged-out instances as they appear
    await stop.wait()

    log.info(
        "shutting down: no new connections; waiting up to %.0fs for in-flight requests", cfg.server.shutdown_grace_sec
    )
    server.stop()
    deadline = loop.time() + cfg.server.shutdown_grace_sec
    while services.active and loop.time() < deadline:
        await asyncio.sleep(0.05)
    for handler in list(services.active):
        handler.end_for_shutdown()
    while services.active and loop.time() < deadline + 5:
        await asyncio.sleep(0.05)
    pool_start.cancel()
    await services.login.stop()  # before the pool: a login flow closes its browser on the way out
    await services.completions.native.close()
    await services.pool.stop()
    await asyncio.to_thread(services.usage.ledger.close)  # writes the rows still pending
    await server.close_all_connections()
    log.info("stopped")
    return 0
