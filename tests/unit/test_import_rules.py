"""The layers of docs/architecture.md, enforced: which parts of lingma_proxy may import which.

handlers → completion → (prompt, tools, sessions, upstream) → model; wire ↔ model only; the simulator
imports nothing of the proxy but the shared framing and WebSocket; cli and probe reach upstream, never the app.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "lingma_proxy"

# Parts that may import only these (besides themselves): the pure and the stand-alone layers.
ONLY = {
    "model": set(),
    "events": set(),
    "framing": set(),
    "ids": set(),
    "websocket": set(),
    "wire": {"model", "events", "errors", "ids"},
    "tools": {"model", "events", "errors"},
    "simulator": {"framing", "websocket"},
    "upstream": {"(package)", "config", "errors", "events", "framing", "model", "redact", "websocket"},
}
# Parts that must never import these: the dependencies that would run the wrong way.
NEVER = {
    "completion": {"handlers", "wire", "app", "cli", "probe", "login", "simulator"},
    "prompt": {"handlers", "wire", "app", "completion", "upstream"},
    "sessions": {"handlers", "wire", "app", "completion", "upstream"},
    "login": {"handlers", "wire", "app", "cli", "completion"},
    "usage": {"handlers", "wire", "app", "completion"},
    "cli": {"app", "handlers"},
    "probe": {"app", "handlers", "cli"},
    "handlers": {"app", "cli"},
}


def _part(module: str) -> str:
    """lingma_proxy.upstream.pool → upstream; lingma_proxy → (package); lingma_proxy.model → model."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "(package)"


def _imports() -> dict[str, dict[str, set[str]]]:
    """part → imported part → the files that import it."""
    found: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(relative.parts[:-1] if relative.name == "__init__" else relative.parts)
        package = module if relative.name == "__init__" else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    targets = [".".join(base + ([node.module] if node.module else []))]
                else:
                    targets = [node.module or ""]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            for target in targets:
                if target == "lingma_proxy" or target.startswith("lingma_proxy."):
                    found[_part(module)][_part(target)].add(str(path.relative_to(PACKAGE.parent)))
    return found


IMPORTS = _imports()


def test_the_import_graph_is_read():
    assert "model" in IMPORTS["wire"] and "upstream" in IMPORTS["completion"]


@pytest.mark.parametrize("part", sorted(ONLY))
def test_a_pure_or_standalone_part_imports_only_what_it_may(part):
    allowed = ONLY[part] | {part}
    wrong = {target: sorted(files) for target, files in IMPORTS.get(part, {}).items() if target not in allowed}
    assert wrong == {}, f"{part} may import only {sorted(ONLY[part])}"


@pytest.mark.parametrize("part", sorted(NEVER))
def test_no_dependency_runs_the_wrong_way(part):
    wrong = {target: sorted(files) for target, files in IMPORTS.get(part, {}).items() if target in NEVER[part]}
    assert wrong == {}, f"{part} must not import {sorted(NEVER[part])}"


def test_nothing_but_the_entry_point_imports_the_app():
    importers = {part for part, targets in IMPORTS.items() if "app" in targets} - {"app"}
    assert importers == set()


def test_no_class_is_over_200_lines():
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > 200:
                long.append(f"{path.relative_to(PACKAGE.parent)}: {node.name} ({node.end_lineno - node.lineno + 1})")
    assert long == []


def test_the_server_loads_neither_the_browser_stack_nor_jsonschema():
    """Selenium and the login flow's modules are loaded when a login first runs, and jsonschema when a tool
    call's arguments are first checked: not by every server."""
    probe = (
        "import sys, lingma_proxy.app; "
        "print(sorted(m for m in sys.modules if m.startswith(('selenium', 'jsonschema', 'lingma_proxy.login.')) "
        "and m not in ('lingma_proxy.login.manager', 'lingma_proxy.login.status', "
        "'lingma_proxy.login.bundles', 'lingma_proxy.login.bundle_import')))"
    )
    run = subprocess.run([sys.executable, "-c", probe], cwd=PACKAGE.parent, capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"
