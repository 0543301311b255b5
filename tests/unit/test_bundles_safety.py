"""Session bundles: export keeps only the login, and import refuses anything that could write outside the work dir."""

from __future__ import annotations

import base64
import gzip
import io
import os
import socket
import tarfile
from pathlib import Path

import pytest

from lingma_proxy.config import AccountConfig
from lingma_proxy.login.bundles import BundleError, account_bundle, export_bundle, import_bundle

LOGIN_FILES = {"cache/id": b"machine-id-0123456789abcdef", "cache/user": b"c2VjcmV0LXRva2Vucw=="}


def make_bundle(members: list[tarfile.TarInfo | tuple[str, bytes]], with_login: bool = True) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        entries = [*LOGIN_FILES.items(), *members] if with_login else members
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
            else:
                name, content = entry
                info = tarfile.TarInfo(name)
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


@pytest.fixture
def sandbox(tmp_path: Path) -> tuple[Path, Path]:
    """A work dir two levels down, so '..' escapes have somewhere to land that we can watch."""
    work_dir = tmp_path / "instances" / "acct" / "0"
    work_dir.mkdir(parents=True)
    return tmp_path, work_dir


def snapshot(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


MALICIOUS = {
    "traversal": ([("../../escaped.txt", b"owned")], "climbs out"),
    "nested traversal": ([("cache/../../../escaped.txt", b"owned")], "climbs out"),
    "absolute path": ([("/tmp/escaped-by-bundle.txt", b"owned")], "absolute path"),
    "symlink": ([special("cache/link", tarfile.SYMTYPE, "/etc/passwd")], "a symlink"),
    "relative symlink": ([special("cache/link", tarfile.SYMTYPE, "../../..")], "a symlink"),
    "hardlink": ([special("cache/hard", tarfile.LNKTYPE, "/etc/passwd")], "a hardlink"),
    "character device": ([special("cache/tty", tarfile.CHRTYPE)], "a device file"),
    "block device": ([special("cache/disk", tarfile.BLKTYPE)], "a device file"),
    "fifo": ([special("cache/pipe", tarfile.FIFOTYPE)], "a FIFO"),
}


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_member_is_rejected_before_anything_is_written(case, sandbox):
    root, work_dir = sandbox
    members, why = MALICIOUS[case]
    before = snapshot(root)
    with pytest.raises(BundleError) as err:
        import_bundle(make_bundle(members), work_dir, "acct")
    assert "account 'acct'" in str(err.value) and why in str(err.value)
    assert snapshot(root) == before  # not even the valid cache/id, which came first
    assert not Path("/tmp/escaped-by-bundle.txt").exists()


def test_a_symlink_already_in_the_work_dir_cannot_redirect_a_write(sandbox):
    root, work_dir = sandbox
    outside = root / "outside"
    outside.mkdir()
    (work_dir / "cache").symlink_to(outside, target_is_directory=True)
    with pytest.raises(BundleError, match="outside the work dir"):
        import_bundle(make_bundle([]), work_dir, "acct")
    assert list(outside.iterdir()) == []


def test_oversize_member_is_rejected(sandbox):
    _, work_dir = sandbox
    with pytest.raises(BundleError, match="limit of 4096 bytes"):
        import_bundle(make_bundle([("cache/db", b"x" * 8192)]), work_dir, "acct", max_bytes=4096)
    assert list(work_dir.iterdir()) == []


def test_gzip_bomb_stops_at_the_uncompressed_limit(sandbox):
    _, work_dir = sandbox
    bomb = make_bundle([("cache/zeros", bytes(20 * 1024 * 1024))])
    assert len(bomb) < 64 * 1024  # small on the wire...
    with pytest.raises(BundleError, match="unpacks to more than"):  # ...refused by what it unpacks to
        import_bundle(bomb, work_dir, "acct", max_bytes=1024 * 1024)
    assert list(work_dir.iterdir()) == []


def test_compressed_archive_over_the_limit_is_rejected_unread(sandbox):
    _, work_dir = sandbox
    with pytest.raises(BundleError, match="archive is over the limit"):
        import_bundle(make_bundle([("cache/noise", os.urandom(8192))]), work_dir, "acct", max_bytes=4096)


@pytest.mark.parametrize(
    "data, why",
    [
        (b"not a gzip at all", "not a tar.gz"),
        (gzip.compress(b"gzip, but no tar inside" * 40), "not a valid tar"),
        (make_bundle([])[:-20], "truncated"),
        (make_bundle([]) + b"trailing", "trailing data"),
    ],
    ids=["not gzip", "not tar", "truncated", "trailing data"],
)
def test_damaged_archives_are_rejected_with_a_reason(data, why, sandbox):
    _, work_dir = sandbox
    with pytest.raises(BundleError, match=why):
        import_bundle(data, work_dir, "acct")


def test_a_bundle_without_the_login_files_is_rejected(sandbox):
    _, work_dir = sandbox
    with pytest.raises(BundleError, match="cache/user"):
        import_bundle(make_bundle([("cache/id", b"only the id")], with_login=False), work_dir, "acct")


def test_duplicate_members_are_rejected(sandbox):
    _, work_dir = sandbox
    with pytest.raises(BundleError, match="appears twice"):
        import_bundle(make_bundle([("./cache/user", b"second copy")]), work_dir, "acct")


def make_work_dir(work_dir: Path) -> None:
    for name, content in LOGIN_FILES.items():
        (work_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (work_dir / name).write_bytes(content)
    (work_dir / "cache" / "db").mkdir()
    (work_dir / "cache" / "db" / "local.db").write_bytes(b"sqlite")
    (work_dir / "logs").mkdir()
    (work_dir / "logs" / "lingma.log").write_text("token pt-live")
    (work_dir / ".info.json").write_text('{"websocketPort": 1}')
    (work_dir / "cache" / "link").symlink_to("/etc/passwd")
    os.mkfifo(work_dir / "cache" / "pipe")


def test_export_then_import_round_trips_only_the_session(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    make_work_dir(source)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(source / "ipc.sock"))
        bundle = export_bundle(source)
    with tarfile.open(fileobj=io.BytesIO(bundle), mode="r:gz") as tar:
        names = sorted(tar.getnames())
    assert names == ["cache", "cache/db", "cache/db/local.db", "cache/id", "cache/user"]

    target = tmp_path / "dst"
    assert import_bundle(bundle, target, "acct") == 3
    for name, content in LOGIN_FILES.items():
        assert (target / name).read_bytes() == content
    assert (target / "cache" / "user").stat().st_mode & 0o077 == 0  # a credential: owner only


def test_export_refuses_a_work_dir_over_the_limit(tmp_path):
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "big").write_bytes(bytes(10_000))
    with pytest.raises(BundleError, match="over the bundle limit"):
        export_bundle(tmp_path, max_bytes=5_000)


def test_account_bundle_reads_base64_from_config_or_a_file(tmp_path):
    bundle = make_bundle([])
    text = base64.encodebytes(bundle).decode()  # wrapped lines, as `base64` prints them
    assert account_bundle(AccountConfig(name="a", session_bundle_b64=text)) == bundle
    (tmp_path / "bundle.txt").write_text(text)
    assert account_bundle(AccountConfig(name="a", session_bundle_file=str(tmp_path / "bundle.txt"))) == bundle
    (tmp_path / "bundle.tgz").write_bytes(bundle)
    assert account_bundle(AccountConfig(name="a", session_bundle_file=str(tmp_path / "bundle.tgz"))) == bundle
    assert account_bundle(AccountConfig(name="a")) is None
    with pytest.raises(BundleError, match="account 'a' rejected: it is not valid base64"):
        account_bundle(AccountConfig(name="a", session_bundle_b64="not*base64!"))
