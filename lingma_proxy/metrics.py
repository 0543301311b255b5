"""Prometheus metrics (docs/features.md §8), on a registry of our own so nothing global leaks between apps."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .sessions import SessionCache
    from .upstream.pool import Pool

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_INSTANCE_STATES = ("starting", "ready", "logged_out", "failed", "stopped")


class Metrics:
    def __init__(self, pool: Pool, sessions: SessionCache) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "lingma_proxy_requests",
            "HTTP requests by route, protocol and status",
            ["route", "protocol", "status"],
            registry=r,
        )
        self.first_token = Histogram(
            "lingma_proxy_first_token_seconds",
            "Time to the first output token",
            ["protocol"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.total = Histogram(
            "lingma_proxy_completion_seconds",
            "Time to the end of a completion",
            ["protocol"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self._latency: dict[str, tuple[Histogram, Histogram]] = {}
        self.prompt_tokens = Counter(
            "lingma_proxy_prompt_tokens", "Prompt tokens of the conversations clients sent", registry=r
        )
        self.completion_tokens = Counter("lingma_proxy_completion_tokens", "Completion tokens returned", registry=r)
        self.upstream_prompt_tokens = Counter(
            "lingma_proxy_upstream_prompt_tokens",
            "Prompt tokens actually sent upstream (smaller with session reuse)",
            registry=r,
        )
        self.client_disconnects = Counter(
            "lingma_proxy_client_disconnects", "Requests abandoned by their client", registry=r
        )
        self.tool_parse_failures = Counter(
            "lingma_proxy_tool_parse_failures", "Action blocks rejected (unknown tool, bad JSON, schema)", registry=r
        )
        self.tool_repairs = Counter(
            "lingma_proxy_tool_repairs", "Repair prompts sent for a missing forced tool call", registry=r
        )
        self.logins = Counter("lingma_proxy_logins", "Login flows by result", ["result"], registry=r)
        self.model_fallbacks = Counter(
            "lingma_proxy_model_fallbacks", "Requests moved to the next of lingma.fallback_models",
            ["from_model", "to_model"], registry=r,
        )
        r.register(_LiveState(pool, sessions))

    def observe_completion(
        self, protocol: str, first_token_ms: int | None, total_ms: int, prompt: int, completion: int
    ) -> None:
        first_token, total = self._latency_of(protocol)
        if first_token_ms is not None:
            first_token.observe(first_token_ms / 1000)
        total.observe(total_ms / 1000)
        self.prompt_tokens.inc(prompt)
        self.completion_tokens.inc(completion)

    def _latency_of(self, protocol: str) -> tuple[Histogram, Histogram]:
        """The protocol's two histograms; looked up once, as labels() costs a lock and a lookup per call."""
        pair = self._latency.get(protocol)
        if pair is None:
            pair = self._latency[protocol] = (self.first_token.labels(protocol), self.total.labels(protocol))
        return pair

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _LiveState(Collector):
    """Values that live on the pool and the session cache, read at scrape time."""

    def __init__(self, pool: Pool, sessions: SessionCache) -> None:
        self.pool = pool
        self.sessions = sessions

    def collect(self) -> Iterator[Metric]:
        pool, slots = self.pool, self.pool.slots
        yield GaugeMetricFamily("lingma_proxy_in_flight", "Requests holding an upstream slot", value=slots.in_flight)
        yield CounterMetricFamily(
            "lingma_proxy_queue_rejections",
            "Requests refused with 429 after waiting for a slot",
            value=slots.rejections,
        )
        states = GaugeMetricFamily(
            "lingma_proxy_instance_state", "1 for each instance's current state", labels=["instance", "state"]
        )
        restarts = CounterMetricFamily("lingma_proxy_instance_restarts", "Instance restarts", labels=["instance"])
        in_flight = GaugeMetricFamily("lingma_proxy_instance_in_flight", "Requests per instance", labels=["instance"])
        rpc_errors = CounterMetricFamily(
            "lingma_proxy_upstream_rpc_errors", "Upstream RPC errors and timeouts", labels=["method"]
        )
        errors_by_method: dict[str, int] = {}
        for inst in pool.instances:
            for state in _INSTANCE_STATES:
                states.add_metric([inst.name, state], 1.0 if inst.state == state else 0.0)
            restarts.add_metric([inst.name], inst.restarts)
            in_flight.add_metric([inst.name], inst.in_flight)
            for method, count in inst.rpc_errors.items():
                errors_by_method[method] = errors_by_method.get(method, 0) + count
        for method, count in sorted(errors_by_method.items()):
            rpc_errors.add_metric([method], count)
        yield from (states, restarts, in_flight, rpc_errors)
        stats = self.sessions.stats()
        yield GaugeMetricFamily(
            "lingma_proxy_session_cache_entries", "Reusable upstream sessions held", value=stats["entries"]
        )
        for name in ("hits", "misses", "evictions"):
            yield CounterMetricFamily(f"lingma_proxy_session_cache_{name}", f"Session cache {name}", value=stats[name])
