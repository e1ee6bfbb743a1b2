"""ACK's own node autoscaler, as a stand-in: the cluster-autoscaler that owns `desired_size` of
every node pool with ACK node autoscaling on (`auto_scaling.enable=true`).

ACK's node autoscaling is cluster-autoscaler run by ACK (ACK "Enable node autoscaling"; its FAQ
"What scheduling policies does cluster-autoscaler use?"). It is part of ACK, not a CS API client:
this stand-in sets the simulated pools' desired size directly, so the CS emulator's journal keeps
showing only the agent's writes. What it models, on the simulated clock:

- a scan every `scanIntervalSeconds` (30 s: the interval of ACK's managed configuration, facts.md;
  upstream's `--scan-interval` default is 10 s, cluster-autoscaler FAQ.md "What are the parameters
  to CA?"); nothing between scans, so a pod pending just after one waits for the next;
- scale-up: the pods Pending with PodScheduled=False reason Unschedulable and no
  `status.nominatedNodeName`; those that fit an existing node are dropped first, as
  cluster-autoscaler's filter_out_schedulable does (core/podlistprocessor/filter_out_schedulable.go:
  a pod the scheduler will place on its next try triggers nothing) — the ECI virtual node included
  when the pod tolerates its taint, and nodes still booting (Ready=False) and nodes a pool's
  desired size asks for but that are not registered yet counted as Ready, as the upcoming nodes
  static_autoscaler.go adds to its snapshot; the rest are packed first-fit, in kube-scheduler's
  queue order, onto new nodes shaped like the pool's (allocatable, labels, taints; the scheduler's
  own filters decide the fit), and the pool's desired size rises by the nodes opened, never past
  `max_instances` nor the cluster's node quota. Pods get cluster-autoscaler's Events:
  `TriggeredScaleUp` "pod triggered scale-up: [{np 0->3 (max: 10)}]" and `NotTriggerScaleUp`
  "pod didn't trigger scale-up: <reasons>" (core/scaleup/orchestrator/executor.go and
  core/utils/pod_list_processor: the wording users read in `kubectl describe pod`);
- scale-in: a Ready node of such a pool whose only pods are DaemonSet or mirror pods for
  `scaleDownUnneededSeconds` (600 s: `--scale-down-unneeded-time`, FAQ.md; ACK's own default for
  its "scale-in trigger delay" was not found, so upstream's is used) is removed (the pool's
  RemoveNodePoolNodes path, drained — empty, so at once) and the desired size drops by one, never
  below `min_instances`; none while `scaleDownDelayAfterAddSeconds` (600 s,
  `--scale-down-delay-after-add`) has not passed since the last scale-up. The node gets the Event
  `ScaleDownEmpty` "Scale-down: removing empty node NAME".

Not modelled (said so, the stricter reading where it matters): the expanders (with several pools
a pod takes the first pool by id that fits it, where ACK's default is least-waste), the
First-Fit-Decreasing order of the binpacking estimator (simple first-fit in queue order: it may
open more nodes than FFD, never fewer), DaemonSet pods on template nodes, the scale-up backoff
after a failed scale-out and `--max-node-provision-time`, the `ToBeDeletedByClusterAutoscaler`
taint, and the drain of under-utilised nodes (real cluster-autoscaler also removes nodes below a
0.5 utilisation threshold whose pods fit elsewhere: here only empty nodes go).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.sim.kube.store import ObjectStore
from agent.sim.world.clock import SimClock
from agent.sim.world.events import EventRecorder, object_reference
from agent.sim.world.nodepools import POOL_LABEL, NodePools, PoolSpec
from agent.sim.world.nodes import NOT_READY_TAINT, node_object, occupies_node
from agent.sim.world.scheduler import (
    NodeInfo,
    PodInfo,
    node_info,
    pod_info,
    pod_requests,
    resource_reasons,
    static_reason,
)
from agent.sim.world.tasks import cancel_and_wait
from functions.errors import DecisionError
from functions.predicates import insufficient

log = logging.getLogger(__name__)

COMPONENT = "cluster-autoscaler"  # the Events' source, as cluster-autoscaler records them
SCAN_INTERVAL_SECONDS = 30.0
SCALE_DOWN_UNNEEDED_SECONDS = 600.0
SCALE_DOWN_DELAY_AFTER_ADD_SECONDS = 600.0
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"  # a static pod's API mirror
MAX_NODE_GROUP_SIZE_REACHED = "max node group size reached"
TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})


@dataclass(frozen=True)
class AckAutoscalerSpec:
    """The stand-in's settings, a scenario's `ackAutoscaler` section."""

    scan_interval_seconds: float = SCAN_INTERVAL_SECONDS
    scale_down_unneeded_seconds: float = SCALE_DOWN_UNNEEDED_SECONDS
    scale_down_delay_after_add_seconds: float = SCALE_DOWN_DELAY_AFTER_ADD_SECONDS


@dataclass(frozen=True)
class ScaleChange:
    """One change the stand-in made to a pool's desired size, at simulated epoch `at`."""

    at: float
    pool_id: str
    before: int
    after: int
    pods: int = 0  # the unschedulable pods a scale-up was for
    nodes: tuple[str, ...] = ()  # the empty nodes a scale-down removed

    @property
    def kind(self) -> str:
        return "scale-up" if self.after > self.before else "scale-down"

    def text(self) -> str:
        """`np-cpu 0→3 (scale-up for 13 unschedulable pods)`"""
        why = (
            f"scale-up for {self.pods} unschedulable pods"
            if self.kind == "scale-up"
            else f"scale-down of empty nodes {', '.join(self.nodes)}"
        )
        return f"{self.pool_id} {self.before}→{self.after} ({why})"


