"""Session bundles: a logged-in work dir as a tar.gz, and its safe import (docs/features.md §7, docs/protocol.md §7).

A bundle comes from config or the environment, so import treats it as hostile: the whole archive is
decompressed under a size limit and every member validated before the first byte is written, and
members are then written one by one by this module (never by tarfile.extract), as regular files and
directories only, each checked to resolve inside the work dir.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import stat
import tarfile
import zlib
from pathlib import Path, PurePosixPath

from ..config import AccountConfig

DEFAULT_MAX_BUNDLE_BYTES = 128 * 1024 * 1024  # uncompressed; a real work dir with its SQLite db fits easily
_MAX_MEMBERS = 10_000
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1024 * 1024
# cache/id is also the key that encrypts cache/user: a login needs both (docs/protocol.md §7).
REQUIRED_FILES = ("cache/id", "cache/user")


class BundleError(ValueError):
    """A bundle that cannot be exported or imported; the message names the account and says why."""


# ---- export --------------------------------------------------------------------------------------


def _exported(rel: PurePosixPath) -> bool:
    """§7: the work dir without logs/ (tokens in lingma.log, our login-failure files) and .info* (live ports)."""
    return rel.parts[0] != "logs" and not rel.parts[0].startswith(".info")


def _tar_info(path: Path, arcname: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(arcname)
    info.mtime = int(st.st_mtime)
    info.mode = stat.S_IMODE(st.st_mode) & 0o755  # no setuid/setgid, no group/other write
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
    else:
        info.size = st.st_size
    return info  # uid/gid 0 and empty user names: nothing about this machine travels


def export_bundle(work_dir: Path, max_bytes: int = DEFAULT_MAX_BUNDLE_BYTES) -> bytes:
    """The work dir as tar.gz bytes: regular files and directories only (no links, sockets or FIFOs)."""
    buffer = io.BytesIO()
    total = 0
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for root, dirs, files in os.walk(work_dir):
            dirs.sort()
            for name in [*dirs, *sorted(files)]:
                path = Path(root) / name
                rel = PurePosixPath(path.relative_to(work_dir).as_posix())
                if not _exported(rel):
                    continue
                st = path.lstat()
                if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                    continue
                total += st.st_size + 2 * tarfile.BLOCKSIZE  # header and padding count against the import limit
                if total > max_bytes:
                    raise BundleError(f"work dir {work_dir} is over the bundle limit of {max_bytes} bytes")
                info = _tar_info(path, rel.as_posix(), st)
                if info.isdir():
                    tar.addfile(info)
                else:
                    with open(path, "rb") as handle:
                        tar.addfile(info, handle)
            dirs[:] = [d for d in dirs if _exported(PurePosixPath((Path(root) / d).relative_to(work_dir).as_posix()))]
    return buffer.getvalue()


# ---- reading a bundle from config ------------------------------------------------------------------


def decode_bundle_text(text: str, account_name: str, max_bytes: int = DEFAULT_MAX_BUNDLE_BYTES) -> bytes:
    compact = "".join(text.split())  # wrapped base64 (`base64 bundle.tgz`) is fine
    if len(compact) > (max_bytes // 3 + 1) * 4:
        raise _rejected(account_name, f"the base64 text is over the limit of {max_bytes} bytes")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise _rejected(account_name, "it is not valid base64") from None


def account_bundle(account: AccountConfig, max_bytes: int = DEFAULT_MAX_BUNDLE_BYTES) -> bytes | None:
    """The account's bundle from session_bundle_b64 or session_bundle_file (base64 text or raw tar.gz)."""
    if account.session_bundle_b64:
        return decode_bundle_text(account.session_bundle_b64, account.name, max_bytes)
    if not account.session_bundle_file:
        return None
    path = Path(account.session_bundle_file)
    try:
        if path.stat().st_size > 2 * max_bytes:
            raise _rejected(account.name, f"{path} is over the limit of {max_bytes} bytes")
        raw = path.read_bytes()
    except OSError as exc:
        raise _rejected(account.name, f"cannot read {path}: {exc.strerror}") from None
    if raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return decode_bundle_text(raw.decode("ascii"), account.name, max_bytes)
    except UnicodeDecodeError:
        raise _rejected(account.name, f"{path} is neither base64 text nor a tar.gz") from None


# ---- import --------------------------------------------------------------------------------------


def _rejected(account_name: str, why: str) -> BundleError:
    return BundleError(f"session bundle of account {account_name!r} rejected: {why}")


