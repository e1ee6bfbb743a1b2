"""The kube-scheduler stand-in: binds pending pods to nodes, or says why it cannot.

It folds the store's watch events into a small cache (like an informer) and a scheduling queue
(`scheduling_queue`: activeQ, per-pod backoff, unschedulable pods moved back by the cluster events
their rejecting plugins' QueueingHints name), and runs a pass over the pods in activeQ whenever
there are some. A pass yields to the event loop every few dozen pods, as kube-scheduler binds one
pod per cycle while the API server serves everyone else. A pass filters nodes in kube-scheduler's
plugin order (NodeUnschedulable, TaintToleration, NodeAffinity, NodeResourcesFit) with the
decision core's predicates, scores the survivors by least-allocated, and writes either the binding
or the `PodScheduled=False, reason=Unschedulable` condition with kube-scheduler's message, and
records kube-scheduler's Events about it: `Scheduled` ("Successfully assigned NS/POD to NODE") on
a binding, `FailedScheduling` (Warning, the same message as the condition) on every attempt that
finds no node (pkg/scheduler/schedule_one.go, handleBindingCycleError / handleSchedulingFailure).
"""

from __future__ import annotations

import asyncio
import heapq
import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.sim.kube.store import ApiError, ObjectStore, Subscription, WatchEvent
from agent.sim.world.clock import SimClock
from agent.sim.world.events import WARNING, EventRecorder, object_reference
from agent.sim.world.nodes import NOT_READY_TAINT, UNSCHEDULABLE_TAINT
from agent.sim.world.queueing_hints import (
    NODE_AFFINITY,
    NODE_RESOURCES_FIT,
    NODE_UNSCHEDULABLE,
    TAINT_TOLERATION,
)
from agent.sim.world.scheduling_queue import (
    BACKOFF_FLUSH_SECONDS,
    UNSCHEDULABLE_FLUSH_SECONDS,
    SchedulingQueue,
)
from agent.sim.world.tasks import cancel_and_wait
from functions.errors import DecisionError
from functions.predicates import (
    POD_SLOT,
    first_untolerated_taint,
    insufficient,
    node_selector_matches,
    required_affinity_matches,
    tolerates,
)
from functions.quantity import parse_resources

log = logging.getLogger(__name__)

SCHEDULER_NAME = "default-scheduler"
# Plugin reasons, worded as kube-scheduler (≥1.27) words them.
REASON_UNSCHEDULABLE = "node(s) were unschedulable"
REASON_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
REASON_TOO_MANY_PODS = "Too many pods"
NO_NODES_MESSAGE = "no nodes available to schedule pods"
PREEMPTION_NOT_HELPFUL = "Preemption is not helpful for scheduling"
PREEMPTION_NO_VICTIMS = "No preemption victims found for incoming pod"
# The resources least-allocated scoring weighs, as NodeResourcesFit does by default.
SCORED_RESOURCES = ("cpu", "memory")
TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})
# Answers a pass writes between two yields to the event loop (each a pod write and its watch
# events): small enough that the agent's requests are served within a few milliseconds.
YIELD_EVERY = 8


@dataclass(frozen=True)
class NodeInfo:
    """What the scheduler needs of a node; `taints` includes not-ready for a node not Ready."""

    name: str
    labels: Mapping[str, str]
    taints: tuple[Mapping[str, Any], ...]
    unschedulable: bool
    allocatable: Mapping[str, int]


@dataclass(frozen=True)
class PodInfo:
    """A pod awaiting a decision. Pods with equal `shape` get equal answers from every node."""

    key: tuple[str, str]
    requests: Mapping[str, int]  # effective request plus the pod slot
    node_selector: Mapping[str, str]
    affinity: Mapping[str, Any]
    tolerations: tuple[Mapping[str, Any], ...]
    order: tuple[Any, ...]
    shape: str


@dataclass(frozen=True)
class Placement:
    """The pass's answer for one pod: a node to bind to, or the Unschedulable message."""

    key: tuple[str, str]
    node: str | None
    message: str = ""
    rejectors: frozenset[str] = frozenset()  # the filter plugins that refused some node


@dataclass
class _Shape:
    """What one pass learnt about one shape of pod; nodes only fill up during a pass."""

    static: dict[str, str] = field(default_factory=dict)  # node -> unresolvable reason
    heap: list[tuple[int, str]] = field(default_factory=list)  # (-score, node) with room so far
    full: list[str] = field(default_factory=list)  # passed the static filters, out of room
    message: str | None = None  # set once the shape fits nowhere: the rest of it waits too
    rejectors: frozenset[str] = frozenset()