@dataclass
class _Bin:
    """A new node of a pool being filled during one scan."""

    free: dict[str, int]
    pods: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class ScaleUpPlan:
    """What one scan's scale-up decided: new nodes per pool, and the pods each pool serves."""

    new_nodes: Mapping[str, int]
    served: Mapping[str, tuple[tuple[str, str], ...]]
    refused: Mapping[tuple[str, str], str]  # pod -> NotTriggerScaleUp reasons


def fits_existing(
    pods: Iterable[PodInfo], nodes: Mapping[str, NodeInfo], used: dict[str, dict[str, int]]
) -> tuple[list[PodInfo], list[PodInfo]]:
    """filter_out_schedulable: (pods some existing node takes, the rest), in queue order; each pod
    that fits is booked on the first node (by name) that takes it, in `used`."""
    fitting, rest = [], []
    for pod in sorted(pods, key=lambda p: p.order):
        for name in sorted(nodes):
            node = nodes[name]
            if static_reason(pod, node) is not None:
                continue
            taken = used.setdefault(name, {})
            free = {r: node.allocatable.get(r, 0) - taken.get(r, 0) for r in pod.requests}
            if insufficient(dict(pod.requests), free):
                continue
            for resource, value in pod.requests.items():
                taken[resource] = taken.get(resource, 0) + value
            fitting.append(pod)
            break
        else:
            rest.append(pod)
    return fitting, rest


