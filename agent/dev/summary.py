"""What a dev-mode run did: the `RunRecord` folds the simulated cluster's object changes (worker
pods, nodes, the agent's pod events) and the agent's decision rounds into a timeline, and
`summarize` turns it into the one-line `--json` summary.

Pure bookkeeping: every time is passed in (simulated seconds since the run started for the
timeline, a real monotonic reading for reaction times), so nothing here reads a clock or a socket.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.actuate.actuation import PLACED_LABEL

WORKER_LABEL = ("ray.io/node-type", "worker")
# The actuator's events for a pod it served: a pool raise, or the ECI toleration patch.
SERVED_REASONS = ("TriggeredScaleUp", "PlacedOnECI")
# The scale-in events about a node whose removal did not happen (its drain failed).
SCALE_DOWN_FAILED = "ScaleDownFailed"


@dataclass(frozen=True)
class Sample:
    """Counts at one simulated moment (`t`: seconds since the run started)."""

    t: float
    pending: int  # worker pods not bound to a node
    starting: int  # bound, not Running yet
    running: int
    eci: int  # worker pods bound to the ECI virtual node
    nodes: tuple[tuple[str, int, int], ...]  # (pool id, NotReady, Ready), sorted by pool

    def counts(self) -> tuple[Any, ...]:
        return (self.pending, self.starting, self.running, self.eci, self.nodes)


@dataclass(frozen=True)
class Decision:
    """One decision round that had pods to decide for, at simulated `t`."""

    t: float
    outcome: str
    pods: int
    text: str


@dataclass
class _Pod:
    node: str = ""
    phase: str = "Pending"
    deleting: bool = False


@dataclass(frozen=True)
class CloudFacts:
    """What the emulators and the agent report at the end of a run."""

    scale_write_real_times: tuple[float, ...]  # accepted CS scale requests, real monotonic
    idle_node_seconds: float
    cost: float
    decisions: int
    errors: int


@dataclass
class RunRecord:
    """The run as seen from the cluster: fold `observe` over every store change."""

    namespace: str
    eci_node: str | None
    pool_label: str
    pods: dict[str, _Pod] = field(default_factory=dict)
    created: set[str] = field(default_factory=set)
    ran: set[str] = field(default_factory=set)
    on_eci: set[str] = field(default_factory=set)
    unplaceable: set[str] = field(default_factory=set)
    first_created_t: float | None = None
    last_first_running_t: float | None = None
    unschedulable_at: dict[str, float] = field(default_factory=dict)  # real time first seen
    served_at: dict[str, float] = field(default_factory=dict)  # real time the agent served it
    nodes: dict[str, tuple[str, bool]] = field(default_factory=dict)  # name -> (pool, ready)
    nodes_added: int = 0
    nodes_removed: int = 0
    scale_down_failures: int = 0  # ScaleDownFailed events
    failed_nodes: set[str] = field(default_factory=set)  # nodes with a ScaleDownFailed event
    failed_then_removed: set[str] = field(default_factory=set)  # ... removed later after all
    uncordoned_after_failure: set[str] = field(default_factory=set)  # ... seen schedulable
    cordoned: set[str] = field(default_factory=set)  # pool nodes unschedulable now
    samples: list[Sample] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)

    # --- folding ------------------------------------------------------------------------------

    def observe(
        self, kind: str, resource: str, obj: Mapping[str, Any], *, t: float, real: float
    ) -> None:
        """One store change (`kind` ADDED/MODIFIED/DELETED) at simulated `t` and real `real`."""
        if resource == "pods":
            self._pod(kind, obj, t=t, real=real)
        elif resource == "nodes":
            self._node(kind, obj)
        elif resource == "events" and kind == "ADDED":
            self._event(obj, real=real)

    def _pod(self, kind: str, obj: Mapping[str, Any], *, t: float, real: float) -> None:
        meta = obj.get("metadata") or {}
        labels = meta.get("labels") or {}
        if (
            meta.get("namespace") != self.namespace
            or labels.get(WORKER_LABEL[0]) != WORKER_LABEL[1]
        ):
            return
        name = str(meta.get("name"))
        if kind == "DELETED":
            self.pods.pop(name, None)
            return
        if name not in self.created:
            self.created.add(name)
            if self.first_created_t is None:
                self.first_created_t = t
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        pod = self.pods.setdefault(name, _Pod())
        pod.node = str(spec.get("nodeName") or "")
        pod.phase = str(status.get("phase") or "Pending")
        pod.deleting = bool(meta.get("deletionTimestamp"))
        if not pod.node and name not in self.unschedulable_at and _unschedulable(status):
            self.unschedulable_at[name] = real
        if pod.node and self.eci_node and pod.node == self.eci_node:
            self.on_eci.add(name)
        if pod.phase == "Running" and name not in self.ran:
            self.ran.add(name)
            self.last_first_running_t = t
        if labels.get(PLACED_LABEL) == "eci":  # the agent's ECI patch
            self.served_at.setdefault(name, real)

    def _node(self, kind: str, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        name = str(meta.get("name"))
        pool = (meta.get("labels") or {}).get(self.pool_label)
        if not pool:
            return
        if kind == "DELETED":
            if self.nodes.pop(name, None) is not None:
                self.nodes_removed += 1
            self.cordoned.discard(name)
            if name in self.failed_nodes:
                self.failed_then_removed.add(name)
            return
        if name not in self.nodes:
            self.nodes_added += 1
        self.nodes[name] = (str(pool), _ready(obj))
        if (obj.get("spec") or {}).get("unschedulable"):
            self.cordoned.add(name)
        else:
            self.cordoned.discard(name)
            if name in self.failed_nodes:
                self.uncordoned_after_failure.add(name)

    def _event(self, obj: Mapping[str, Any], *, real: float) -> None:
        involved = obj.get("involvedObject") or {}
        if obj.get("reason") == SCALE_DOWN_FAILED and involved.get("kind") == "Node":
            name = str(involved.get("name"))
            self.scale_down_failures += 1
            self.failed_nodes.add(name)
            if name in self.nodes and name not in self.cordoned:  # uncordoned before the Event
                self.uncordoned_after_failure.add(name)
            return
        if obj.get("reason") not in SERVED_REASONS:
            return
        if involved.get("kind") == "Pod" and involved.get("namespace") == self.namespace:
            self.served_at.setdefault(str(involved.get("name")), real)

    def decided(self, *, t: float, outcome: str, pods: int, text: str) -> None:
        self.decisions.append(Decision(t=t, outcome=outcome, pods=pods, text=text))

    def mark_unplaceable(self, names: Iterable[str]) -> None:
        self.unplaceable.update(names)

    # --- reading ------------------------------------------------------------------------------

    def sample(self, t: float) -> Sample:
        """The counts now; appended to the timeline when they changed."""
        live = [p for p in self.pods.values() if not p.deleting]
        by_pool: dict[str, list[int]] = {}
        for pool, ready in self.nodes.values():
            by_pool.setdefault(pool, [0, 0])[1 if ready else 0] += 1
        point = Sample(
            t=t,
            pending=sum(1 for p in live if not p.node),
            starting=sum(1 for p in live if p.node and p.phase != "Running"),
            running=sum(1 for p in live if p.phase == "Running"),
            eci=sum(1 for p in live if p.node and p.node == self.eci_node),
            nodes=tuple((pool, c[0], c[1]) for pool, c in sorted(by_pool.items())),
        )
        if not self.samples or self.samples[-1].counts() != point.counts():
            self.samples.append(point)
        return point

    def pool_nodes(self) -> dict[str, tuple[int, int]]:
        """Pool id → (NotReady, Ready) nodes now."""
        counts: dict[str, tuple[int, int]] = {}
        for pool, ready in self.nodes.values():
            not_ready, ready_count = counts.get(pool, (0, 0))
            counts[pool] = (not_ready + (not ready), ready_count + ready)
        return counts

    def reaction_seconds(self, scale_writes: Sequence[float]) -> list[float]:
        """Per served pod: from the moment its Unschedulable condition was written to the agent's
        write serving it — the last accepted CS scale request before the agent's event for the
        pod, or the ECI patch itself — in real seconds."""
        writes = sorted(scale_writes)
        reactions = []
        for name, served in self.served_at.items():
            since = self.unschedulable_at.get(name)
            if since is None or served < since:
                continue
            before = [w for w in writes if since <= w <= served]
            reactions.append((before[-1] if before else served) - since)
        return reactions


def _unschedulable(status: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "PodScheduled"
        and c.get("status") == "False"
        and c.get("reason") == "Unschedulable"
        for c in status.get("conditions") or ()
    )


def _ready(node: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (node.get("status") or {}).get("conditions") or ()
    )


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]


def summarize(record: RunRecord, *, scenario: str, facts: CloudFacts) -> dict[str, Any]:
    """The `--json` summary line (simulated seconds, real milliseconds for reactions)."""
    reactions = [s * 1000 for s in record.reaction_seconds(facts.scale_write_real_times)]
    to_all_running = None
    if record.created and record.ran >= record.created and record.first_created_t is not None:
        to_all_running = round((record.last_first_running_t or 0.0) - record.first_created_t, 1)
    p50, p99 = _percentile(reactions, 50), _percentile(reactions, 99)
    return {
        "scenario": scenario,
        "pods": len(record.created),
        "running": len(record.ran),
        "unplaceable": len(record.unplaceable),
        "nodesAdded": record.nodes_added,
        "nodesRemoved": record.nodes_removed,
        "eciPods": len(record.on_eci),
        "timeToAllRunningSeconds": to_all_running,
        "idleNodeSeconds": round(facts.idle_node_seconds, 1),
        "reactionMs": {
            "p50": None if p50 is None else round(p50, 1),
            "p99": None if p99 is None else round(p99, 1),
        },
        "decisions": facts.decisions,
        "scaleDown": {
            "failed": record.scale_down_failures,
            "uncordonedAfterFailure": len(record.uncordoned_after_failure),
            "failedThenRemoved": len(record.failed_then_removed),
            "cordonedAtEnd": len(record.cordoned),
        },
        "scaleWrites": len(facts.scale_write_real_times),
        "errors": facts.errors,
        "costEstimate": round(facts.cost, 4),
    }
