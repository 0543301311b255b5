"""The probe's report: a header, one block per check, a summary and what to paste; every line redacted."""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lingma_proxy import __version__
from lingma_proxy.redact import Redactor
from lingma_proxy.upstream.discovery import platform_tag

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


@dataclass
class CheckResult:
    number: int
    name: str
    status: str  # PASS | FAIL | SKIP
    facts: list[str] = field(default_factory=list)


def home_relative(path: str | Path) -> str:
    """The path with the home dir shown as ~, so a pasted report does not carry the user's login name."""
    text, home = str(path), str(Path.home())
    if home in ("", "/") or not (text == home or text.startswith(home + "/")):
        return text
    return "~" + text[len(home):]


def header_lines(upstream: str, work_dir: str, dialect: str, config_source: str) -> list[str]:
    return [
        "lingma-proxy protocol probe",
        f"  lingma-proxy: {__version__}",
        f"  platform:     {platform.system()} {platform.release()} {platform.machine()} ({platform_tag()}), "
        f"Python {sys.version.split()[0]}",
        f"  config:       {home_relative(config_source)}",
        f"  upstream:     {upstream}",
        f"  work dir:     {work_dir}",
        f"  dialect:      {dialect or '(unknown: no connection)'}",
    ]


def summary_line(results: list[CheckResult]) -> str:
    counts = {status: sum(r.status == status for r in results) for status in (PASS, FAIL, SKIP)}
    return f"probe: {counts[PASS]} passed, {counts[FAIL]} failed, {counts[SKIP]} skipped"


PASTE_HINT = (
    "What to paste: everything from 'lingma-proxy protocol probe' down to the 'probe:' line, into your bug "
    "report. Tokens and account ids are already redacted; read it once before posting."
)


def render(header: list[str], results: list[CheckResult], redactor: Redactor) -> str:
    lines = [*header, ""]
    for result in sorted(results, key=lambda r: r.number):
        lines.append(f"{result.number}. {result.name}: {result.status}")
        lines.extend(f"     {line}" for fact in result.facts for line in fact.splitlines())
    lines += ["", summary_line(results), PASTE_HINT]
    return "\n".join(redactor.redact(line) for line in lines)
