"""Login state and the login flow (docs/protocol.md §7): status, login URL, nonces, callback.

Known simulator differences: the callback's `auth`/`token` values are plain URL-safe base64 (the real
ones use a custom alphabet with a block shuffle), and the local login page stands in for Alibaba Cloud's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from lingma_proxy.simulator.state import UserRecord, WorkDir

log = logging.getLogger("lingma.sim")

NONCE_LIFETIME_SEC = 15 * 60


class LoginError(ValueError):
    pass


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii")


def _unb64_lines(value: str, count: int) -> list[str]:
    padded = value + "=" * (-len(value) % 4)
    try:
        lines = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8").split("\n")
    except (binascii.Error, UnicodeError, ValueError):
        raise LoginError("Invalid login data") from None
    if len(lines) != count or not all(lines):
        raise LoginError("Invalid login data")
    return lines


class Auth:
    def __init__(self, work_dir: WorkDir, http_port: int, password: str) -> None:
        self._work_dir = work_dir
        self._http_port = http_port
        self._password = password
        self._nonces: dict[str, float] = {}

    def user(self) -> UserRecord | None:
        return self._work_dir.read_user()

    def status_result(self) -> dict[str, Any]:
        user = self.user()
        if user is None:
            return {"status": 1, "token": "", "refreshToken": "", "accountId": ""}
        return {
            "status": 2,
            "name": user.name,
            "id": user.uid,
            "accountId": user.aid,
            "token": user.token,
            "refreshToken": user.refresh_token,
            "expireTime": user.expire_ms,
            "userType": user.user_type,
            "whitelist": 3,
            "privacyPolicyAgreed": True,
            "cloudType": "public",
        }

    def generate_url(self) -> dict[str, Any]:
        nonce = secrets.token_hex(16)
        self._nonces[nonce] = time.monotonic()
        verifier = secrets.token_urlsafe(32)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = urlencode(
            {
                "nonce": nonce,
                "port": self._http_port,
                "state": nonce,
                "challenge": challenge,
                "challenge_method": "S256",
                "machine_id": self._work_dir.machine_id(),
            }
        )
        url = f"http://127.0.0.1:{self._http_port}/lingma/login?{query}"
        return {"loginUrl": url, "success": True, "errorCode": "", "errorMsg": ""}

    def logout(self) -> None:
        self._work_dir.delete_user()
        log.info("logged out")

    def check_password(self, username: str, password: str) -> bool:
        return bool(username.strip()) and hmac.compare_digest(password.encode(), self._password.encode())

    def callback_path(self, nonce: str, username: str) -> str:
        """Where the login page sends the browser after a good password, as the cloud would."""
        user = UserRecord.new_login(username.strip())
        auth = _b64(f"{user.uid}\n{user.aid}\n{user.name}")
        token = _b64(f"{user.token}\n{user.refresh_token}\n{user.expire_ms}")
        return "/auth/callback?" + urlencode({"state": nonce, "auth": auth, "token": token})

    def complete_login(self, state: str, auth: str, token: str) -> UserRecord:
        """The callback: check the nonce (single use, not stale), then write the login files."""
        issued = self._nonces.pop(state, None)
        if issued is None or time.monotonic() - issued > NONCE_LIFETIME_SEC:
            raise LoginError("Invalid login nonce")
        uid, aid, name = _unb64_lines(auth, 3)
        access, refresh, expire = _unb64_lines(token, 3)
        if not expire.isdigit():
            raise LoginError("Invalid login data")
        user = UserRecord(uid=uid, aid=aid, name=name, token=access, refresh_token=refresh, expire_ms=int(expire))
        self._work_dir.write_user(user)
        log.info("login succeeded for %s", name)
        return user
