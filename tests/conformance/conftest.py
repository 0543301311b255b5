"""The conformance suite: the proxy, with the simulator upstream, against the vendors' OpenAPI specs.

Run it with `pytest -m conformance` after `pip install -r requirements-conformance.txt`; it needs no
network. Without those packages every module is reported as skipped, with the install hint; when
the run deselects the suite (the default `-m "not conformance"`), it is not even collected.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.proxy import Proxy, start_proxy

REQUIRED = ("schemathesis", "llm_comply")
INSTALL_HINT = "conformance suite needs `pip install -r requirements-conformance.txt` (missing: {})"
API_KEY = "conformance-dummy-key"
SCENARIO = Path(__file__).with_name("scenario.yaml")
_DEFAULT_DESELECTION = re.compile(r"\s*not\s+conformance\s*")


def _missing() -> list[str]:
    return [name for name in REQUIRED if importlib.util.find_spec(name) is None]


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # Importing the suite loads three large specs; skip that when the run deselects it anyway.
    if _DEFAULT_DESELECTION.fullmatch(config.getoption("markexpr") or ""):
        return True
    return None


class _Unavailable(pytest.Module):
    def collect(self) -> list:
        pytest.skip(INSTALL_HINT.format(", ".join(_missing())), allow_module_level=True)


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if not module_path.name.startswith("test_"):
        return None
    if _missing():
        return _Unavailable.from_parent(parent, path=module_path)
    # Hypothesis caches data under ./.hypothesis while strategies are built; keep the tree clean.
    from hypothesis.configuration import set_hypothesis_home_dir

    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "lingma-proxy-conformance-hypothesis")
    return None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    deviations = sys.modules.get("tests.conformance.deviations")
    if deviations is None or not deviations.TOLERATED:
        return
    terminalreporter.section("schema-violating requests accepted under tests/conformance/deviations.py")
    for api, count in sorted(deviations.TOLERATED.items()):
        terminalreporter.write_line(f"{count:6d}  {api}")


@pytest.fixture(scope="session")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    """One proxy for the whole suite: simulator upstream, one API key, the suite's scenario."""
    config = {
        "auth": {"api_keys": [API_KEY]},
        "lingma": {"simulator": {"scenario": str(SCENARIO)}},
    }
    started = start_proxy(tmp_path_factory.mktemp("conformance"), config)
    yield started
    started.stop()