def plan_scale_up(
    pods: Sequence[PodInfo], templates: Mapping[str, NodeInfo], room: Mapping[str, int]
) -> ScaleUpPlan:
    """Pack `pods` first-fit onto new nodes shaped as `templates` (pool id -> node), at most
    `room[pool]` new nodes a pool; a pod goes to the first pool (by id) that can take it."""
    bins: dict[str, list[_Bin]] = {pool: [] for pool in templates}
    served: dict[str, list[tuple[str, str]]] = {pool: [] for pool in templates}
    refused: dict[tuple[str, str], str] = {}
    for pod in sorted(pods, key=lambda p: p.order):
        reasons: dict[str, int] = {}
        for pool in sorted(templates):
            template = templates[pool]
            reason = static_reason(pod, template)
            if reason is None and insufficient(dict(pod.requests), dict(template.allocatable)):
                reason = ", ".join(resource_reasons(pod.requests, template.allocatable))
            if reason is not None:
                reasons[reason] = reasons.get(reason, 0) + 1
                continue
            chosen = next(
                (b for b in bins[pool] if not insufficient(dict(pod.requests), b.free)), None
            )
            if chosen is None:
                if len(bins[pool]) >= room.get(pool, 0):
                    reasons[MAX_NODE_GROUP_SIZE_REACHED] = (
                        reasons.get(MAX_NODE_GROUP_SIZE_REACHED, 0) + 1
                    )
                    continue
                chosen = _Bin(free=dict(template.allocatable))
                bins[pool].append(chosen)
            for resource, value in pod.requests.items():
                chosen.free[resource] = chosen.free.get(resource, 0) - value
            chosen.pods.append(pod.key)
            served[pool].append(pod.key)
            break
        else:
            refused[pod.key] = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
    return ScaleUpPlan(
        new_nodes={pool: len(b) for pool, b in bins.items() if b},
        served={pool: tuple(keys) for pool, keys in served.items() if keys},
        refused=refused,
    )


