from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from .proxy_harness import Proxy, start_proxy

SCENARIOS = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios"


@pytest.fixture
def make_proxy(tmp_path: Path) -> Iterator[Callable[..., Proxy]]:
    """Start real proxies (each with its simulator children); all are stopped at teardown."""
    started: list[Proxy] = []

    def make(config: dict | None = None, env: dict[str, str] | None = None, **kwargs) -> Proxy:
        work = tmp_path / f"proxy{len(started)}"
        work.mkdir()
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
