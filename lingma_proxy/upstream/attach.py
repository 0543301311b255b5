"""Finding a Lingma or QoderCN runtime someone else runs, and how to reach it (docs/protocol.md §11.1-§11.3).

`lingma.attach` is `auto` (any family), a family name (`qodercn`, `lingma`), a `ws://` URL or a
`unix:///path`. For the first two, the §11.1 SharedClientCache folders are read in order, QoderCN's first;
each may hold `.info.json` or `.info` (`websocketPort`, `pid`, `ipcServerPath`), or only a `qodercn.sock` /
`lingma.sock`, and beside them `cache/machine_token.json`, whose token goes into the WebSocket upgrade
(§11.3). The lookup is repeated on every (re)connect, since an IDE that restarts its runtime moves it to a
new port.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import ujson

from .transport import UNIX, WEBSOCKET, Endpoint

_log = logging.getLogger(__name__)

FAMILIES = ("qodercn", "lingma")  # in order of preference when both run (§11.1)
INFO_FILES = (".info.json", ".info")
SOCKET_FILES = {"qodercn": ("qodercn.sock", "lingma.sock"), "lingma": ("lingma.sock", "qodercn.sock")}  # own first
TOKEN_FILE = Path("cache") / "machine_token.json"
_PIPE_PREFIX = "\\\\.\\pipe\\"


class NoAttachTarget(LookupError):
    """Nothing usable to attach to, or what was found cannot be used; the message is one line. The pool retries."""


@dataclass(frozen=True)
class InfoFolder:
    family: str  # qodercn | lingma
    path: Path


def shared_client_folders(home: Path, system: str, environ: Mapping[str, str]) -> list[InfoFolder]:
    """The §11.1 folders for `system` (Linux, Darwin, Windows, as platform.system() says), QoderCN's first."""
    system = system.lower()
    if system == "darwin":
        support = home / "Library" / "Application Support"
        own = [("qodercn", support / "QoderCN"), ("qodercn", support / "Qoder"), ("lingma", support / "Lingma")]
    elif system == "windows":
        appdata = Path(environ["APPDATA"]) if environ.get("APPDATA") else home / "AppData" / "Roaming"
        own = [("qodercn", appdata / "QoderCN"), ("lingma", appdata / "Lingma")]
    else:
        own = [("qodercn", home / ".config" / "QoderCN"), ("lingma", home / ".config" / "Lingma")]
    folders = [InfoFolder(family, _client_cache(path, "SharedClientCache")) for family, path in own] + [
        InfoFolder("qodercn", _client_cache(home / ".qodercn" / "vscode", "sharedClientCache")),
        InfoFolder("qodercn", home / ".qodercn"),
        InfoFolder("qodercn", home / ".qoder-cn"),
        InfoFolder("lingma", _client_cache(home / ".lingma" / "vscode", "sharedClientCache")),
        InfoFolder("lingma", home / ".lingma"),
    ]
    return sorted(folders, key=lambda folder: FAMILIES.index(folder.family))  # stable: order kept per family


def _client_cache(parent: Path, usual: str) -> Path:
    """<parent>/<usual>, or the other capitalisation of SharedClientCache when only that one exists (§11.1):
    the peers' sources spell it both ways, and Linux file names are case-sensitive."""
    other = usual[0].swapcase() + usual[1:]
    return parent / other if not (parent / usual).is_dir() and (parent / other).is_dir() else parent / usual


def resolve_attach(setting: str, home: Path, system: str, environ: Mapping[str, str]) -> Endpoint:
    """The endpoint `lingma.attach` names now; NoAttachTarget (one line) when there is none."""
    if setting.startswith(("ws://", "wss://")):
        return Endpoint(setting)
    if setting.startswith("unix://"):
        return Endpoint(setting[len("unix://"):], UNIX)
    if setting not in ("auto", *FAMILIES):
        raise NoAttachTarget(f"lingma.attach {setting!r} is none of auto, qodercn, lingma, ws://… or unix:///…")
    family = setting if setting in FAMILIES else ""
    folders = [f for f in shared_client_folders(home, system, environ) if not family or f.family == family]
    skipped: list[str] = []
    for folder in folders:
        endpoint = _endpoint_in(folder, home, skipped)
        if endpoint is not None:
            return endpoint
    who = {"qodercn": "QoderCN", "lingma": "Lingma"}.get(family, "Lingma or QoderCN")
    why = f"; skipped: {'; '.join(skipped)}" if skipped else ""
    raise NoAttachTarget(
        f"lingma.attach is {setting} but no running Lingma was found ({who}): looked in "
        f"{', '.join(_shown(f.path, home) for f in folders)}{why}. Start the IDE or the desktop app, or set "
        "lingma.attach: ws://127.0.0.1:PORT or unix:///path/to.sock"
    )


