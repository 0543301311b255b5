"""The canary's verdicts, kept in the work dir so a runtime is tested once per version, not on every start.

One small owner-only JSON file maps a runtime identity ("family version dialect") to whether follow-ups
in one session kept the history, and when that was found.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .filemodes import write_private

log = logging.getLogger("lingma_proxy.sessions")

FILE_NAME = "reuse-verdicts.json"


@dataclass(frozen=True)
class Verdict:
    remembered: bool
    checked_at: str  # UTC, ISO 8601 to the second
    detail: str  # the word asked for and what came back, for whoever wonders why reuse is off

    def describe(self) -> dict:
        return {"remembered": self.remembered, "checked_at": self.checked_at, "detail": self.detail}


def runtime_identity(family: str, version: str, dialect: str) -> str:
    return " ".join((family or "lingma", version or "unknown-version", dialect or "unknown-dialect"))


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class VerdictStore:
    def __init__(self, work_dir: Path) -> None:
        self.path = work_dir / FILE_NAME

    def load(self) -> dict[str, Verdict]:
        """The verdicts on file; a missing or unreadable file is no verdicts (the canary runs again)."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return {key: Verdict(**value) for key, value in raw.items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.warning("ignoring unreadable %s: %s", self.path, exc)
            return {}

    def save(self, identity: str, verdict: Verdict) -> None:
        verdicts = self.load()
        verdicts[identity] = verdict
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {key: asdict(value) for key, value in sorted(verdicts.items())}
        write_private(self.path, json.dumps(data, indent=2).encode())
