"""Finding a Lingma language-service binary, or a running Lingma to attach to (docs/protocol.md §1).

Only the service binary named `Lingma` (`Lingma.exe`) is ever picked: `lingmacli` is a user tool and
`LingmaLocal.exe` / `LingmaWin7.exe` are other builds, and exact file names keep them out.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
from collections.abc import Mapping
from pathlib import Path

import ujson

_log = logging.getLogger(__name__)

_DESKTOP_BIN = Path("Contents/Resources/app/resources/bin")  # inside Lingma.app
_WINDOWS_BIN = Path("Lingma/resources/app/resources/bin")  # under Programs (LOCALAPPDATA) or ProgramFiles
_ACTIVE_VERSION_KEY = "cosy.core.version"


def platform_tag(system: str | None = None, machine: str | None = None) -> str:
    """The binary dir name for this machine: x86_64_linux, aarch64_darwin, x86_64_windows, ..."""
    system = (system or platform.system()).lower()
    machine = (machine or platform.machine()).lower()
    arch = "aarch64" if machine in ("arm64", "aarch64", "armv8", "armv8l") else "x86_64"
    os_name = {"darwin": "darwin", "windows": "windows"}.get(system, "linux")
    return f"{arch}_{os_name}"


_this_platform_tag = platform_tag  # find_lingma_binary's parameter of the same name shadows it


def binary_name(tag: str) -> str:
    return "Lingma.exe" if tag.endswith("_windows") else "Lingma"


def simulator_command() -> list[str]:
    """The argv prefix that starts the bundled simulator exactly as the real binary is started."""
    return [sys.executable, "-m", "lingma_proxy.simulator"]


def find_lingma_binary(
    setting: str, environ: Mapping[str, str], home: Path, platform_tag: str | None = None
) -> Path | None:
    """An explicit path (config, then LINGMA_BINARY) wins; else the IDE plugin's active binary; else the
    desktop app's. None when nothing usable is found, or when the explicit path is not an executable."""
    if setting == "simulator":
        return None
    explicit = setting if setting not in ("", "auto") else environ.get("LINGMA_BINARY", "")
    if explicit:
        path = Path(explicit).expanduser()
        if _is_executable(path):
            return path
        _log.warning("Lingma binary %s does not exist or is not executable", path)
        return None
    tag = platform_tag or _this_platform_tag()
    return _plugin_binary(home, tag) or next(
        (path for path in _desktop_candidates(environ, home, tag) if _is_executable(path)), None
    )


def _plugin_binary(home: Path, tag: str) -> Path | None:
    """~/.lingma/bin/<version>/<platform>/Lingma: the active version, else the newest version dir."""
    bin_root = home / ".lingma" / "bin"
    name = binary_name(tag)
    active = _active_plugin_version(bin_root / "config.json")
    if active:
        path = bin_root / active / tag / name
        if _is_executable(path):
            return path
        _log.info("active Lingma plugin version %s has no %s; trying the newest installed", active, path)
    try:
        version_dirs = [entry for entry in bin_root.iterdir() if entry.is_dir()]
    except OSError:
        return None
    for version_dir in sorted(version_dirs, key=_mtime, reverse=True):
        path = version_dir / tag / name
        if _is_executable(path):
            return path
    return None


def _active_plugin_version(config_path: Path) -> str:
    """The flat key "cosy.core.version" of ~/.lingma/bin/config.json (a literal dotted key, not nesting)."""
    try:
        config = ujson.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    version = config.get(_ACTIVE_VERSION_KEY) if isinstance(config, dict) else None
    # A version is one path component; anything else would point outside the bin dir.
    if isinstance(version, str) and version and "/" not in version and "\\" not in version and version != "..":
        return version
    return ""


def _desktop_candidates(environ: Mapping[str, str], home: Path, tag: str) -> list[Path]:
    name = binary_name(tag)
    if tag.endswith("_windows"):
        roots = []
        if environ.get("LOCALAPPDATA"):
            roots.append(Path(environ["LOCALAPPDATA"]) / "Programs")
        if environ.get("ProgramFiles"):
            roots.append(Path(environ["ProgramFiles"]))
        return [root / _WINDOWS_BIN / tag / name for root in roots]
    if tag.endswith("_darwin"):
        apps = [Path("/Applications"), home / "Applications"]
        return [app / "Lingma.app" / _DESKTOP_BIN / tag / name for app in apps]
    return []  # no desktop app for Linux is known


class NoAttachTarget(LookupError):
    """lingma.attach is auto and no live IDE Lingma is advertised; the pool retries with backoff."""


def attach_url(setting: str, home: Path) -> str:
    """The URL to attach to: the configured ws:// URL, or (auto) the one an IDE's .info file names now."""
    if setting != "auto":
        return setting
    url = find_attach_target(home, os.environ)
    if url is None:
        raise NoAttachTarget(
            "lingma.attach is auto but no running Lingma was found: ~/.lingma/vscode/sharedClientCache/.info.json "
            "(or .info) is missing or names a process that is gone. Start the IDE's Lingma, or set "
            "lingma.attach: ws://127.0.0.1:PORT"
        )
    return url


def find_attach_target(home: Path, environ: Mapping[str, str] | None = None) -> str | None:
    """ws://127.0.0.1:<port>/ of a Lingma an IDE (or the desktop app) is running, from its .info file."""
    for info_path in _shared_client_info_paths(home, environ or {}):
        try:
            body = info_path.read_text(encoding="utf-8").strip()
        except OSError:
            continue
        port, pid = _parse_shared_client_info(body)
        if port is None:
            _log.debug("%s holds no websocketPort", info_path)
            continue
        if pid is not None and not _pid_alive(pid):
            _log.debug("ignoring %s: its Lingma (pid %s) is gone", info_path, pid)
            continue
        return f"ws://127.0.0.1:{port}/"
    return None


def _shared_client_info_paths(home: Path, environ: Mapping[str, str]) -> list[Path]:
    dirs = [
        home / ".lingma" / "vscode" / "sharedClientCache",  # the IDE plugins' binary
        home / "Library" / "Application Support" / "Lingma" / "SharedClientCache",  # desktop app, macOS
    ]
    if environ.get("APPDATA"):
        dirs.append(Path(environ["APPDATA"]) / "Lingma" / "SharedClientCache")  # desktop app, Windows
    return [directory / name for directory in dirs for name in (".info.json", ".info")]


def _parse_shared_client_info(body: str) -> tuple[int | None, int | None]:
    """JSON `{"websocketPort", "pid", "ipcServerPath"}`, or the older lines: port, pid, ipc path."""
    if body.startswith("{"):
        try:
            info = ujson.loads(body)
        except ValueError:
            return None, None
        return _positive_int(info.get("websocketPort")), _positive_int(info.get("pid"))
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    port = _positive_int(lines[0]) if lines else None
    pid = _positive_int(lines[1]) if len(lines) > 1 else None
    return port, pid


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


def _is_executable(path: Path) -> bool:
    return path.is_file() and (os.name == "nt" or path.suffix == ".exe" or os.access(path, os.X_OK))


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
