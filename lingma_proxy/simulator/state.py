"""The simulator's work dir, laid out like the real binary's (docs/protocol.md §1, §7).

- `cache/id`: the machine id in plain text, created when missing.
- `cache/user`: the logged-in user; logged in means this file exists.
  Known simulator difference: real Lingma stores base64 of AES-128-CBC over the JSON (key = IV =
  the first 16 bytes of the machine id); the simulator stores plain base64 of the JSON.
- `.info.json`: `{websocketPort, pid, ipcServerPath}`; `ipcServerPath` is the Unix socket with
  `--transportType=unix`, and then `websocketPort` is 0.
- `cache/machine_token.json`: `{token, type, updateAt}`, when the simulator requires the token (§11.3).
- `config.json`: the endpoint set by `config/updateEndpoint` (where the real binary keeps it is unknown).
- `logs/lingma.log`: the log.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import ujson

log = logging.getLogger("lingma.sim")

TOKEN_LIFETIME_MS = 30 * 24 * 3600 * 1000
DEMO_USERNAME = "demo@simulator"


@dataclass(frozen=True)
class UserRecord:
    uid: str
    aid: str
    name: str
    token: str
    refresh_token: str
    expire_ms: int
    user_type: str = "personal_standard"

    @classmethod
    def new_login(cls, username: str) -> UserRecord:
        """A user as the cloud would return it: stable ids per name, fresh tokens each login."""
        digest = hashlib.sha256(username.encode("utf-8")).hexdigest()
        return cls(
            uid=str(int(digest[:15], 16)),
            aid=str(int(digest[15:30], 16)),
            name=username,
            token=f"pt-{secrets.token_hex(24)}",
            refresh_token=f"rt-{secrets.token_hex(24)}",
            expire_ms=int(time.time() * 1000) + TOKEN_LIFETIME_MS,
        )


class WorkDir:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._id_path = root / "cache" / "id"
        self._user_path = root / "cache" / "user"
        self._config_path = root / "config.json"
        self.log_path = root / "logs" / "lingma.log"

    def is_fresh(self) -> bool:
        return not self._id_path.exists()

    def machine_id(self) -> str:
        if not self._id_path.exists():
            self._id_path.parent.mkdir(parents=True, exist_ok=True)
            self._id_path.write_text(uuid.uuid4().hex, encoding="utf-8")
        return self._id_path.read_text(encoding="utf-8").strip()

    def read_user(self) -> UserRecord | None:
        try:
            raw = self._user_path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return UserRecord(**ujson.loads(base64.b64decode(raw)))
        except (ValueError, TypeError) as exc:
            log.error("cache/user is unreadable, treating the instance as logged out: %s", exc)
            return None

    def write_user(self, user: UserRecord) -> None:
        self.machine_id()  # cache/id and cache/user always travel together
        encoded = base64.b64encode(ujson.dumps(asdict(user), ensure_ascii=False).encode("utf-8"))
        tmp = self._user_path.with_suffix(".tmp")
        tmp.write_bytes(encoded)
        tmp.replace(self._user_path)

    def delete_user(self) -> None:
        self._user_path.unlink(missing_ok=True)

    def write_info(self, websocket_port: int, pid: int, ipc_path: str = "") -> None:
        info = {"websocketPort": websocket_port, "pid": pid, "ipcServerPath": ipc_path}
        (self.root / ".info.json").write_text(ujson.dumps(info), encoding="utf-8")

    def socket_path(self, family: str) -> Path:
        """Inside the work dir (0700), so only its owner can connect; named as §11.2's socket files are."""
        return self.root / f"{family}.sock"

    def new_machine_token(self) -> str:
        """A fresh token in cache/machine_token.json (0600), as QoderCN keeps it (§11.3)."""
        token = secrets.token_hex(32)
        record = {"token": token, "type": "machine", "updateAt": int(time.time() * 1000)}
        path = self.root / "cache" / "machine_token.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(ujson.dumps(record))
        return token

    def endpoint(self) -> str:
        try:
            return str(ujson.loads(self._config_path.read_text(encoding="utf-8")).get("endpoint", ""))
        except (FileNotFoundError, ValueError, AttributeError):
            return ""

    def set_endpoint(self, endpoint: str) -> None:
        self._config_path.write_text(ujson.dumps({"endpoint": endpoint}), encoding="utf-8")
