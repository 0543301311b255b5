"""Binary and attach-target discovery against fake install trees and fake HOME layouts (docs/protocol.md §1,
§11.1-§11.3)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from lingma_proxy.upstream.attach import NoAttachTarget, resolve_attach, shared_client_folders
from lingma_proxy.upstream.discovery import find_lingma_binary, platform_tag, simulator_command

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


def test_qodercn_desktop_binaries_are_found_and_come_before_lingmas(tmp_path: Path) -> None:
    tag = "aarch64_darwin"
    bin_dir = Path("Contents/Resources/app/resources/bin") / tag
    lingma = make_binary(tmp_path / "Applications" / "Lingma.app" / bin_dir / "Lingma")
    assert find_lingma_binary("auto", {}, tmp_path, platform_tag=tag) == lingma
    qodercn = make_binary(tmp_path / "Applications" / "Qoder CN.app" / bin_dir / "QoderCN")
    assert find_lingma_binary("auto", {}, tmp_path, platform_tag=tag) == qodercn
    explicit = make_binary(tmp_path / "custom" / "Lingma")
    assert find_lingma_binary(str(explicit), {}, tmp_path, platform_tag=tag) == explicit


def test_qodercn_binary_under_program_files_on_windows(tmp_path: Path) -> None:
    tag = "x86_64_windows"
    bin_dir = tmp_path / "PF" / "QoderCN" / "resources" / "app" / "resources" / "bin" / tag
    make_binary(bin_dir.parents[3] / "QoderCN.exe")  # the Electron app itself, not the service
    assert find_lingma_binary("auto", {"ProgramFiles": str(tmp_path / "PF")}, tmp_path, platform_tag=tag) is None
    service = make_binary(bin_dir / "QoderCN.exe")
    assert find_lingma_binary("auto", {"ProgramFiles": str(tmp_path / "PF")}, tmp_path, platform_tag=tag) == service


# ---- attach: the §11.1 folders -------------------------------------------------------------------

MACOS_QODERCN = "Library/Application Support/QoderCN/SharedClientCache"
MACOS_LINGMA = "Library/Application Support/Lingma/SharedClientCache"
LINUX_QODERCN = ".config/QoderCN/SharedClientCache"
LINUX_LINGMA = ".config/Lingma/SharedClientCache"
VSCODE_LINGMA = ".lingma/vscode/sharedClientCache"


def advertise(home: Path, folder: str, body: str, name: str = ".info.json") -> Path:
    directory = home / folder
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(body)
    return directory


def info(port: int = 0, pid: int | None = None, ipc: str = "") -> str:
    return f'{{"websocketPort": {port}, "pid": {pid or os.getpid()}, "ipcServerPath": "{ipc}"}}'


def test_the_folders_follow_section_11_1_qodercn_first_on_each_platform(tmp_path: Path) -> None:
    def shown(system: str, environ: dict | None = None) -> list[str]:
        return [str(f.path.relative_to(tmp_path)) for f in shared_client_folders(tmp_path, system, environ or {})]

    assert shown("Darwin") == [
        MACOS_QODERCN, "Library/Application Support/Qoder/SharedClientCache", ".qodercn/vscode/sharedClientCache",
        ".qodercn", ".qoder-cn", MACOS_LINGMA, VSCODE_LINGMA, ".lingma",
    ]
    assert shown("Linux") == [
        LINUX_QODERCN, ".qodercn/vscode/sharedClientCache", ".qodercn", ".qoder-cn", LINUX_LINGMA, VSCODE_LINGMA,
        ".lingma",
    ]
    windows = shown("Windows", {"APPDATA": str(tmp_path / "Roaming")})
    assert windows[0] == "Roaming/QoderCN/SharedClientCache" and "Roaming/Lingma/SharedClientCache" in windows


@pytest.mark.parametrize(
    ("system", "qodercn_folder", "lingma_folder"),
    [("Linux", LINUX_QODERCN, LINUX_LINGMA), ("Darwin", MACOS_QODERCN, MACOS_LINGMA), ("Linux", ".qoder-cn", VSCODE_LINGMA)],
)
def test_qodercn_wins_when_both_run_and_each_family_can_be_chosen(tmp_path, system, qodercn_folder, lingma_folder):
    advertise(tmp_path, lingma_folder, info(port=36510))
    qodercn = advertise(tmp_path, qodercn_folder, info(ipc=str(tmp_path / "q.sock")))
    found = resolve_attach("auto", tmp_path, system, {})
    assert (found.transport, found.address, found.family, found.info_dir) == ("unix", str(tmp_path / "q.sock"), "qodercn", qodercn)
    assert resolve_attach("lingma", tmp_path, system, {}).address == "ws://127.0.0.1:36510/"
    assert resolve_attach("qodercn", tmp_path, system, {}).family == "qodercn"


def test_the_websocket_is_preferred_when_an_info_file_names_both(tmp_path: Path) -> None:
    advertise(tmp_path, LINUX_QODERCN, info(port=37109, ipc="/run/x.sock"))
    assert str(resolve_attach("auto", tmp_path, "Linux", {})) == "ws://127.0.0.1:37109/"


def test_legacy_info_lines_and_stale_files(tmp_path: Path) -> None:
    advertise(tmp_path, VSCODE_LINGMA, f"36510\n{os.getpid()}\n/tmp/lingma.sock\n", name=".info")
    assert str(resolve_attach("auto", tmp_path, "Linux", {})) == "ws://127.0.0.1:36510/"
    advertise(tmp_path, VSCODE_LINGMA, "36510\n999999999\n", name=".info")  # that Lingma is gone
    with pytest.raises(NoAttachTarget) as err:
        resolve_attach("auto", tmp_path, "Linux", {})
    assert "~/.lingma/vscode/sharedClientCache/.info is stale (pid 999999999 is gone)" in str(err.value)


def test_nothing_found_is_one_line_naming_every_folder_looked_in(tmp_path: Path) -> None:
    with pytest.raises(NoAttachTarget) as err:
        resolve_attach("auto", tmp_path, "Darwin", {})
    message = str(err.value)
    assert "\n" not in message and "no running Lingma was found" in message
    assert f"~/{MACOS_QODERCN}, " in message and f"~/{VSCODE_LINGMA}, " in message
    assert "lingma.attach: ws://127.0.0.1:PORT or unix:///path/to.sock" in message
    with pytest.raises(NoAttachTarget, match=r"\(QoderCN\): looked in ~/\.config/QoderCN/SharedClientCache, ~/\.qodercn"):
        resolve_attach("qodercn", tmp_path, "Linux", {})


def test_explicit_urls_and_sockets_need_no_folder(tmp_path: Path) -> None:
    assert str(resolve_attach("ws://127.0.0.1:9/ws", tmp_path, "Linux", {})) == "ws://127.0.0.1:9/ws"
    found = resolve_attach("unix:///run/user/1/qodercn.sock", tmp_path, "Linux", {})
    assert (found.transport, found.address) == ("unix", "/run/user/1/qodercn.sock")


def test_the_machine_token_beside_the_info_file_is_read_and_a_bad_one_is_one_line(tmp_path: Path) -> None:
    folder = advertise(tmp_path, LINUX_QODERCN, info(port=36510))
    assert resolve_attach("auto", tmp_path, "Linux", {}).machine_token == ""
    (folder / "cache").mkdir()
    token_file = folder / "cache" / "machine_token.json"
    token_file.write_text('{"token": "mt-secret", "type": "machine", "updateAt": 1}')
    found = resolve_attach("auto", tmp_path, "Linux", {})
    assert (found.machine_token, found.token_path) == ("mt-secret", token_file)
    assert "mt-secret" not in repr(found)
    for body, why in (("{not json", "not JSON"), ('{"token": ""}', "it holds no token")):
        token_file.write_text(body)
        with pytest.raises(NoAttachTarget, match=f"cannot read the machine token ~/{LINUX_QODERCN}/cache/machine_token.json: {why}"):
            resolve_attach("auto", tmp_path, "Linux", {})
    if os.geteuid() != 0:  # root reads a 0000 file all the same
        token_file.write_text('{"token": "x"}')
        token_file.chmod(0)
        with pytest.raises(NoAttachTarget, match="Permission denied"):
            resolve_attach("auto", tmp_path, "Linux", {})


def test_either_capitalisation_of_shared_client_cache_is_found(tmp_path: Path) -> None:
    lower = advertise(tmp_path, ".config/QoderCN/sharedClientCache", info(port=36510))
    upper = advertise(tmp_path, ".lingma/vscode/SharedClientCache", info(port=37010))
    assert str(resolve_attach("qodercn", tmp_path, "Linux", {})) == "ws://127.0.0.1:36510/"
    assert resolve_attach("qodercn", tmp_path, "Linux", {}).info_dir == lower
    assert resolve_attach("lingma", tmp_path, "Linux", {}).info_dir == upper
    advertise(tmp_path, LINUX_QODERCN, info(port=36999))  # both spellings: the usual one wins
    assert str(resolve_attach("qodercn", tmp_path, "Linux", {})) == "ws://127.0.0.1:36999/"


def test_a_runtime_that_leaves_only_a_socket_is_attached_through_it(tmp_path: Path) -> None:
    import socket

    folder = tmp_path / ".qodercn"
    folder.mkdir()
    (folder / "lingma.sock").write_text("not a socket")
    with pytest.raises(NoAttachTarget, match=r"~/\.qodercn/lingma\.sock is not a socket"):
        resolve_attach("auto", tmp_path, "Linux", {})
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(folder / "qodercn.sock"))
    try:
        found = resolve_attach("auto", tmp_path, "Linux", {})
        assert (found.transport, found.address, found.family) == ("unix", str(folder / "qodercn.sock"), "qodercn")
        advertise(tmp_path, ".qodercn", info(port=36510))  # an info file beside it says more: it wins
        assert str(resolve_attach("auto", tmp_path, "Linux", {})) == "ws://127.0.0.1:36510/"
    finally:
        listener.close()


def test_simulator_command_runs_the_package_with_this_interpreter() -> None:
    assert simulator_command() == [sys.executable, "-m", "lingma_proxy.simulator"]
