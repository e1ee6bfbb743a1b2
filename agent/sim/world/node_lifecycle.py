"""The node lifecycle controller of kube-controller-manager: registers nodes, and marks a node
whose kubelet stopped heartbeating as NotReady (Unknown).

As pkg/controller/nodelifecycle/node_lifecycle_controller.go does, every `--node-monitor-period`
(5 s) it looks at each node's Lease in `kube-node-lease`:

- a node seen for the first time gets the Normal Event `RegisteredNode` from `node-controller`,
  "Node X event: Registered Node X in Controller" (`controllerutil.RecordNodeEvent`);
- a node whose Lease was last renewed more than `--node-monitor-grace-period` ago (40 s up to
  Kubernetes 1.31, which the simulated server reports; 50 s from 1.32, kubernetes/kubernetes PR
  #126287), or that has no Lease `--node-startup-grace-period` (60 s) after it was created, gets its
  Ready, MemoryPressure, DiskPressure and PIDPressure conditions set to Unknown, reason
  NodeStatusUnknown, "Kubelet stopped posting node status." (`tryUpdateNodeHealth`), and the
  `node.kubernetes.io/unreachable` taints NoSchedule and NoExecute; a node that was Ready gets the
  Event `NodeNotReady` "Node X status is now: NodeNotReady" (`RecordNodeStatusChange`), and its
  pods Ready=False with a Warning `NodeNotReady` "Node is not ready" each (`MarkPodsNotReady`);
- once the kubelet reports Ready again, the unreachable taints come off (`markNodeAsReachable`).

Like upstream's `probeTimestamp`, the grace period runs from when the controller last saw the
Lease change, counted here in monitor passes (a node is lost after grace / period passes in a row
without a renewal, each at least a period apart): a stall of the host's event loop, which delays
the renewals and the check alike, is an artefact of the simulation and must not read as a lost
node when the clock runs hundreds of times faster than real time.

Not modelled: the taint-based eviction of the node's pods once their `unreachable:NoExecute`
toleration (300 s by default) runs out, and zone disruption rates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from agent.sim.kube.store import ApiError, ObjectStore
from agent.sim.world.clock import SimClock, parse_iso
from agent.sim.world.events import WARNING, EventRecorder, object_reference
from agent.sim.world.node_leases import NODE_LEASE_NAMESPACE
from agent.sim.world.tasks import cancel_and_wait

log = logging.getLogger(__name__)

NODE_CONTROLLER = "node-controller"
MONITOR_PERIOD_SECONDS = 5.0
MONITOR_GRACE_SECONDS = 40.0
STARTUP_GRACE_SECONDS = 60.0
UNREACHABLE = "node.kubernetes.io/unreachable"
UNKNOWN_REASON = "NodeStatusUnknown"
UNKNOWN_MESSAGE = "Kubelet stopped posting node status."
MONITORED_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})


def _ready_status(node: Mapping[str, Any]) -> str | None:
    for condition in (node.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "Ready":
            return str(condition.get("status"))
    return None


def _node_reference(node: Mapping[str, Any]) -> dict[str, Any]:
    meta = node.get("metadata") or {}
    return {"kind": "Node", "name": meta.get("name", ""), "uid": meta.get("uid", "")}


class NodeLifecycle:
    """kube-controller-manager's node lifecycle controller over the store, on the simulated clock."""

    def __init__(
        self,
        store: ObjectStore,
        clock: SimClock,
        *,
        grace_seconds: float = MONITOR_GRACE_SECONDS,
        period_seconds: float = MONITOR_PERIOD_SECONDS,
    ) -> None:
        self._store = store
        self._clock = clock
        self._grace = grace_seconds
        self._period = period_seconds
        self.events = EventRecorder(store, clock, component=NODE_CONTROLLER)
        self._known: set[str] = set()
        # node -> (the renewTime last seen, passes since it last changed)
        self._seen: dict[str, tuple[str, int]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.monitor()
        self._task = asyncio.create_task(self._run(), name="node-lifecycle")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None
        await self.events.aclose()

    async def _run(self) -> None:
        while True:
            await self._clock.sleep(self._period)
            try:
                self.monitor()
            except Exception:  # one pass failing must not stop monitoring for good
                log.exception("node lifecycle pass failed")

    def monitor(self) -> None:
        """One monitorNodeHealth pass over every node."""
        nodes, _ = self._store.list("nodes")
        now = self._clock.now()
        names = set()
        for node in nodes:
            name = str(node["metadata"].get("name", ""))
            names.add(name)
            if name not in self._known:
                self._known.add(name)
                self.events.record(
                    _node_reference(node),
                    reason="RegisteredNode",
                    message=f"Node {name} event: Registered Node {name} in Controller",
                )
            self._check(node, now)
        self._known &= names
        for gone in set(self._seen) - names:
            del self._seen[gone]

    def _check(self, node: Mapping[str, Any], now: float) -> None:
        name = str(node["metadata"].get("name", ""))
        try:
            lease = self._store.get("leases", name, namespace=NODE_LEASE_NAMESPACE)
            renewed = str(lease["spec"]["renewTime"])
            probe, grace = parse_iso(renewed), self._grace
        except (ApiError, KeyError, TypeError, ValueError):
            created = node["metadata"].get("creationTimestamp")
            renewed = ""
            probe, grace = (parse_iso(created) if created else now), STARTUP_GRACE_SECONDS
        last, passes = self._seen.get(name, (renewed, -1))
        passes = passes + 1 if last == renewed else 0
        self._seen[name] = (renewed, passes)
        ready = _ready_status(node)
        if now > probe + grace and passes * self._period >= grace:
            if ready != "Unknown":
                self._mark_unknown(node, was_ready=ready == "True")
        elif ready == "True" and any(
            t.get("key") == UNREACHABLE for t in (node.get("spec") or {}).get("taints") or ()
        ):
            self._mark_reachable(name)

    def _mark_unknown(self, node: Mapping[str, Any], *, was_ready: bool) -> None:
        name = str(node["metadata"]["name"])
        stamp = self._clock.iso()

        def unknown(obj: dict[str, Any]) -> None:
            conditions = obj.setdefault("status", {}).setdefault("conditions", [])
            by_type = {c.get("type"): c for c in conditions}
            for kind in MONITORED_CONDITIONS:
                condition = by_type.get(kind)
                if condition is None:
                    condition = {"type": kind, "lastHeartbeatTime": None}
                    conditions.append(condition)
                condition.update(
                    status="Unknown",
                    reason=UNKNOWN_REASON,
                    message=UNKNOWN_MESSAGE,
                    lastTransitionTime=stamp,
                )
            taints = obj.setdefault("spec", {}).setdefault("taints", [])
            for effect in ("NoSchedule", "NoExecute"):
                if not any(
                    t.get("key") == UNREACHABLE and t.get("effect") == effect for t in taints
                ):
                    taint: dict[str, Any] = {"key": UNREACHABLE, "effect": effect}
                    if effect == "NoExecute":
                        taint["timeAdded"] = stamp
                    taints.append(taint)

        try:
            updated = self._store.mutate("nodes", name, unknown)
        except ApiError:
            return
        if not was_ready:
            return
        self.events.record(
            _node_reference(updated),
            reason="NodeNotReady",
            message=f"Node {name} status is now: NodeNotReady",
        )
        self._mark_pods_not_ready(name, stamp)

    def _mark_pods_not_ready(self, node: str, stamp: str) -> None:
        pods, _ = self._store.list("pods")
        for pod in pods:
            if (pod.get("spec") or {}).get("nodeName") != node:
                continue
            if (pod.get("status") or {}).get("phase") in TERMINAL_PHASES:
                continue

            def not_ready(obj: dict[str, Any]) -> None:
                for condition in (obj.get("status") or {}).get("conditions") or ():
                    if condition.get("type") == "Ready" and condition.get("status") != "False":
                        condition["status"] = "False"
                        condition["lastTransitionTime"] = stamp

            meta = pod["metadata"]
            try:
                updated = self._store.mutate(
                    "pods", meta["name"], not_ready, namespace=meta.get("namespace")
                )
            except ApiError:
                continue
            self.events.record(
                object_reference(updated),
                reason="NodeNotReady",
                message="Node is not ready",
                event_type=WARNING,
            )

    def _mark_reachable(self, name: str) -> None:
        def reachable(obj: dict[str, Any]) -> None:
            spec = obj.setdefault("spec", {})
            spec["taints"] = [t for t in spec.get("taints") or () if t.get("key") != UNREACHABLE]
            if not spec["taints"]:
                del spec["taints"]

        with contextlib.suppress(ApiError):
            self._store.mutate("nodes", name, reachable)
