"""Run a real nginx or HAProxy, from Debian's packages, on the shipped example config (examples/).

The example file is used as it ships: only its listen and server addresses are replaced, by free loopback
ports. The harness adds what a system install provides around it (nginx's main context and http block,
HAProxy's global section), with every file that the balancer writes kept in a temporary folder.
"""

from __future__ import annotations

import csv
import getpass
import io
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx

from harness.proxy import REPO, free_port

from .ops_support import wait_for

EXAMPLES = REPO / "examples"
# The addresses as the examples ship them, which the harness replaces.
LISTEN = {"nginx": "listen 8080;", "haproxy": "bind :8080"}
BACKENDS = ("10.0.0.11:8787", "10.0.0.12:8787")
EXAMPLE_FILE = {"nginx": "nginx.conf", "haproxy": "haproxy.cfg"}
HAPROXY_BACKEND = "lingma"  # the backend section's name in examples/haproxy.cfg


@dataclass
class Balancer:
    kind: str  # "nginx" or "haproxy"
    process: subprocess.Popen
    port: int
    tmp: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.tmp.glob("*.log")))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def missing_binary(kind: str) -> str | None:
    """Why `kind` cannot run here, or None when it is on PATH."""
    if shutil.which(kind):
        return None
    return f"{kind} is not on PATH; `./install.sh --dev` installs it from Debian's packages"


def render_example(kind: str, port: int, backend_ports: list[int]) -> str:
    """The shipped example with its listen and server addresses pointed at loopback ports."""
    text = (EXAMPLES / EXAMPLE_FILE[kind]).read_text()
    listen = {"nginx": f"listen 127.0.0.1:{port};", "haproxy": f"bind 127.0.0.1:{port}"}[kind]
    replacements = {LISTEN[kind]: listen}
    replacements.update((old, f"127.0.0.1:{new}") for old, new in zip(BACKENDS, backend_ports, strict=True))
    for old, new in replacements.items():
        # Fails loudly when the example changes shape, rather than testing something else.
        assert text.count(old) == 1, f"examples/{EXAMPLE_FILE[kind]} should contain {old!r} exactly once"
        text = text.replace(old, new)
    return text


def _nginx_command(tmp: Path) -> list[str]:
    (tmp / "nginx.conf").write_text(
        f"""user {getpass.getuser()};
worker_processes 1;  # one round-robin state: requests without affinity alternate strictly
daemon off;
pid {tmp}/nginx.pid;
events {{}}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/lingma.conf;
}}
"""
    )
    return ["nginx", "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-e", str(tmp / "error.log")]


def _haproxy_command(tmp: Path) -> list[str]:
    (tmp / "global.cfg").write_text(f"global\n    stats socket {tmp}/haproxy.sock mode 600 level admin\n")
    return ["haproxy", "-db", "-f", str(tmp / "global.cfg"), "-f", str(tmp / "lingma.conf")]


def start_balancer(kind: str, tmp: Path, backend_ports: list[int]) -> Balancer:
    """`kind` in front of the proxies on `backend_ports`, answering /healthz through it."""
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    (tmp / "lingma.conf").write_text(render_example(kind, port, backend_ports))
    command = _nginx_command(tmp) if kind == "nginx" else _haproxy_command(tmp)
    with open(tmp / "stdout.log", "wb") as log_file:
        process = subprocess.Popen(
            command, cwd=tmp, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    balancer = Balancer(kind, process, port, tmp)

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{kind} exited with {process.returncode}:\n{balancer.log_text()[-4000:]}")
        try:
            return httpx.get(f"{balancer.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(answers, f"{kind} to answer /healthz")
    except BaseException:
        balancer.stop()
        raise
    return balancer


def haproxy_servers(balancer: Balancer) -> dict[str, dict[str, str]]:
    """HAProxy's `show stat` row (status, check_status, ...) of each server of the example's backend."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(balancer.tmp / "haproxy.sock"))
        sock.sendall(b"show stat\n")
        reply = b"".join(iter(lambda: sock.recv(65536), b"")).decode()
    rows = csv.DictReader(io.StringIO(reply.removeprefix("# ")))
    return {
        row["svname"]: row
        for row in rows
        if row["pxname"] == HAPROXY_BACKEND and row["svname"] not in ("FRONTEND", "BACKEND")
    }