def effective_requests(spec: Mapping[str, Any], *, path: str = "spec") -> dict[str, int]:
    """Per resource, the larger of the containers' sum and the largest init container, plus overhead.

    A container's limits stand in for missing requests, as the API server's defaulting does.
    """

    def container_requests(container: Mapping[str, Any], where: str) -> dict[str, int]:
        resources = container.get("resources") or {}
        raw = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
        return parse_resources(raw, path=f"{where}.resources")

    total: dict[str, int] = {}
    for i, container in enumerate(spec.get("containers") or ()):
        for name, value in container_requests(container, f"{path}.containers[{i}]").items():
            total[name] = total.get(name, 0) + value
    for i, container in enumerate(spec.get("initContainers") or ()):
        for name, value in container_requests(container, f"{path}.initContainers[{i}]").items():
            total[name] = max(total.get(name, 0), value)
    for name, value in parse_resources(spec.get("overhead") or {}, path=f"{path}.overhead").items():
        total[name] = total.get(name, 0) + value
    return {name: value for name, value in total.items() if value}


def node_info(node: Mapping[str, Any]) -> NodeInfo:
    """The scheduler's view of a Node object."""
    metadata = node.get("metadata") or {}
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    taints = tuple(spec.get("taints") or ())
    if not is_node_ready(node) and not any(t.get("key") == NOT_READY_TAINT["key"] for t in taints):
        # The node lifecycle controller taints a NotReady node; a node seen before its kubelet
        # reported is treated the same, so nothing lands on it early.
        taints = (*taints, NOT_READY_TAINT)
    try:
        allocatable = parse_resources(status.get("allocatable") or {}, path="status.allocatable")
    except DecisionError:
        log.warning("node %s has unparsable allocatable", metadata.get("name"))
        allocatable = {}
    return NodeInfo(
        name=metadata.get("name", ""),
        labels=dict(metadata.get("labels") or {}),
        taints=taints,
        unschedulable=bool(spec.get("unschedulable")),
        allocatable=allocatable,
    )


def is_node_ready(node: Mapping[str, Any]) -> bool:
    """Whether the node's Ready condition is True."""
    for condition in (node.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def pod_requests(spec: Mapping[str, Any]) -> dict[str, int]:
    """What the pod takes from its node: its effective request plus one pod slot."""
    requests = effective_requests(spec)
    for name, value in POD_SLOT.items():
        requests[name] = requests.get(name, 0) + value
    return requests


def pod_info(pod: Mapping[str, Any]) -> PodInfo:
    """The scheduler's view of a pending Pod. Raises DecisionError for unparsable requests."""
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    requests = pod_requests(spec)
    node_selector = dict(spec.get("nodeSelector") or {})
    affinity = dict(spec.get("affinity") or {})
    tolerations = tuple(spec.get("tolerations") or ())
    shape = json.dumps(
        [requests, node_selector, affinity.get("nodeAffinity"), tolerations],
        sort_keys=True,
        separators=(",", ":"),
    )
    key = (metadata.get("namespace", ""), metadata.get("name", ""))
    # kube-scheduler's PrioritySort: higher priority first, then older pods first.
    order = (-int(spec.get("priority") or 0), metadata.get("creationTimestamp") or "", key)
    return PodInfo(
        key=key,
        requests=requests,
        node_selector=node_selector,
        affinity=affinity,
        tolerations=tolerations,
        order=order,
        shape=shape,
    )


def is_pending(pod: Mapping[str, Any], *, scheduler_name: str = SCHEDULER_NAME) -> bool:
    """Whether this scheduler owes the pod a decision."""
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    return (
        not spec.get("nodeName")
        and (spec.get("schedulerName") or SCHEDULER_NAME) == scheduler_name
        and not metadata.get("deletionTimestamp")
        and not spec.get("schedulingGates")
        and status.get("phase") not in TERMINAL_PHASES
    )


def static_reason(pod: PodInfo, node: NodeInfo) -> str | None:
    """The first refusal among the filters that do not depend on what runs on the node."""
    if node.unschedulable and not any(tolerates(t, UNSCHEDULABLE_TAINT) for t in pod.tolerations):
        return REASON_UNSCHEDULABLE
    taint = first_untolerated_taint(list(pod.tolerations), list(node.taints))
    if taint is not None:
        return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}"
    if not node_selector_matches(pod.node_selector, node.labels) or not required_affinity_matches(
        pod.affinity, node.labels
    ):
        return REASON_AFFINITY
    return None


