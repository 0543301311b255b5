"""Wiring: builds the simulator's services, prepares the work dir, and serves both ports until a signal."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from typing import Any

from tornado.web import Application

from lingma_proxy.simulator.acp import AcpMethods
from lingma_proxy.simulator.auth import Auth
from lingma_proxy.simulator.chat import ChatEngine
from lingma_proxy.simulator.classic import ClassicMethods
from lingma_proxy.simulator.images import ImageUploads
from lingma_proxy.simulator.login_page import LoginCallbackHandler, LoginPageHandler
from lingma_proxy.simulator.scenario import Scenario
from lingma_proxy.simulator.server import Services, serve_unix_socket, serve_websocket
from lingma_proxy.simulator.sessions import SessionStore
from lingma_proxy.simulator.settings import SimSettings
from lingma_proxy.simulator.state import DEMO_USERNAME, UserRecord, WorkDir
from lingma_proxy.simulator.stats import SimStats
from lingma_proxy.simulator.status_page import SessionTurnsHandler, SimStatusHandler

log = logging.getLogger("lingma.sim")

LOOPBACK = "127.0.0.1"


class Simulator:
    def __init__(self, settings: SimSettings) -> None:
        self.settings = settings
        self.work_dir = WorkDir(settings.work_dir)
        self.stats = SimStats()
        self.sessions = SessionStore(settings.forget_history)
        self.auth = Auth(self.work_dir, settings.http_port, settings.password)
        scenario = Scenario(settings.scenario_path)
        self.engine = ChatEngine(self.stats, self.sessions, scenario, self.auth, settings.max_concurrent)
        self.methods = ClassicMethods(
            self.auth, self.work_dir, self.engine, self.sessions, scenario, ImageUploads(self.stats, settings.family),
            settings.family, settings.usage_sync,
        ).table()
        if settings.dialect == "acp":
            self.methods.update(AcpMethods(self.engine, self.sessions, self.stats, settings.family).table())

    def prepare_work_dir(self) -> None:
        """A fresh work dir starts logged in as the demo user (unless told otherwise); an old one keeps its state."""
        fresh = self.work_dir.is_fresh()
        self.work_dir.machine_id()
        if fresh and not self.settings.start_logged_out:
            self.work_dir.write_user(UserRecord.new_login(DEMO_USERNAME))
        user = self.auth.user()
        log.info("work dir %s: %s", self.work_dir.root, f"logged in as {user.name}" if user else "logged out")

    def status(self) -> dict[str, Any]:
        user = self.auth.user()
        return {
            "dialect": self.settings.dialect,
            "family": self.settings.family,
            "transport": self.settings.transport,
            "logged_in": user is not None,
            "username": user.name if user else "",
            **self.stats.snapshot(),
            "sessions": self.sessions.turn_counts(),
            "deleted_sessions": list(self.sessions.deleted),
            "endpoint": self.work_dir.endpoint(),
        }

    def http_app(self) -> Application:
        return Application(
            [
                (r"/lingma/login", LoginPageHandler, {"auth": self.auth}),
                (r"/auth/callback", LoginCallbackHandler, {"auth": self.auth}),
                (r"/sim/status", SimStatusHandler, {"snapshot": self.status}),
                (r"/sim/sessions/(.+)", SessionTurnsHandler, {"sessions": self.sessions}),
            ]
        )

    def services(self) -> Services:
        token = self.work_dir.new_machine_token() if self.settings.require_machine_token else ""
        settings = self.settings
        return Services(
            self.methods, self.engine, self.stats, settings.dialect, settings.family, settings.ack_timeout_sec, token
        )

    async def _listen(self, services: Services) -> tuple[str, Callable[[], None]]:
        """Open the RPC listener and advertise it in .info.json; returns where it is and how to close it."""
        if self.settings.transport == "unix":
            path = self.work_dir.socket_path(self.settings.family)
            unix_server = await serve_unix_socket(path, services)
            self.work_dir.write_info(0, os.getpid(), str(path))

            def close() -> None:
                unix_server.close()
                path.unlink(missing_ok=True)

            return f"unix://{path}", close
        socket_server = await serve_websocket(LOOPBACK, self.settings.socket_port, services)
        self.work_dir.write_info(self.settings.socket_port, os.getpid())
        return f"ws://{LOOPBACK}:{self.settings.socket_port}", socket_server.close

    async def serve(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        http_server = self.http_app().listen(self.settings.http_port, address=LOOPBACK)
        where, close = await self._listen(self.services())
        log.info(
            "%s, dialect %s, login page on http://%s:%d",
            self.settings.family, self.settings.dialect, LOOPBACK, self.settings.http_port,
        )
        print(f"lingma simulator listening on {where}", flush=True)
        await stop.wait()
        log.info("stopping on signal")
        close()
        http_server.stop()
