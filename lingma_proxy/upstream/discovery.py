"""Finding a Lingma or QoderCN language-service binary to spawn (docs/protocol.md §1, §11).

Only the service binaries named `Lingma` / `QoderCN` (`.exe` on Windows) are ever picked: `lingmacli` is a
user tool and `LingmaLocal.exe` / `LingmaWin7.exe` are other builds, and exact file names keep them out.
Finding a runtime that is already running is upstream/attach.py's job.
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

_APP_BIN = Path("app/resources/bin")  # under an install dir's resources (Windows) or an app's Contents/Resources
# (product, binary name, macOS app bundle, Windows install dirs under Programs or ProgramFiles), QoderCN first:
# the desktop runtime ships as QoderCN now (§11). QoderCN's places are [reported]: `Qoder CN.app/Contents/
# Resources/app/resources/bin/<platform>/QoderCN` in a process listing, and `Program Files\QoderCN\...` with
# `QoderCN.exe` in a public analysis script; `Programs\Qoder CN` is where its Windows installer puts the app.
_DESKTOP_APPS = (
    ("QoderCN", "Qoder CN.app", ("Qoder CN", "QoderCN")),
    ("Lingma", "Lingma.app", ("Lingma",)),
)
_ACTIVE_VERSION_KEY = "cosy.core.version"


def platform_tag(system: str | None = None, machine: str | None = None) -> str:
    """The binary dir name for this machine: x86_64_linux, aarch64_darwin, x86_64_windows, ..."""
    system = (system or platform.system()).lower()
    machine = (machine or platform.machine()).lower()
    arch = "aarch64" if machine in ("arm64", "aarch64", "armv8", "armv8l") else "x86_64"
    os_name = {"darwin": "darwin", "windows": "windows"}.get(system, "linux")
    return f"{arch}_{os_name}"


_this_platform_tag = platform_tag  # find_lingma_binary's parameter of the same name shadows it


def binary_name(tag: str, product: str = "Lingma") -> str:
    return f"{product}.exe" if tag.endswith("_windows") else product


def simulator_command() -> list[str]:
    """The argv prefix that starts the bundled simulator exactly as the real binary is started."""
    return [sys.executable, "-m", "lingma_proxy.simulator"]


def find_lingma_binary(
    setting: str, environ: Mapping[str, str], home: Path, platform_tag: str | None = None
) -> Path | None:
    """An explicit path (config, then LINGMA_BINARY) wins; else the IDE plugin's active binary; else the
    QoderCN desktop app's; else the Lingma desktop app's. None when nothing usable is found, or when the
    explicit path is not an executable."""
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
    if tag.endswith("_windows"):
        places = (("LOCALAPPDATA", "Programs"), ("ProgramFiles", ""))
        roots = [Path(environ[var]) / sub for var, sub in places if environ.get(var)]
        return [
            root / install / "resources" / _APP_BIN / tag / binary_name(tag, product)
            for product, _bundle, installs in _DESKTOP_APPS
            for install in installs
            for root in roots
        ]
    if tag.endswith("_darwin"):
        apps = [Path("/Applications"), home / "Applications"]
        return [
            app / bundle / "Contents" / "Resources" / _APP_BIN / tag / product
            for product, bundle, _installs in _DESKTOP_APPS
            for app in apps
        ]
    return []  # no desktop app for Linux is known


def _is_executable(path: Path) -> bool:
    return path.is_file() and (os.name == "nt" or path.suffix == ".exe" or os.access(path, os.X_OK))


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
