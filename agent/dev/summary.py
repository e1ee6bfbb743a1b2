"""What a dev-mode run did: the `RunRecord` folds the simulated cluster's object changes (worker
pods, nodes, the agent's pod events) and the agent's decision rounds into a timeline, and
`summarize` turns it into the one-line `--json` summary. `error_codes` says which refusals one of
the agent's log events reports, so the summary counts every error by code; `fault_seen` says which
injected fault (`agent.sim.faults`) one of them shows the agent met.

Pure bookkeeping: every time is passed in (simulated seconds since the run started for the
timeline, a real monotonic reading for reaction times), so nothing here reads a clock or a socket.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.actuate.actuation import PLACED_LABEL
from agent.sim.faults import CS_5XX, CS_THROTTLED, FAULT_KINDS, FC_ERRORS, GONE_410, WATCH_CUTS
from agent.sim.world.ack_autoscaler import COMPONENT as ACK_AUTOSCALER

WORKER_LABEL = ("ray.io/node-type", "worker")
# The actuator's events for a pod it served: a pool raise, or the ECI toleration patch.
SERVED_REASONS = ("TriggeredScaleUp", "PlacedOnECI")
# The scale-in events about a node whose removal did not happen (its drain failed).
SCALE_DOWN_FAILED = "ScaleDownFailed"
# What a decision line is about: a round for newly pending pods, a later round over pods still
# pending (the resync tick, or a follow-up after a capped or refused write), or a scale-in round.
SCALE_OUT, FOLLOW_UP, SCALE_IN = "scale-out", "follow-up", "scale-in"
DECISION_KINDS = {SCALE_OUT: "scaleOut", FOLLOW_UP: "followUp", SCALE_IN: "scaleIn"}
# cluster-autoscaler's TriggeredScaleUp wording names the pool first: "[{np-cpu 0->5 (max: 10)}]"
_SCALE_UP_POOL = re.compile(r"\[\{(\S+) ")
# "CODE: message" (a failed CS task's error, a DecisionFailed) or "CODE (status): message"
_LEADING_CODE = re.compile(r"^([A-Za-z][\w.]*)(?: \(\w+\))?:")
# The fault kinds the agent's log can show it met (`fault_seen`): an FC timeout shows as a retried
# decider call like a 5xx, and a history compaction only through the 410 it causes.
SEEN_KINDS = (CS_THROTTLED, CS_5XX, FC_ERRORS, WATCH_CUTS, GONE_410)


@dataclass(frozen=True)
class Sample:
    """Counts at one simulated moment (`t`: seconds since the run started)."""

    t: float
    pending: int  # worker pods not bound to a node
    starting: int  # bound, not Running yet
    running: int
    eci: int  # worker pods bound to the ECI virtual node
    nodes: tuple[tuple[str, int, int], ...]  # (pool id, NotReady, Ready), sorted by pool
    wanted: tuple[tuple[str, int], ...] = ()  # (pool id, desired size), sorted by pool
    # (worker group, the RayCluster's spec replicas for it): the workers Ray's autoscaler wants
    replicas: tuple[tuple[str, int], ...] = ()

    def counts(self) -> tuple[Any, ...]:
        return (
            self.pending,
            self.starting,
            self.running,
            self.eci,
            self.nodes,
            self.wanted,
            self.replicas,
        )

    @property
    def workers_wanted(self) -> int:
        return sum(count for _, count in self.replicas)


@dataclass(frozen=True)
class Decision:
    """One decision round that had pods to decide for, at simulated `t`."""

    t: float
    outcome: str
    pods: int
    text: str
    reasons: tuple[str, ...] = ()  # per action: "np-cpu 0→5: <the decide/v1 reason>"
    nodes: tuple[str, ...] = ()  # the nodes a scale-in round removed
    kind: str = SCALE_OUT  # SCALE_OUT, FOLLOW_UP or SCALE_IN


@dataclass(frozen=True)
class ScaleWrite:
    """An accepted CS scale request: when (real monotonic seconds) and for which pool."""

    real: float
    pool: str


@dataclass(frozen=True)
class AckChange:
    """A change ACK's own autoscaler (the simulator's stand-in, not the agent) made to a pool's
    desired size, at simulated `t`: `kind` "scale-up" or "scale-down", `text` its line."""

    t: float
    kind: str
    text: str


@dataclass
class _Pod:
    node: str = ""
    phase: str = "Pending"
    deleting: bool = False


@dataclass(frozen=True)
class CloudFacts:
    """What the emulators and the agent report at the end of a run."""

    scale_writes: tuple[ScaleWrite, ...]
    idle_node_seconds: float
    cost: float
    errors_by_code: Mapping[str, int]  # every refusal or failure the agent met, by code
    # How the run ended ("rest", "time-limit", ...) and after how many simulated seconds.
    ending: str = ""
    seconds: float = 0.0
    # Per pool at the end: (desired size, nodes CS counts), so a raised target nobody got shows.
    pools: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    # The simulator's injected faults by kind (FaultPlan.counts), and those the agent's log shows
    # it met (`fault_seen`).
    faults_injected: Mapping[str, int] = field(default_factory=dict)
    faults_seen: Mapping[str, int] = field(default_factory=dict)
    # Simulated seconds from Ray's first raise of a worker group's replicas to the first pool
    # scale write (None if either never happened): how early the agent asked for a node.
    first_node_requested_seconds: float | None = None
    # Whether the agent ran at all (`dev --no-agent`: the simulated world alone).
    agent: bool = True
    # Every write call the CS emulator received (ModifyClusterNodePool, ScaleClusterNodePool,
    # RemoveNodePoolNodes; accepted or refused): in a dev run only the agent calls CS.
    agent_cs_writes: int = 0
    node_cost: float = 0.0  # pool nodes, billed from launch to removal
    eci_cost: float = 0.0  # ECI pods, billed per second


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
    unplaceable: set[str] = field(default_factory=set)  # decided unplaceable at least once
    # per pod, what the agent last did about it: "unplaceable", or "served" (a pool raise for it,
    # or its ECI patch); a pod that ends unplaceable is one whose last word was "unplaceable"
    verdicts: dict[str, str] = field(default_factory=dict)
    first_created_t: float | None = None
    last_first_running_t: float | None = None
    unschedulable_at: dict[str, float] = field(default_factory=dict)  # real time first seen
    served_at: dict[str, float] = field(default_factory=dict)  # real time the agent served it
    served_by: dict[str, str] = field(default_factory=dict)  # pool id, or "eci"
    nodes: dict[str, tuple[str, bool]] = field(default_factory=dict)  # name -> (pool, ready)
    nodes_added: int = 0
    nodes_removed: int = 0
    peak_pool_nodes: int = 0  # the most pool nodes that existed at once
    scale_down_failures: int = 0  # ScaleDownFailed events
    failed_nodes: set[str] = field(default_factory=set)  # nodes with a ScaleDownFailed event
    failed_then_removed: set[str] = field(default_factory=set)  # ... removed later after all
    uncordoned_after_failure: set[str] = field(default_factory=set)  # ... seen schedulable
    cordoned: set[str] = field(default_factory=set)  # pool nodes unschedulable now
    samples: list[Sample] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    ack_changes: list[AckChange] = field(default_factory=list)  # ACK's autoscaler, not the agent

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
            self._served(name, real=real, by="eci")

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
        self.peak_pool_nodes = max(self.peak_pool_nodes, len(self.nodes))
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
        if (obj.get("source") or {}).get("component") == ACK_AUTOSCALER:
            return  # ACK's own autoscaler served the pod, not the agent
        if involved.get("kind") == "Pod" and involved.get("namespace") == self.namespace:
            pool = _SCALE_UP_POOL.search(str(obj.get("message") or ""))
            by = "eci" if obj.get("reason") == "PlacedOnECI" else (pool.group(1) if pool else "")
            self._served(str(involved.get("name")), real=real, by=by)

    def _served(self, name: str, *, real: float, by: str) -> None:
        self.verdicts[name] = "served"
        if name not in self.served_at:
            self.served_at[name] = real
            self.served_by[name] = by

    def decided(
        self,
        *,
        t: float,
        outcome: str,
        pods: int,
        text: str,
        reasons: Iterable[str] = (),
        nodes: Iterable[str] = (),
        kind: str = SCALE_OUT,
    ) -> None:
        self.decisions.append(
            Decision(
                t=t,
                outcome=outcome,
                pods=pods,
                text=text,
                reasons=tuple(reasons),
                nodes=tuple(nodes),
                kind=kind,
            )
        )

    def ack_changed(self, *, t: float, kind: str, text: str) -> None:
        self.ack_changes.append(AckChange(t=t, kind=kind, text=text))

    def mark_unplaceable(self, names: Iterable[str]) -> None:
        for name in names:
            self.unplaceable.add(name)
            self.verdicts[name] = "unplaceable"

    # --- reading ------------------------------------------------------------------------------

    def sample(
        self,
        t: float,
        *,
        wanted: Mapping[str, int] | None = None,
        replicas: Mapping[str, int] | None = None,
    ) -> Sample:
        """The counts now, with each pool's desired size and each worker group's wanted
        replicas if given; appended to the timeline when they changed."""
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
            wanted=tuple(sorted((wanted or {}).items())),
            replicas=tuple(sorted((replicas or {}).items())),
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

    def ended_unplaceable(self) -> set[str]:
        """Worker pods the agent last called unplaceable that did not get a node in the end:
        still waiting unbound, or deleted without ever running."""
        ended = set()
        for name, verdict in self.verdicts.items():
            if verdict != "unplaceable":
                continue
            pod = self.pods.get(name)
            if (pod is not None and not pod.node) or (pod is None and name not in self.ran):
                ended.add(name)
        return ended

    def reaction_seconds(self, scale_writes: Sequence[ScaleWrite]) -> list[float]:
        """Per served pod: from the moment its Unschedulable condition was seen to the agent's
        own write for that pod — its ECI patch, or the last accepted scale request for the pool
        its TriggeredScaleUp event names before that event — in real seconds. A pod served by
        ECI is never timed by a pool write that happened to fall before its patch."""
        writes = sorted(scale_writes, key=lambda w: w.real)
        reactions = []
        for name, served in self.served_at.items():
            since = self.unschedulable_at.get(name)
            if since is None or served < since:
                continue
            by = self.served_by.get(name, "")
            if by == "eci":
                reactions.append(served - since)
                continue
            before = [w.real for w in writes if since <= w.real <= served and w.pool == by]
            if not before:  # an event that named no pool we know: the last write of any pool
                before = [w.real for w in writes if since <= w.real <= served]
            reactions.append((before[-1] if before else served) - since)
        return reactions


def action_reasons(actions: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """One line per action of a decision round (the agent's RoundRecord.actions): where its pods
    went, and the decide/v1 reason why."""
    lines = []
    for action in actions:
        where = action.get("pool") or ("ECI" if action.get("kind") == "place-on-eci" else "?")
        lines.append(
            f"{where} ({action.get('pods', 0)} pods): {action.get('reason') or 'no reason given'}"
        )
    return tuple(lines)


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


def error_codes(event: Mapping[str, Any]) -> tuple[str, ...]:
    """The refusals and failures one of the agent's log events reports, by code; () for events
    that report none, or only repeat one counted from an earlier event.

    Each failed attempt is counted where the agent first logs it: a CS call retried or given up
    ("cs call retried" / "cs call failed", so a throttled call that succeeded on its second try
    counts one Throttling.User), a decider call retried, a decider round given up, a scale-out
    task the cloud failed (ECS's OperationDenied.NoStock), and any other error the agent reports
    (by its source). The "error" events of source cs repeat a "cs call failed" and are skipped."""
    name = event.get("event")
    if name in ("cs call retried", "cs call failed", "decider retried"):
        return (str(event.get("code") or "unknown"),)
    if name == "scale-out failed":
        found = _LEADING_CODE.match(str(event.get("error") or ""))
        return (found.group(1) if found else "TaskFailed",)
    if name == "error":
        source, message = str(event.get("source") or "agent"), str(event.get("message") or "")
        if source == "cs":
            return ()
        found = _LEADING_CODE.match(message)
        return (found.group(1) if source == "decider" and found else source,)
    return ()


def fault_seen(event: Mapping[str, Any]) -> str | None:
    """The injected fault kind (agent.sim.faults) one of the agent's log events shows it met, or
    None: a CS call refused with Throttling.User or a 5xx (retried or given up), a decider call
    retried (an FC 5xx or timeout), a watch that ended early ("eof": a cut) or was told its version
    is gone ("expired": 410)."""
    name = event.get("event")
    if name in ("cs call retried", "cs call failed"):
        if event.get("code") == "Throttling.User":
            return CS_THROTTLED
        status = event.get("status")
        return CS_5XX if isinstance(status, int) and status >= 500 else None
    if name == "decider retried":
        return FC_ERRORS
    if name == "watch restart":
        return {"eof": WATCH_CUTS, "expired": GONE_410}.get(str(event.get("reason")))
    return None


def decision_counts(decisions: Sequence[Decision]) -> dict[str, int]:
    """Decision lines by kind, under their summary names (scaleOut, followUp, scaleIn)."""
    counts = dict.fromkeys(DECISION_KINDS.values(), 0)
    for decision in decisions:
        key = DECISION_KINDS.get(decision.kind, decision.kind)
        counts[key] = counts.get(key, 0) + 1
    return counts


def summarize(record: RunRecord, *, scenario: str, facts: CloudFacts) -> dict[str, Any]:
    """The `--json` summary line (simulated seconds, real milliseconds for reactions).

    `idleNodeSeconds`: over every pool node of the run, its billed seconds (launch to removal)
    during which no workload pod — a pod bound to it, not finished, not a DaemonSet pod — was on
    it. Pool nodes run nothing but Ray workers in the built-in scenarios (the head and add-ons
    stay on the system nodes, which are not counted), so there it is the node-seconds with no
    Ray worker on the node, booting time included. `agentCsWrites`: the CS write calls the agent
    made; `ackAutoscaler`: what ACK's own autoscaler did to pools with auto scaling on."""
    reactions = [s * 1000 for s in record.reaction_seconds(facts.scale_writes)]
    ended_unplaceable = record.ended_unplaceable()
    to_all_running = None
    if record.created and record.ran >= record.created and record.first_created_t is not None:
        to_all_running = round((record.last_first_running_t or 0.0) - record.first_created_t, 1)
    p50, p99 = _percentile(reactions, 50), _percentile(reactions, 99)
    return {
        "scenario": scenario,
        "agent": facts.agent,
        "pods": len(record.created),
        "running": len(record.ran),
        "unplaceable": len(ended_unplaceable),  # ended so: no node for them at the end
        "unplaceableTransient": len(record.unplaceable - ended_unplaceable),  # placed later
        "nodesAdded": record.nodes_added,
        "nodesRemoved": record.nodes_removed,
        "peakPoolNodes": record.peak_pool_nodes,
        "eciPods": len(record.on_eci),
        "timeToAllRunningSeconds": to_all_running,
        "firstNodeRequestedSeconds": facts.first_node_requested_seconds,
        "idleNodeSeconds": round(facts.idle_node_seconds, 1),
        "reactionMs": {
            "p50": None if p50 is None else round(p50, 1),
            "p99": None if p99 is None else round(p99, 1),
            "pods": len(reactions),
        },
        "decisions": len(record.decisions),  # one per decision line shown
        "decisionsByKind": decision_counts(record.decisions),
        "scaleDown": {
            "failed": record.scale_down_failures,
            "uncordonedAfterFailure": len(record.uncordoned_after_failure),
            "failedThenRemoved": len(record.failed_then_removed),
            "cordonedAtEnd": len(record.cordoned),
        },
        "scaleWrites": len(facts.scale_writes),
        "agentCsWrites": facts.agent_cs_writes,
        "ackAutoscaler": {
            "scaleUps": sum(1 for c in record.ack_changes if c.kind == "scale-up"),
            "scaleDowns": sum(1 for c in record.ack_changes if c.kind == "scale-down"),
            "changes": [f"t+{c.t:.0f}s {c.text}" for c in record.ack_changes],
        },
        "errors": sum(facts.errors_by_code.values()),
        "errorsByCode": dict(sorted(facts.errors_by_code.items())),
        "costEstimate": round(facts.cost, 4),
        "nodeCost": round(facts.node_cost, 4),
        "eciCost": round(facts.eci_cost, 4),
        "ending": facts.ending,
        "simulatedSeconds": round(facts.seconds, 1),
        "poolsAtEnd": {
            pool: {"desired": desired, "nodes": nodes}
            for pool, (desired, nodes) in sorted(facts.pools.items())
        },
        "faults": {
            "injected": {kind: facts.faults_injected.get(kind, 0) for kind in FAULT_KINDS},
            "seenByAgent": {kind: facts.faults_seen.get(kind, 0) for kind in SEEN_KINDS},
            # survived: whatever was injected, the run still reached its outcome — at rest,
            # every worker ran, none left without a place
            "survived": facts.ending == "rest"
            and len(record.ran) == len(record.created)
            and not ended_unplaceable,
        },
    }