def rejector_plugins(static: Iterable[str], *, resources: bool) -> frozenset[str]:
    """The filter plugins behind these refusals (QueuedPodInfo.UnschedulablePlugins)."""
    plugins = {NODE_RESOURCES_FIT} if resources else set()
    for reason in static:
        if reason == REASON_UNSCHEDULABLE:
            plugins.add(NODE_UNSCHEDULABLE)
        elif reason == REASON_AFFINITY:
            plugins.add(NODE_AFFINITY)
        else:
            plugins.add(TAINT_TOLERATION)
    return frozenset(plugins)


def resource_reasons(requests: Mapping[str, int], free: Mapping[str, int]) -> list[str]:
    """NodeResourcesFit's reasons: every resource that does not fit, pods as 'Too many pods'."""
    return [
        REASON_TOO_MANY_PODS if name == "pods" else f"Insufficient {name}"
        for name in insufficient(dict(requests), dict(free))
    ]


def unschedulable_message(
    node_count: int, static: Mapping[str, str], resources: Mapping[str, list[str]]
) -> str:
    """kube-scheduler's FitError text, preemption clause included."""
    if node_count == 0:
        return NO_NODES_MESSAGE
    reasons: Counter[str] = Counter(static.values())
    for node_reasons in resources.values():
        reasons.update(node_reasons)
    preemption = Counter(
        {PREEMPTION_NOT_HELPFUL: len(static), PREEMPTION_NO_VICTIMS: len(resources)}
    )

    def histogram(counts: Counter[str]) -> str:
        # kube-scheduler sorts "<count> <reason>" strings, so "10 x" sorts before "2 y".
        return ", ".join(sorted(f"{n} {reason}" for reason, n in counts.items() if n))

    head = f"0/{node_count} nodes are available"
    return f"{head}: {histogram(reasons)}. preemption: {head}: {histogram(preemption)}."


def least_allocated_score(node: NodeInfo, used: Mapping[str, int]) -> int:
    """NodeResourcesFit LeastAllocated: mean free share of cpu and memory, 0–100."""
    total = 0
    for name in SCORED_RESOURCES:
        capacity = node.allocatable.get(name, 0)
        if capacity > 0:
            total += max(0, capacity - used.get(name, 0)) * 100 // capacity
    return total // len(SCORED_RESOURCES)


def _free(node: NodeInfo, used: Mapping[str, int]) -> dict[str, int]:
    return {name: value - used.get(name, 0) for name, value in node.allocatable.items()}


def _best_node(
    pod: PodInfo,
    shape: _Shape,
    nodes: Mapping[str, NodeInfo],
    used: Mapping[str, Mapping[str, int]],
) -> str | None:
    """The highest-scoring node with room, or None.

    Within a pass nodes only fill up, so a node's score only falls: the heap's keys are upper
    bounds, and a top whose fresh score equals its key beats every other node.
    """
    heap = shape.heap
    while heap:
        key, name = heap[0]
        node = nodes[name]
        node_used = used.get(name, {})
        free = {r: node.allocatable.get(r, 0) - node_used.get(r, 0) for r in pod.requests}
        if insufficient(pod.requests, free):
            heapq.heappop(heap)
            shape.full.append(name)
            continue
        after = {r: node_used.get(r, 0) + pod.requests.get(r, 0) for r in SCORED_RESOURCES}
        score = least_allocated_score(node, after)
        if -score == key:
            return name  # ties: the heap orders equal scores by node name
        heapq.heapreplace(heap, (-score, name))
    return None


def plan(
    pods: Iterable[PodInfo],
    nodes: Mapping[str, NodeInfo],
    used: dict[str, dict[str, int]],
) -> list[Placement]:
    """One scheduling pass in queue order. `used` (node -> requested totals) is updated in place.

    Identical pods share their node filtering; once one pod of a shape fits nowhere, the rest of
    that shape get the same answer without another look, since nodes only fill up within a pass.
    """
    node_names = sorted(nodes)
    shapes: dict[str, _Shape] = {}
    placements: list[Placement] = []
    for pod in sorted(pods, key=lambda p: p.order):
        shape = shapes.get(pod.shape)
        if shape is None:
            shape = shapes[pod.shape] = _Shape()
            for name in node_names:
                reason = static_reason(pod, nodes[name])
                if reason is None:
                    # a placeholder score: the first look below puts the real one in
                    shape.heap.append((-101, name))
                else:
                    shape.static[name] = reason
            heapq.heapify(shape.heap)
        if shape.message is None:
            best = _best_node(pod, shape, nodes, used)
            if best is not None:
                chosen = used.setdefault(best, {})
                for name, value in pod.requests.items():
                    chosen[name] = chosen.get(name, 0) + value
                placements.append(Placement(pod.key, best))
                continue
            refused = {
                name: resource_reasons(pod.requests, _free(nodes[name], used.get(name, {})))
                for name in shape.full
            }
            shape.message = unschedulable_message(len(node_names), shape.static, refused)
            shape.rejectors = rejector_plugins(shape.static.values(), resources=bool(refused))
        placements.append(Placement(pod.key, None, shape.message, shape.rejectors))
    return placements