def _endpoint_in(folder: InfoFolder, home: Path, skipped: list[str]) -> Endpoint | None:
    """The runtime the folder's info file advertises, if it is alive; why not goes into `skipped`."""
    for name in INFO_FILES:
        path = folder.path / name
        try:
            body = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            continue
        except OSError as exc:
            skipped.append(f"{_shown(path, home)} is unreadable ({exc.strerror or exc})")
            continue
        port, pid, ipc_path = parse_info(body)
        if pid is not None and not _pid_alive(pid):
            skipped.append(f"{_shown(path, home)} is stale (pid {pid} is gone)")
            continue
        if port is None and not ipc_path:
            skipped.append(f"{_shown(path, home)} names neither a websocketPort nor an ipcServerPath")
            continue
        if port is None and ipc_path.startswith(_PIPE_PREFIX):
            skipped.append(f"{_shown(path, home)} names only a named pipe, which is not supported yet (§11.2)")
            continue
        # The WebSocket is the transport seen working against real runtimes (§2); the socket is [reported] (§11.2).
        if port is not None:
            return _found(folder, home, f"ws://127.0.0.1:{port}/", WEBSOCKET)
        return _found(folder, home, ipc_path, UNIX)
    return _socket_in(folder, home, skipped)


def _socket_in(folder: InfoFolder, home: Path, skipped: list[str]) -> Endpoint | None:
    """A runtime that exposes only a Unix socket in the folder, with no info file (§11.2) [reported]."""
    for name in SOCKET_FILES[folder.family]:
        path = folder.path / name
        try:
            mode = path.stat().st_mode
        except OSError:
            continue
        if not stat.S_ISSOCK(mode):
            skipped.append(f"{_shown(path, home)} is not a socket")
            continue
        return _found(folder, home, str(path), UNIX)
    return None


def _found(folder: InfoFolder, home: Path, address: str, transport: str) -> Endpoint:
    """The endpoint, with the machine token the folder holds for it (§11.3)."""
    token, token_path = read_machine_token(folder.path, home)
    return Endpoint(address, transport, family=folder.family, info_dir=folder.path, machine_token=token,
                    token_path=token_path)  # fmt: skip


def spawned_endpoint(url: str, work_dir: Path, home: Path) -> Endpoint:
    """A child we started: its work dir is its SharedClientCache, where a runtime that wants a token writes it."""
    token, token_path = read_machine_token(work_dir, home)
    return Endpoint(url, machine_token=token, token_path=token_path)


def read_machine_token(folder: Path, home: Path) -> tuple[str, Path | None]:
    """The `token` of <folder>/cache/machine_token.json (§11.3), or "" when there is no such file."""
    path = folder / TOKEN_FILE
    try:
        data = ujson.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "", None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not JSON"
        raise NoAttachTarget(f"cannot read the machine token {_shown(path, home)}: {reason}") from None
    token = data.get("token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        raise NoAttachTarget(f"cannot read the machine token {_shown(path, home)}: it holds no token")
    return token, path


def parse_info(body: str) -> tuple[int | None, int | None, str]:
    """JSON `{"websocketPort", "pid", "ipcServerPath"}`, or the older lines: port, pid, ipc path."""
    if body.startswith("{"):
        try:
            info = ujson.loads(body)
        except ValueError:
            return None, None, ""
        if not isinstance(info, dict):
            return None, None, ""
        ipc_path = info.get("ipcServerPath")
        return _positive_int(info.get("websocketPort")), _positive_int(info.get("pid")), str(ipc_path or "")
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    port = _positive_int(lines[0]) if lines else None
    pid = _positive_int(lines[1]) if len(lines) > 1 else None
    return port, pid, lines[2] if len(lines) > 2 else ""


def _shown(path: Path, home: Path) -> str:
    """~/… for paths under the home dir: shorter, and a pasted log line does not carry the login name."""
    try:
        return "~/" + path.relative_to(home).as_posix()
    except ValueError:
        return str(path)


def _positive_int(value: object) -> int | None:
    try:
        number = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":
        return True  # no cheap check without extra packages; the connection attempt will tell
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True
