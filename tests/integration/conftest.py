from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

from harness.proxy import Proxy, deep_merge, start_proxy

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


def scenario_config(name: str, extra: dict | None = None) -> dict:
    """A proxy config on tests/fixtures/scenarios/<name>.yaml, merged with `extra`."""
    return deep_merge({"lingma": {"simulator": {"scenario": str(SCENARIOS / f"{name}.yaml")}}}, extra or {})


def module_proxy(factory: pytest.TempPathFactory, name: str, config: dict, **start_kwargs: Any) -> Iterator[Proxy]:
    """Body of a module-scoped fixture: one proxy (`start_kwargs` go to start_proxy), stopped at teardown."""
    proxy = start_proxy(Path(factory.mktemp(name)), config, **start_kwargs)
    yield proxy
    proxy.stop()


def scenario_proxy(
    name: str,
    config: dict | None = None,
    *,
    per: Literal["sim_dialect", "sim_runtime"] | None = None,
    **start_kwargs: Any,
) -> Callable[..., Iterator[Proxy]]:
    """A module-scoped fixture: one proxy on tests/fixtures/scenarios/<name>.yaml merged with `config`.

    `per="sim_dialect"` (or "sim_runtime") starts one proxy for each of that fixture's simulator dialects, and
    its tests run once against each; `start_kwargs` go to start_proxy (env, a fixed dialect, ...)."""
    merged = scenario_config(name, config)

    # The dialect fixture is a declared argument, never a `request.getfixturevalue` lookup: only a declared
    # dependency makes pytest start and cache one module proxy per dialect. Looked up, the first dialect's proxy
    # would serve every dialect's tests.
    if per is None:

        def fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
            yield from module_proxy(tmp_path_factory, name, merged, **start_kwargs)

    elif per == "sim_dialect":

        def fixture(tmp_path_factory: pytest.TempPathFactory, sim_dialect: str) -> Iterator[Proxy]:
            yield from module_proxy(tmp_path_factory, name, merged, dialect=sim_dialect, **start_kwargs)

    elif per == "sim_runtime":

        def fixture(tmp_path_factory: pytest.TempPathFactory, sim_runtime: str) -> Iterator[Proxy]:
            yield from module_proxy(tmp_path_factory, name, merged, dialect=sim_runtime, **start_kwargs)

    else:
        raise ValueError(f"per is sim_dialect, sim_runtime or None, not {per!r}")

    return pytest.fixture(scope="module")(fixture)


@pytest.fixture
def make_proxy(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Proxy]]:
    """Start real proxies (each with its simulator children); all are stopped at teardown.

    In a module that uses `sim_dialect` or `sim_runtime` (e.g. through
    `pytestmark = pytest.mark.usefixtures("sim_dialect")`), the simulators speak that dialect or runtime."""
    started: list[Proxy] = []
    runtime = next((name for name in ("sim_dialect", "sim_runtime") if name in request.fixturenames), None)
    dialect = request.getfixturevalue(runtime) if runtime else None

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
