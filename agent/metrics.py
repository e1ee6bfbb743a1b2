"""The agent's Prometheus metrics, on a registry of their own (one per Agent, so tests and two
agents in one process never collide in the global registry).

Names follow Prometheus conventions: `ray_ack_scaler_` prefix, `_total` counters, `_seconds`
histograms. Labels are small fixed sets (outcome, reason, pool id, API, code).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

PREFIX = "ray_ack_scaler"
# Decisions are milliseconds in-process, up to seconds through Function Compute (cold start).
DECISION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# Reaction spans the batch window (0.2-2 s) plus the decision and the write.
REACTION_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60, 120)


class AgentMetrics:
    """Every metric the agent exports; pass one instance to whoever records."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.pending_pods = Gauge(
            f"{PREFIX}_pending_pods", "Unschedulable pods the agent tracks", registry=r
        )
        self.decisions = Counter(
            f"{PREFIX}_decisions_total", "Decision rounds by outcome", ["outcome"], registry=r
        )
        self.decision_seconds = Histogram(
            f"{PREFIX}_decision_seconds",
            "Time to obtain a decision (build, call, validate)",
            buckets=DECISION_BUCKETS,
            registry=r,
        )
        self.reaction_seconds = Histogram(
            f"{PREFIX}_reaction_seconds",
            "From a pod's Unschedulable lastTransitionTime to the write that serves it",
            buckets=REACTION_BUCKETS,
            registry=r,
        )
        self.pool_desired = Gauge(
            f"{PREFIX}_pool_desired_nodes",
            "Node pool desired size as last read",
            ["pool"],
            registry=r,
        )
        self.pool_ready = Gauge(
            f"{PREFIX}_pool_ready_nodes",
            "Ready nodes of the pool in the view",
            ["pool"],
            registry=r,
        )
        self.eci_pods_placed = Counter(
            f"{PREFIX}_eci_pods_placed_total", "Pods given the ECI toleration", registry=r
        )
        self.api_errors = Counter(
            f"{PREFIX}_api_errors_total",
            "Failed calls by API and error code",
            ["api", "code"],
            registry=r,
        )
        self.watch_restarts = Counter(
            f"{PREFIX}_watch_restarts_total",
            "Watch stream restarts by stream and reason",
            ["stream", "reason"],
            registry=r,
        )
        self.cs_calls = Counter(
            f"{PREFIX}_cs_calls_total",
            "CS API call attempts by action and outcome (ok or error code)",
            ["action", "outcome"],
            registry=r,
        )
        self.nodes_removed = Counter(
            f"{PREFIX}_nodes_removed_total",
            "Nodes given back by scale-in (RemoveNodePoolNodes accepted)",
            ["pool"],
            registry=r,
        )
        self.scale_in_decisions = Counter(
            f"{PREFIX}_scale_in_decisions_total",
            "Scale-in rounds by outcome",
            ["outcome"],
            registry=r,
        )
        self.scale_in_kept = Counter(
            f"{PREFIX}_scale_in_nodes_kept_total",
            "Nodes a scale-in decision chose but the agent kept (a pod arrived, pool grew, ...)",
            registry=r,
        )

    def cs_attempt(self, action: str, outcome: str) -> None:
        """The NodePoolClient's `on_attempt` hook."""
        self.cs_calls.labels(action=action, outcome=outcome).inc()

    def expose_counts(
        self, name: str, documentation: str, *, label: str, counts: Callable[[], Mapping[str, int]]
    ) -> None:
        """Export a component's own counters dict (e.g. the decider circuit breaker's) as a
        counter family, read at scrape time."""
        self.registry.register(
            _CountsCollector(f"{PREFIX}_{name}", documentation, label=label, counts=counts)
        )

    def watch_restarted(self, stream: str, reason: str) -> None:
        self.watch_restarts.labels(stream=stream, reason=reason).inc()

    def api_error(self, api: str, code: int | str) -> None:
        self.api_errors.labels(api=api, code=str(code)).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _CountsCollector(Collector):
    def __init__(
        self, name: str, documentation: str, *, label: str, counts: Callable[[], Mapping[str, int]]
    ) -> None:
        self._name, self._documentation, self._label, self._counts = (
            name,
            documentation,
            label,
            counts,
        )

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self._name, self._documentation, labels=[self._label])
        for key, value in sorted(self._counts().items()):
            family.add_metric([key], value)
        yield family
