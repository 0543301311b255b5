from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.proxy import Proxy, start_proxy

SCENARIOS = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios"
SIM_DIALECTS = ("classic", "acp")
# The QoderCN family (docs/protocol.md §11) on top: a module opts in with `sim_runtime` instead of `sim_dialect`
# (chat and stream modules), which keeps the suite's time in check.
SIM_RUNTIMES = (*SIM_DIALECTS, "qodercn")


@pytest.fixture(scope="module", params=SIM_DIALECTS)
def sim_dialect(request: pytest.FixtureRequest) -> str:
    """Opt-in: a module whose proxies use this runs once against each chat dialect (protocol §5, §9)."""
    return request.param


@pytest.fixture(scope="module", params=SIM_RUNTIMES)
def sim_runtime(request: pytest.FixtureRequest) -> str:
    """Like `sim_dialect`, plus a QoderCN simulator (family qodercn, agent dialect); start_proxy takes it as `dialect`."""
    return request.param


@pytest.fixture
def make_proxy(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Proxy]]:
    """Start real proxies (each with its simulator children); all are stopped at teardown.

    In a module that uses `sim_dialect` (e.g. through `pytestmark = pytest.mark.usefixtures("sim_dialect")`),
    the simulators speak that dialect."""
    started: list[Proxy] = []
    dialect = request.getfixturevalue("sim_dialect") if "sim_dialect" in request.fixturenames else None

    def make(config: dict | None = None, env: dict[str, str] | None = None, **kwargs) -> Proxy:
        work = tmp_path / f"proxy{len(started)}"
        work.mkdir()
        kwargs.setdefault("dialect", dialect)
        proxy = start_proxy(work, config, env, **kwargs)
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        proxy.stop()


@pytest.fixture
def proxy(make_proxy) -> Proxy:
    """One proxy on the default simulator, no scenario, open auth."""
    return make_proxy()
