"""The Lingma child process: spawn under pexpect, drain its output, notice its death, stop it.

pexpect owns the child (docs/protocol.md §1); all RPC goes over the WebSocket, never the PTY.
docs/architecture.md "The PTY, measured on this machine": the PTY goes raw right after spawn, and one reader
drains the child's output for as long as it lives, so a chatty child never blocks on its stdout.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import tty
from collections.abc import Callable, Mapping
from pathlib import Path

import pexpect

from .. import websocket
from .child_output import ChildOutput
from .listeners import Owner, listener_owner
from .transport import MAX_MESSAGE_BYTES

_READY_POLL_SEC = 0.2  # docs/protocol.md §1: poll the socket every 200 ms
_EXIT_POLL_SEC = 0.05
_ALIVE_CHECK_SEC = 0.5  # a child may die with its PTY still held open by a grandchild


class LingmaStartError(RuntimeError):
    """The child died, or never opened its socket, during start(); the message carries its last output."""


class PortTakenError(LingmaStartError):
    """Another process listens on the child's port: never connect to it (upstream/listeners.py)."""


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago (the usual bind-to-0 race applies)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LingmaProcess:
    """One Lingma (or simulator) child on a private work dir and pair of ports."""

    def __init__(
        self,
        executable: list[str],
        work_dir: Path,
        socket_port: int,
        http_port: int,
        *,
        env: Mapping[str, str] | None = None,
        name: str = "lingma",
        log: logging.Logger,
        redact: Callable[[str], str] = lambda line: line,
    ) -> None:
        self.executable = list(executable)
        self.work_dir = Path(work_dir)
        self.socket_port = socket_port
        self.http_port = http_port
        self.name = name
        self.on_exit: Callable[[int | None], None] | None = None  # called with exit_status
        self._env = dict(env or {})  # added to (and overriding) this process's environment
        self._log = log
        self._redact = redact
        self._child: pexpect.spawn | None = None
        self._output: ChildOutput | None = None
        self._exited = asyncio.Event()
        self._exit_status: int | None = None
        self._monitor: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.socket_port}/"

    @property
    def argv(self) -> list[str]:
        return self.executable + [
            "start",
            "--transportType=websocket",
            f"--workDir={self.work_dir}",
            f"--socketPort={self.socket_port}",
            f"--httpPort={self.http_port}",
        ]

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    @property
    def alive(self) -> bool:
        return self._child is not None and not self._exited.is_set()

    @property
    def exit_status(self) -> int | None:
        """The exit code, or -signal when a signal ended it; None while it runs (or before start)."""
        return self._exit_status

    def output_tail(self, n: int = 20) -> list[str]:
        """The last n lines the child printed, already redacted."""
        return self._output.tail(n) if self._output is not None else []

    async def start(self, timeout: float) -> None:
        """Spawn the child and return once its WebSocket accepts a connection."""
        if self._child is not None:
            raise RuntimeError(f"{self.name}: already started")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        argv = self.argv
        self._log.info("%s: starting %s", self.name, " ".join(argv))
        env = {**os.environ, **self._env}
        child = pexpect.spawn(argv[0], argv[1:], env=env, echo=False, encoding=None)
        self._child = child
        # Raw mode stops the line discipline from cutting or rewriting anything (docs/architecture.md, the PTY).
        tty.setraw(child.child_fd)
        # pexpect's close() sleeps between closing and reaping; we only close once the child is reaped.
        child.ptyproc.delayafterclose = 0
        self._output = ChildOutput(child.child_fd, self._log_line, self._redact)
        self._monitor = asyncio.create_task(self._watch_exit(), name=f"{self.name}-exit-watch")
        try:
            await self._wait_ready(timeout)
        except BaseException:
            await self.stop()
            raise
        self._log.info("%s: ready on %s (pid %s)", self.name, self.url, self.pid)

    async def wait_exit(self) -> int | None:
        await self._exited.wait()
        return self._exit_status

    async def stop(self, grace: float = 3.0) -> None:
        """SIGINT, then SIGKILL after `grace` seconds; always reaps. Safe to call again."""
        if self._child is None or self._exited.is_set():
            if self._monitor is not None:
                await self._monitor
            return
        self._signal(signal.SIGINT)
        try:
            await asyncio.wait_for(asyncio.shield(self._exited.wait()), grace)
        except TimeoutError:
            self._log.warning("%s: no exit %.1fs after SIGINT; killing", self.name, grace)
            self._signal(signal.SIGKILL)
            await self._exited.wait()
        if self._monitor is not None:
            await self._monitor

    async def _wait_ready(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self._exited.is_set():
                raise LingmaStartError(self._died_message("exited during start-up"))
            owner = listener_owner(self._child.pid, self.socket_port)
            if owner is Owner.STRANGER:
                raise PortTakenError(
                    f"{self.name}: port {self.socket_port} is held by another process, not by the Lingma child; "
                    "refusing to talk to it"
                )
            if owner is not Owner.NOBODY and await self._socket_accepts(min(1.0, max(0.05, deadline - loop.time()))):
                return
            if loop.time() >= deadline:
                raise LingmaStartError(self._died_message(f"did not open {self.url} within {timeout:g}s"))
            await asyncio.sleep(_READY_POLL_SEC)

    async def _socket_accepts(self, timeout: float) -> bool:
        try:
            conn = await asyncio.wait_for(
                websocket.connect(self.url, lambda message: None, max_message_bytes=MAX_MESSAGE_BYTES), timeout
            )
        except websocket.HandshakeRefused as exc:
            # A runtime that wants a machine token (§11.3) refuses this bare upgrade: it is up all the same.
            if exc.status in (401, 403):
                return True
            self._log.debug("%s: not ready yet (%r)", self.name, exc)
            return False
        except (TimeoutError, OSError) as exc:
            self._log.debug("%s: not ready yet (%r)", self.name, exc)
            return False
        conn.close()
        return True

    def _died_message(self, what: str) -> str:
        status = f" (exit status {self._exit_status})" if self._exited.is_set() else ""
        tail = "\n  ".join(self.output_tail(15)) or "(no output)"
        return f"{self.name}: {' '.join(self.argv)} {what}{status}; last output:\n  {tail}"

    def _signal(self, signum: int) -> None:
        try:
            os.kill(self._child.pid, signum)
        except ProcessLookupError:
            pass  # already gone; the exit watcher reaps it

    def _log_line(self, line: str) -> None:
        self._log.debug("%s: %s", self.name, line)

    def _child_alive(self) -> bool:
        try:
            return self._child.isalive()
        except pexpect.ExceptionPexpect as exc:  # ECHILD: some other waitpid() reaped it first
            self._log.warning("%s: lost track of the child: %s", self.name, exc)
            return False

    async def _watch_exit(self) -> None:
        """Reap the child as soon as it dies, then tell on_exit. Woken early by EOF on its output."""
        child = self._child
        output = self._output
        assert output is not None
        while self._child_alive():
            if output.closed.is_set():
                await asyncio.sleep(_EXIT_POLL_SEC)
                continue
            try:
                await asyncio.wait_for(output.closed.wait(), _ALIVE_CHECK_SEC)
            except TimeoutError:
                pass
        output.drain_remaining()
        try:
            child.close()  # closes the PTY fd; the child is already reaped, so this does not block
        except pexpect.ExceptionPexpect:
            os.close(output.fd)  # reaped elsewhere (see _child_alive); the fd is still ours to close
        self._exit_status = child.exitstatus if child.signalstatus is None else -child.signalstatus
        self._log.log(
            logging.INFO if self._exit_status in (0, -signal.SIGINT) else logging.WARNING,
            "%s: exited with status %s",
            self.name,
            self._exit_status,
        )
        self._exited.set()
        if self.on_exit is not None:
            self.on_exit(self._exit_status)
