from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.proxy import Proxy, start_proxy

SCENARIOS = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios"
SIM_DIALECTS = ("classic", "acp")


@pytest.fixture(scope="module", params=SIM_DIALECTS)
def sim_dialect(request: pytest.FixtureRequest) -> str:
    """Opt-in: a module whose proxies use this runs once against each chat dialect (protocol §5, §9)."""
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