def _gunzip(data: bytes, max_bytes: int, account_name: str) -> bytes:
    """Decompress in bounded steps, so a gzip bomb stops at the limit instead of filling memory."""
    if len(data) > max_bytes:
        raise _rejected(account_name, f"the archive is over the limit of {max_bytes} bytes")
    if not data.startswith(_GZIP_MAGIC):
        raise _rejected(account_name, "it is not a tar.gz archive")
    inflater = zlib.decompressobj(wbits=31)  # 31: gzip framing
    parts: list[bytes] = []
    size = 0
    pending = data
    try:
        while pending or not inflater.eof:
            chunk = inflater.decompress(pending, _CHUNK)
            pending = inflater.unconsumed_tail
            size += len(chunk)
            if size > max_bytes:
                raise _rejected(account_name, f"it unpacks to more than the limit of {max_bytes} bytes")
            parts.append(chunk)
            if not chunk and not pending:
                break
    except zlib.error:
        raise _rejected(account_name, "it is not a valid tar.gz archive") from None
    if not inflater.eof or inflater.unused_data:
        raise _rejected(account_name, "the gzip stream is truncated or has trailing data")
    return b"".join(parts)


def _member_kind(member: tarfile.TarInfo) -> str | None:
    """Why a member type is refused, or None for a regular file or a directory."""
    if member.isreg() or member.isdir():
        return None
    if member.issym():
        return "a symlink"
    if member.islnk():
        return "a hardlink"
    if member.ischr() or member.isblk():
        return "a device file"
    if member.isfifo():
        return "a FIFO"
    return "an unsupported entry type"


def _safe_relative(name: str) -> PurePosixPath | None:
    path = PurePosixPath(name)
    if not name or "\0" in name or path.is_absolute() or name.startswith("\\") or ".." in path.parts:
        return None
    parts = [part for part in path.parts if part != "."]
    return PurePosixPath(*parts) if parts else None


def _validate(members: list[tarfile.TarInfo], work_dir: Path, account_name: str) -> list[tuple[tarfile.TarInfo, Path]]:
    root = work_dir.resolve()
    plan: list[tuple[tarfile.TarInfo, Path]] = []
    seen: set[PurePosixPath] = set()
    for member in members:
        kind = _member_kind(member)
        if kind:
            raise _rejected(account_name, f"{member.name!r} is {kind}; only files and directories are allowed")
        rel = _safe_relative(member.name)
        if rel is None:
            raise _rejected(account_name, f"{member.name!r} is an absolute path or climbs out with '..'")
        if rel in seen:
            raise _rejected(account_name, f"{member.name!r} appears twice")
        seen.add(rel)
        # Resolving follows links already present in the work dir, so one cannot redirect a write.
        target = (root / rel).resolve()
        if target != root and root not in target.parents:
            raise _rejected(account_name, f"{member.name!r} would be written outside the work dir")
        try:
            tarfile.data_filter(member, str(root))  # the stdlib's own rules, as a second opinion
        except tarfile.FilterError as exc:
            raise _rejected(account_name, f"{member.name!r}: {exc}") from None
        plan.append((member, target))
    missing = [name for name in REQUIRED_FILES if PurePosixPath(name) not in seen]
    if missing:
        raise _rejected(account_name, f"it holds no {' or '.join(missing)}, so it carries no login")
    return plan


def _write_file(target: Path, content: bytes, member: tarfile.TarInfo) -> None:
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    mode = 0o700 if member.mode & 0o100 else 0o600  # credentials: readable by this user only
    # O_NOFOLLOW: a symlink planted at the target makes the write fail rather than land elsewhere.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    os.utime(target, (member.mtime, member.mtime))


def import_bundle(
    data: bytes, work_dir: Path, account_name: str, max_bytes: int = DEFAULT_MAX_BUNDLE_BYTES
) -> int:
    """Unpack a bundle into work_dir after validating all of it; returns the number of files written."""
    tar_bytes = _gunzip(data, max_bytes, account_name)
    try:
        with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
            members = []
            for member in tar:
                members.append(member)
                if len(members) > _MAX_MEMBERS:
                    raise _rejected(account_name, f"it has more than {_MAX_MEMBERS} entries")
            work_dir.mkdir(parents=True, exist_ok=True)
            plan = _validate(members, work_dir, account_name)
            written = 0
            for member, target in plan:
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True, mode=0o700)
                    continue
                source = tar.extractfile(member)
                assert source is not None  # a regular file always has content
                _write_file(target, source.read(), member)
                written += 1
    except tarfile.TarError as exc:
        raise _rejected(account_name, f"it is not a valid tar archive ({exc})") from None
    except OSError as exc:
        raise _rejected(account_name, f"writing into {work_dir} failed: {exc.strerror or exc}") from None
    return written


def clone_work_dir(source: Path, target: Path, label: str) -> int:
    """Copy a work dir the way a session bundle carries a login (without logs/, .info* and sockets; §7).

    Returns the number of files copied. The source may belong to a running Lingma: its SQLite may be
    caught mid-write, which only the copy can notice; the login files are small and rewritten whole."""
    return import_bundle(export_bundle(source), target, label)
