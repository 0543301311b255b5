"""Binary and attach-target discovery against fake install trees (docs/protocol.md §1)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from lingma_proxy.upstream.discovery import (
    find_attach_target,
    find_lingma_binary,
    platform_tag,
    simulator_command,
)

LINUX = "x86_64_linux"


def make_binary(path: Path, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    if mtime is not None:
        os.utime(path.parents[1], (mtime, mtime))
    return path


def plugin_binary(home: Path, version: str, tag: str = LINUX, name: str = "Lingma", mtime: float | None = None) -> Path:
    return make_binary(home / ".lingma" / "bin" / version / tag / name, mtime)


def test_active_version_comes_from_the_flat_cosy_core_version_key(tmp_path: Path) -> None:
    plugin_binary(tmp_path, "2.11.1", mtime=1_000)
    newest = plugin_binary(tmp_path, "2.12.0", mtime=2_000)
    active = plugin_binary(tmp_path, "2.5.0", mtime=500)
    config = tmp_path / ".lingma" / "bin" / "config.json"
    config.write_text('{"cosy.core.version": "2.5.0", "cosy": {"core": {"version": "2.12.0"}}}')
    assert find_lingma_binary("auto", {}, tmp_path, platform_tag=LINUX) == active
    config.write_text("{}")
    assert find_lingma_binary("auto", {}, tmp_path, platform_tag=LINUX) == newest


def test_newest_version_dir_wins_when_the_active_one_lacks_a_binary(tmp_path: Path) -> None:
    older = plugin_binary(tmp_path, "2.10.0", mtime=1_000)
    (tmp_path / ".lingma" / "bin" / "config.json").write_text('{"cosy.core.version": "9.9.9"}')
    (tmp_path / ".lingma" / "bin" / "2.99.0" / LINUX).mkdir(parents=True)  # newest, but empty
    os.utime(tmp_path / ".lingma" / "bin" / "2.99.0", (3_000, 3_000))
    assert find_lingma_binary("auto", {}, tmp_path, platform_tag=LINUX) == older


def test_only_the_service_binary_for_this_platform_is_picked(tmp_path: Path) -> None:
    plugin_binary(tmp_path, "2.11.1", name="lingmacli")
    plugin_binary(tmp_path, "2.11.1", tag="aarch64_linux")
    assert find_lingma_binary("auto", {}, tmp_path, platform_tag=LINUX) is None


def test_explicit_setting_then_env_var_win_over_installs(tmp_path: Path) -> None:
    plugin_binary(tmp_path, "2.11.1")
    configured = make_binary(tmp_path / "custom" / "Lingma")
    from_env = make_binary(tmp_path / "env" / "Lingma")
    env = {"LINGMA_BINARY": str(from_env)}
    assert find_lingma_binary(str(configured), env, tmp_path, platform_tag=LINUX) == configured
    assert find_lingma_binary("auto", env, tmp_path, platform_tag=LINUX) == from_env


def test_explicit_path_that_is_missing_or_not_executable_gives_none(tmp_path: Path) -> None:
    plugin_binary(tmp_path, "2.11.1")
    not_executable = tmp_path / "Lingma"
    not_executable.write_text("")
    not_executable.chmod(0o644)
    assert find_lingma_binary(str(tmp_path / "missing"), {}, tmp_path, platform_tag=LINUX) is None
    assert find_lingma_binary(str(not_executable), {}, tmp_path, platform_tag=LINUX) is None
    assert find_lingma_binary("simulator", {}, tmp_path, platform_tag=LINUX) is None


def test_desktop_app_under_home_applications_on_macos(tmp_path: Path) -> None:
    tag = "aarch64_darwin"
    app = make_binary(
        tmp_path / "Applications" / "Lingma.app" / "Contents/Resources/app/resources/bin" / tag / "Lingma"
    )
    assert find_lingma_binary("auto", {}, tmp_path, platform_tag=tag) == app
    plugin = plugin_binary(tmp_path, "2.11.1", tag=tag)
    assert find_lingma_binary("auto", {}, tmp_path, platform_tag=tag) == plugin


def test_desktop_app_under_localappdata_on_windows(tmp_path: Path) -> None:
    tag = "x86_64_windows"
    bin_dir = tmp_path / "Local" / "Programs" / "Lingma" / "resources" / "app" / "resources" / "bin" / tag
    make_binary(bin_dir / "LingmaLocal.exe")
    make_binary(bin_dir / "LingmaWin7.exe")
    env = {"LOCALAPPDATA": str(tmp_path / "Local")}
    assert find_lingma_binary("auto", env, tmp_path, platform_tag=tag) is None
    service = make_binary(bin_dir / "Lingma.exe")
    assert find_lingma_binary("auto", env, tmp_path, platform_tag=tag) == service


@pytest.mark.parametrize(
    ("system", "machine", "tag"),
    [
        ("Linux", "x86_64", "x86_64_linux"),
        ("Linux", "aarch64", "aarch64_linux"),
        ("Darwin", "arm64", "aarch64_darwin"),
        ("Darwin", "x86_64", "x86_64_darwin"),
        ("Windows", "AMD64", "x86_64_windows"),
    ],
)
def test_platform_tag(system: str, machine: str, tag: str) -> None:
    assert platform_tag(system, machine) == tag


def test_attach_target_from_json_info(tmp_path: Path) -> None:
    cache = tmp_path / ".lingma" / "vscode" / "sharedClientCache"
    cache.mkdir(parents=True)
    assert find_attach_target(tmp_path) is None
    (cache / ".info.json").write_text(f'{{"websocketPort": 37010, "pid": {os.getpid()}, "ipcServerPath": "/x"}}')
    assert find_attach_target(tmp_path) == "ws://127.0.0.1:37010/"


def test_attach_target_from_legacy_info_lines_and_stale_pid(tmp_path: Path) -> None:
    cache = tmp_path / ".lingma" / "vscode" / "sharedClientCache"
    cache.mkdir(parents=True)
    (cache / ".info").write_text(f"36510\n{os.getpid()}\n/tmp/lingma.sock\n")
    assert find_attach_target(tmp_path) == "ws://127.0.0.1:36510/"
    (cache / ".info").write_text("36510\n999999999\n")  # no such pid: the IDE's Lingma is gone
    assert find_attach_target(tmp_path) is None
    (cache / ".info").write_text("not a port\n")
    assert find_attach_target(tmp_path) is None


def test_simulator_command_runs_the_package_with_this_interpreter() -> None:
    assert simulator_command() == [sys.executable, "-m", "lingma_proxy.simulator"]