class _Stale(Exception):
    """The pod changed since the pass looked at it; leave it to the next pass."""


@dataclass(frozen=True)
class _Tracked:
    """A cached pod: its resourceVersion, what it holds on a node, and its pending view."""

    resource_version: int
    node: str
    holds: Mapping[str, int]
    pending: PodInfo | None
    obj: Mapping[str, Any]


class Scheduler:
    """Runs scheduling passes over the store as its queue hands pods back."""

    def __init__(
        self,
        store: ObjectStore,
        clock: SimClock,
        *,
        name: str = SCHEDULER_NAME,
        settle_seconds: float = 0.005,
    ) -> None:
        self._store = store
        self._clock = clock
        self._name = name
        # Real seconds to let a burst of events gather before a pass: a burst is one pass.
        self._settle = settle_seconds
        self.events = EventRecorder(store, clock, component=name, series=True)
        self.queue = SchedulingQueue()
        self._nodes: dict[str, NodeInfo] = {}
        self._node_versions: dict[str, int] = {}
        self._pods: dict[tuple[str, str], _Tracked] = {}
        self._used: dict[str, dict[str, int]] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._subscription: Subscription | None = None
        self._pass_waiters: list[asyncio.Future[int]] = []
        self.passes = 0  # passes that decided at least one pod

    async def start(self) -> None:
        """Load the store's current state and begin reacting to its events."""
        # subscribe and list without an await between them: no event can fall in the gap
        self._subscription = self._store.subscribe(resources=("nodes", "pods"))
        nodes, _ = self._store.list("nodes")
        pods, _ = self._store.list("pods")
        for node in nodes:
            self._apply_node(node, deleted=False)
        for pod in pods:
            self._apply_pod(pod, deleted=False)
        self._wake.set()
        self._tasks = [
            asyncio.create_task(self._follow(), name="scheduler-follow"),
            asyncio.create_task(self._run(), name="scheduler-passes"),
            asyncio.create_task(self._flush(), name="scheduler-queue-flush"),
        ]

    async def stop(self) -> None:
        """Stop reacting; a pass in progress stops between two pods."""
        if self._subscription is not None:
            self._subscription.close()
        await cancel_and_wait(self._tasks)
        self._tasks = []
        await self.events.aclose()

    async def next_pass(self) -> int:
        """Wait until the next pass that decides at least one pod has written its answers."""
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pass_waiters.append(waiter)
        return await waiter

    async def _follow(self) -> None:
        assert self._subscription is not None
        async for event in self._subscription:
            try:
                self.apply(event)
            except Exception:  # one odd object must not blind the scheduler for good
                log.exception("scheduler failed on %s %s", event.type, event.resource)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self._settle)
            self._wake.clear()
            try:
                await self.run_pass()
            except Exception:  # a bug in one pass must not stop scheduling for good
                log.exception("scheduling pass failed")

    async def _flush(self) -> None:
        """The queue's two periodic flushes, on the simulated clock."""
        ticks_per_leftover_flush = round(UNSCHEDULABLE_FLUSH_SECONDS / BACKOFF_FLUSH_SECONDS)
        tick = 0
        while True:
            await self._clock.sleep(BACKOFF_FLUSH_SECONDS)
            tick += 1
            now = self._clock.now()
            self.queue.flush_backoff(now)
            if tick % ticks_per_leftover_flush == 0:
                self.queue.flush_unschedulable_leftover(now)
            self._wake_if_work()

    def _wake_if_work(self) -> None:
        if self.queue.has_work():
            self._wake.set()

    def apply(self, event: WatchEvent) -> None:
        """Fold one watch event into the cache and the queue."""
        deleted = event.type == "DELETED"
        if event.resource == "nodes":
            self._apply_node(event.object, deleted=deleted, version=event.resource_version)
        elif event.resource == "pods":
            self._apply_pod(event.object, deleted=deleted, version=event.resource_version)

    def _apply_node(self, node: Mapping[str, Any], *, deleted: bool, version: int = 0) -> None:
        name = (node.get("metadata") or {}).get("name", "")
        version = version or _resource_version(node)
        if version and version <= self._node_versions.get(name, 0):
            return
        self._node_versions[name] = version
        if deleted:
            # no filter plugin asks for node deletions: they never make a pod schedulable
            self._nodes.pop(name, None)
            return
        info = node_info(node)
        old = self._nodes.get(name)
        if old != info:
            self._nodes[name] = info
            self.queue.node_changed(old, info, self._clock.now())
            self._wake_if_work()

    def _apply_pod(self, pod: Mapping[str, Any], *, deleted: bool, version: int = 0) -> None:
        metadata = pod.get("metadata") or {}
        key = (metadata.get("namespace", ""), metadata.get("name", ""))
        version = version or _resource_version(pod)
        old = self._pods.get(key)
        if old is not None and version and version <= old.resource_version:
            return
        if deleted:
            # no tombstone needed: events arrive in resourceVersion order, and a pod's own
            # writes applied early are older than its deletion
            self._pods.pop(key, None)
            self.queue.delete(key)
            self._release(old)
            return
        tracked = self._track(pod, version, old)
        self._pods[key] = tracked
        if old is not None and old.holds != tracked.holds:
            self._release(old)
        if tracked.holds and (old is None or old.holds != tracked.holds):
            self._hold(tracked)
        if tracked.pending is None:
            self.queue.delete(key)
        elif old is None or old.pending is None:
            self.queue.add(key, tracked.pending, self._clock.now())
            self._wake.set()
        elif old.pending.shape != tracked.pending.shape:
            # its scheduling constraints changed (e.g. a toleration): the queue's Update
            self.queue.update(key, tracked.pending, self._clock.now())
            self._wake_if_work()

    def _track(self, pod: Mapping[str, Any], version: int, old: _Tracked | None) -> _Tracked:
        spec = pod.get("spec") or {}
        node = spec.get("nodeName") or ""
        phase = (pod.get("status") or {}).get("phase")
        pending: PodInfo | None = None
        holds: Mapping[str, int] = {}
        # A status write shares the spec object with the version before (store.mutate's
        # `writes`): what was parsed from that spec holds, and the scheduler's own condition
        # writes need no new parse.
        same_spec = old is not None and spec and old.obj.get("spec") is spec
        try:
            if node and phase not in TERMINAL_PHASES:
                if same_spec and old is not None and old.holds:
                    holds = old.holds
                else:
                    holds = pod_requests(spec)
            elif is_pending(pod, scheduler_name=self._name):
                if same_spec and old is not None and old.pending is not None:
                    pending = old.pending
                else:
                    pending = pod_info(pod)
        except DecisionError as error:
            log.warning("pod %s has unparsable requests: %s", pod.get("metadata"), error)
        return _Tracked(version, node, holds, pending, pod)

    def _hold(self, tracked: _Tracked) -> None:
        used = self._used.setdefault(tracked.node, {})
        for name, value in tracked.holds.items():
            used[name] = used.get(name, 0) + value

    def _release(self, tracked: _Tracked | None) -> None:
        if tracked is None or not tracked.holds:
            return
        used = self._used.setdefault(tracked.node, {})
        for name, value in tracked.holds.items():
            used[name] = used.get(name, 0) - value
        # an assigned pod deleted or finished (kube-scheduler drops terminal pods from its cache
        # as if deleted): room came free, which NodeResourcesFit's hint queues its pods for
        self.queue.assigned_pod_freed(self._clock.now())
        self._wake_if_work()

    async def run_pass(self) -> list[Placement]:
        """Decide every pod in activeQ and write the answers; returns what was decided.

        The pass yields to the event loop every `YIELD_EVERY` answers, as kube-scheduler
        schedules one pod per cycle while the API server keeps serving: the simulated cluster
        and the agent sharing the loop are not held up for the length of a pass."""
        popped = self.queue.pop_all()
        candidates = [
            tracked.pending
            for queued in popped
            if (tracked := self._pods.get(queued.key)) is not None and tracked.pending is not None
        ]
        if not candidates:
            for queued in popped:
                self.queue.scheduled(queued.key)
            return []
        self.passes += 1
        # plan on a copy: the cache learns of each binding from the store, as it would from a watch
        used = {node: dict(totals) for node, totals in self._used.items()}
        placements = plan(candidates, self._nodes, used)
        for index, placement in enumerate(placements):
            if index and index % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            self._answer(placement)
        self._wake_if_work()  # pods an event sent back while they were in flight
        waiters, self._pass_waiters = self._pass_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(self.passes)
        return placements

    def _answer(self, placement: Placement) -> None:
        """Write one pod's answer and hand the pod back to the queue."""
        now = self._clock.now()
        stamp = self._clock.iso(now)
        tracked = self._pods.get(placement.key)
        if tracked is None or tracked.pending is None:
            self.queue.scheduled(placement.key)  # gone or bound while the pass yielded
            return
        if placement.node is not None:
            if placement.node in self._nodes and self._bind(placement, stamp):
                self.queue.scheduled(placement.key)
            else:
                # the node went while the pass yielded, or the binding was refused: retry
                # after the pod's backoff, as a failed binding cycle does
                self.queue.failed(placement.key, frozenset(), now)
            return
        # AddUnschedulableIfNotPresent, then the status update (handleSchedulingFailure)
        self.queue.failed(placement.key, placement.rejectors, now)
        if self._mark_unschedulable(placement, stamp):
            self.events.record(
                object_reference(tracked.obj),
                reason="FailedScheduling",
                message=placement.message,
                event_type=WARNING,
            )

    def _bind(self, placement: Placement, now: str) -> bool:
        namespace, name = placement.key

        def bind(pod: dict[str, Any]) -> None:
            if not is_pending(pod, scheduler_name=self._name):
                raise _Stale
            pod["spec"]["nodeName"] = placement.node
            status = pod.setdefault("status", {})
            status.setdefault("phase", "Pending")
            _set_condition(status, {"type": "PodScheduled", "status": "True"}, now)

        try:
            # the binding subresource: spec.nodeName and the PodScheduled condition
            updated = self._store.mutate(
                "pods", name, bind, namespace=namespace, writes=("spec", "status")
            )
        except (_Stale, ApiError):
            return False  # gone or changed meanwhile: its events will queue it again if need be
        self._apply_pod(updated, deleted=False)
        self.events.record(
            object_reference(updated),
            reason="Scheduled",
            message=f"Successfully assigned {namespace}/{name} to {placement.node}",
        )
        return True

    def _mark_unschedulable(self, placement: Placement, now: str) -> bool:
        """Write the Unschedulable condition unless it is there already; False when the pod no
        longer waits for this scheduler (bound, deleted or gone meanwhile)."""
        namespace, name = placement.key
        wanted = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": placement.message,
        }
        tracked = self._pods[placement.key]
        if _has_condition(tracked.obj, wanted):
            return True  # an identical rewrite would be a MODIFIED event the agent reacts to

        pending = [False]

        def mark(pod: dict[str, Any]) -> None:
            pending[0] = is_pending(pod, scheduler_name=self._name)
            if not pending[0] or _has_condition(pod, wanted):
                raise _Stale
            status = pod.setdefault("status", {})
            status["phase"] = "Pending"
            _set_condition(status, wanted, now)

        try:
            # a pods/status write: only the condition (and phase) change
            updated = self._store.mutate(
                "pods", name, mark, namespace=namespace, writes=("status",)
            )
        except _Stale:
            return pending[0]
        except ApiError:
            return False
        self._apply_pod(updated, deleted=False)
        return True


def _resource_version(obj: Mapping[str, Any]) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _has_condition(obj: Mapping[str, Any], wanted: Mapping[str, str]) -> bool:
    for condition in (obj.get("status") or {}).get("conditions") or ():
        if condition.get("type") == wanted["type"]:
            return all(condition.get(k) == v for k, v in wanted.items())
    return False


def _set_condition(status: dict[str, Any], wanted: Mapping[str, str], now: str) -> None:
    """Set a pod condition; lastTransitionTime moves only when the status flips."""
    conditions = status.setdefault("conditions", [])
    for condition in conditions:
        if condition.get("type") == wanted["type"]:
            if condition.get("status") != wanted["status"]:
                condition["lastTransitionTime"] = now
            for k in ("reason", "message"):
                condition.pop(k, None)
            condition.update(wanted)
            condition.setdefault("lastProbeTime", None)
            return
    conditions.append({**wanted, "lastProbeTime": None, "lastTransitionTime": now})
