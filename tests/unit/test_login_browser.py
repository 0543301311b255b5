"""The login browser keeps Chromium's sandbox where it can start (lingma_proxy/login/browser.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lingma_proxy.login import browser


@pytest.mark.parametrize(
    ("euid", "marker", "container_env", "sandboxed"),
    [(1000, None, False, True), (0, None, False, False), (1000, "/.dockerenv", False, False),
     (1000, "/run/.containerenv", False, False), (1000, None, True, False)],
)  # fmt: skip
def test_chromium_keeps_its_sandbox_unless_root_or_in_a_container(monkeypatch, euid, marker, container_env, sandboxed):
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    monkeypatch.setattr(Path, "exists", lambda self: str(self) == marker)
    if container_env:
        monkeypatch.setenv("container", "podman")
    else:
        monkeypatch.delenv("container", raising=False)
    assert ("--no-sandbox" not in browser.chromium_flags()) is sandboxed