def is_unschedulable(pod: Mapping[str, Any]) -> bool:
    """Pending, unbound, PodScheduled=False reason Unschedulable, and not nominated to a node
    (a nominated pod waits for a preemption, not for capacity)."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    if spec.get("nodeName") or status.get("nominatedNodeName"):
        return False
    if (pod.get("metadata") or {}).get("deletionTimestamp") or status.get("phase") != "Pending":
        return False
    return any(
        c.get("type") == "PodScheduled"
        and c.get("status") == "False"
        and c.get("reason") == "Unschedulable"
        for c in status.get("conditions") or ()
    )


def holds_node(pod: Mapping[str, Any]) -> str | None:
    """The node a pod keeps from being empty: a bound, unfinished pod that is neither a DaemonSet
    nor a mirror pod (cluster-autoscaler's scale-down ignores both)."""
    if MIRROR_ANNOTATION in ((pod.get("metadata") or {}).get("annotations") or {}):
        return None
    return occupies_node(pod)


class AckAutoscaler:
    """The cluster-autoscaler of ACK over the simulated pools with auto scaling on (a SimCluster
    component). `changes` lists what it did, oldest first; `scans` counts its passes over a
    cluster with such a pool."""

    def __init__(
        self,
        store: ObjectStore,
        clock: SimClock,
        *,
        pools: NodePools,
        spec: AckAutoscalerSpec | None = None,
        node_quota: int,
    ) -> None:
        self._store = store
        self._clock = clock
        self._pools = pools
        self.spec = spec or AckAutoscalerSpec()
        self._node_quota = node_quota
        self.events = EventRecorder(store, clock, component=COMPONENT)
        self.changes: list[ScaleChange] = []
        self.scans = 0
        self._empty_since: dict[str, float] = {}
        self._last_scale_up: float | None = None
        self._task: asyncio.Task[None] | None = None
        self.started_at: float | None = None  # simulated epoch: the first scan is a period later

    async def start(self) -> None:
        self.started_at = self._clock.now()
        self._task = asyncio.create_task(self._run(), name="ack-autoscaler")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None
        await self.events.aclose()

    async def _run(self) -> None:
        while True:
            await self._clock.sleep(self.spec.scan_interval_seconds)
            try:
                self.scan()
            except Exception:  # one bad scan must not stop the autoscaler for good
                log.exception("ACK autoscaler scan failed")

    # -- one scan ---------------------------------------------------------------------------

    def scan(self) -> list[ScaleChange]:
        """One RunOnce: scale up for unschedulable pods, then scale empty nodes in."""
        pools = [spec for spec in self._pools.specs() if spec.auto_scaling]
        if not pools:
            return []  # ACK runs its autoscaler only once a pool has auto scaling on
        self.scans += 1
        nodes, _ = self._store.list("nodes")
        pods, _ = self._store.list("pods")
        made = self._scale_up(pools, nodes, pods)
        made += self._scale_down(pools, nodes, pods, up=bool(made))
        self.changes.extend(made)
        return made

    def _scale_up(
        self,
        pools: list[PoolSpec],
        nodes: list[dict[str, Any]],
        pods: list[dict[str, Any]],
    ) -> list[ScaleChange]:
        waiting = []
        by_key: dict[tuple[str, str], dict[str, Any]] = {}
        for pod in pods:
            if not is_unschedulable(pod):
                continue
            try:
                info = pod_info(pod)
            except DecisionError:
                continue  # unparsable requests: the scheduler refuses it too
            waiting.append(info)
            by_key[info.key] = pod
        if not waiting:
            return []
        views = {view.pool_id: view for view in self._pools.describe_pools()}
        snapshot, used = self._snapshot(nodes, pods, pools, views)
        _, rest = fits_existing(waiting, snapshot, used)
        if not rest:
            return []
        quota_room = max(0, self._node_quota - self._pools.cluster_nodes())
        room = {p.pool_id: max(0, p.max_size - views[p.pool_id].desired) for p in pools}
        plan = plan_scale_up(rest, {p.pool_id: _template(self._pools, p) for p in pools}, room)
        made = []
        for pool_id, count in sorted(plan.new_nodes.items()):
            count = min(count, quota_room)
            if count <= 0:
                continue
            quota_room -= count
            before = views[pool_id].desired
            after = before + count
            self._pools.set_desired(pool_id, after)
            change = ScaleChange(
                at=self._clock.now(),
                pool_id=pool_id,
                before=before,
                after=after,
                pods=len(plan.served[pool_id]),
            )
            made.append(change)
            log.info("ACK autoscaler scale-up", extra={"change": change.text()})
            spec = next(p for p in pools if p.pool_id == pool_id)
            message = (
                f"pod triggered scale-up: [{{{pool_id} {before}->{after} (max: {spec.max_size})}}]"
            )
            for key in plan.served[pool_id]:
                self.events.record(
                    object_reference(by_key[key]), reason="TriggeredScaleUp", message=message
                )
        for key, reasons in plan.refused.items():
            self.events.record(
                object_reference(by_key[key]),
                reason="NotTriggerScaleUp",
                message=f"pod didn't trigger scale-up: {reasons}",
            )
        if made:
            self._last_scale_up = self._clock.now()
        return made

    def _snapshot(
        self,
        nodes: list[dict[str, Any]],
        pods: list[dict[str, Any]],
        pools: list[PoolSpec],
        views: Mapping[str, Any],
    ) -> tuple[dict[str, NodeInfo], dict[str, dict[str, int]]]:
        """The nodes the scheduler has or will have: the Ready ones, the booting ones (Ready
        False) as if Ready, and per auto-scaling pool the nodes its desired size asks for that
        have not registered yet, as template nodes; and what the bound pods take of each."""
        snapshot: dict[str, NodeInfo] = {}
        registered: dict[str, int] = {}
        for node in nodes:
            info = node_info(node)
            ready = _ready_status(node)
            if ready == "False":  # booting: an upcoming node
                info = _without_not_ready(info)
            elif ready != "True":
                continue  # lost (Unknown): cluster-autoscaler does not count on it
            snapshot[info.name] = info
            pool = info.labels.get(POOL_LABEL)
            if pool:
                registered[pool] = registered.get(pool, 0) + 1
        for spec in pools:
            template = _template(self._pools, spec)
            missing = views[spec.pool_id].desired - registered.get(spec.pool_id, 0)
            for i in range(max(0, missing)):
                name = f"template-{spec.pool_id}-upcoming-{i}"
                snapshot[name] = NodeInfo(
                    name=name,
                    labels=template.labels,
                    taints=template.taints,
                    unschedulable=False,
                    allocatable=template.allocatable,
                )
        used: dict[str, dict[str, int]] = {}
        for pod in pods:
            bound = str((pod.get("spec") or {}).get("nodeName") or "")
            if bound not in snapshot:
                continue
            if (pod.get("status") or {}).get("phase") in TERMINAL_PHASES:
                continue
            try:
                requests = pod_requests(pod.get("spec") or {})
            except DecisionError:
                continue
            taken = used.setdefault(bound, {})
            for resource, value in requests.items():
                taken[resource] = taken.get(resource, 0) + value
        return snapshot, used

    def _scale_down(
        self,
        pools: list[PoolSpec],
        nodes: list[dict[str, Any]],
        pods: list[dict[str, Any]],
        *,
        up: bool,
    ) -> list[ScaleChange]:
        now = self._clock.now()
        held = {holder for pod in pods if (holder := holds_node(pod)) is not None}
        by_pool: dict[str, list[str]] = {}
        candidates: set[str] = set()
        for node in nodes:
            meta = node.get("metadata") or {}
            name = str(meta.get("name", ""))
            pool = (meta.get("labels") or {}).get(POOL_LABEL)
            if not any(p.pool_id == pool for p in pools):
                continue
            if _ready_status(node) != "True" or (node.get("spec") or {}).get("unschedulable"):
                continue  # booting, lost, or already being removed
            if name in held:
                continue
            candidates.add(name)
            since = self._empty_since.setdefault(name, now)
            if now - since >= self.spec.scale_down_unneeded_seconds:
                by_pool.setdefault(str(pool), []).append(name)
        self._empty_since = {n: t for n, t in self._empty_since.items() if n in candidates}
        if up or not by_pool:
            return []
        if (
            self._last_scale_up is not None
            and now - self._last_scale_up < self.spec.scale_down_delay_after_add_seconds
        ):
            return []
        views = {view.pool_id: view for view in self._pools.describe_pools()}
        made = []
        for spec in pools:
            unneeded = sorted(
                by_pool.get(spec.pool_id, ()), key=lambda n: (self._empty_since[n], n)
            )
            before = views[spec.pool_id].desired
            victims = unneeded[: max(0, before - spec.min_size)]
            ids = [i for n in victims if (i := self._pools.instance_id_of(n)) is not None]
            if not ids:
                continue
            for name in victims:
                self.events.record(
                    {"kind": "Node", "name": name, "apiVersion": "v1"},
                    reason="ScaleDownEmpty",
                    message=f"Scale-down: removing empty node {name}",
                )
                self._empty_since.pop(name, None)
            self._pools.remove_nodes(spec.pool_id, ids, drain=True, release=True)
            change = ScaleChange(
                at=now,
                pool_id=spec.pool_id,
                before=before,
                after=max(spec.min_size, before - len(ids)),
                nodes=tuple(victims),
            )
            made.append(change)
            log.info("ACK autoscaler scale-down", extra={"change": change.text()})
        return made


def _ready_status(node: Mapping[str, Any]) -> str | None:
    for condition in (node.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "Ready":
            return str(condition.get("status"))
    return None


def _without_not_ready(info: NodeInfo) -> NodeInfo:
    taints = tuple(t for t in info.taints if t.get("key") != NOT_READY_TAINT["key"])
    return NodeInfo(
        name=info.name,
        labels=info.labels,
        taints=taints,
        unschedulable=info.unschedulable,
        allocatable=info.allocatable,
    )


def _template(pools: NodePools, spec: PoolSpec) -> NodeInfo:
    """A new node of the pool as the scheduler would see it once Ready: the labels and taints
    the pool gives its nodes and its instance type's allocatable."""
    name = f"template-{spec.pool_id}"
    node = node_object(
        name,
        spec.machine,
        labels=pools.node_labels(spec, name),
        taints=[dict(t) for t in spec.taints],
        ip="0.0.0.0",
        created="",
        ready_at=0.0,
        ready=True,
        pod_start_seconds=spec.pod_start_seconds,
    )
    return node_info(node)
