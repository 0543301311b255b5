"""Whose socket is listening on a port: trust a child's port only when the child itself holds it.

A spawned Lingma's ports are picked by the proxy and visible in the child's command line, so another
local user can bind one first and serve a fake Lingma there; a plain "the port accepts a WebSocket"
would then hand that user every request. Linux's /proc tells which process holds a listening socket.
"""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path

_PROC = Path("/proc")
_LISTEN = "0A"  # TCP state LISTEN in /proc/net/tcp


class Owner(Enum):
    NOBODY = "nobody listens yet"
    CHILD = "the child's own socket"
    STRANGER = "another process's socket"
    UNKNOWN = "no /proc to tell"


def listener_owner(pid: int, port: int) -> Owner:
    """Who holds the TCP sockets listening on `port`: `pid` (or a process it started), someone else, or nobody."""
    if not (_PROC / "net" / "tcp").exists():
        return Owner.UNKNOWN
    inodes = _listening_inodes(port)
    if not inodes:
        return Owner.NOBODY
    owned: set[str] = set()
    for member in process_tree(pid):
        owned |= _socket_inodes(member)
    # Every listener on the port must be the child's: a second one (SO_REUSEPORT) would get a share of the connections.
    return Owner.STRANGER if inodes - owned else Owner.CHILD


def _listening_inodes(port: int) -> set[str]:
    wanted = f":{port:04X}"
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (_PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[1].endswith(wanted) and fields[3] == _LISTEN:
                inodes.add(fields[9])
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    fd_dir = _PROC / str(pid) / "fd"
    inodes: set[str] = set()
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return inodes
    for name in names:
        try:
            target = os.readlink(fd_dir / name)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def process_tree(root: int) -> list[int]:
    """`root` and its descendants, from /proc: a real Lingma may leave its listener to a process it starts."""
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    tree, frontier = [root], [root]
    while frontier:
        kids = children.get(frontier.pop(), [])
        tree.extend(kids)
        frontier.extend(kids)
    return tree
