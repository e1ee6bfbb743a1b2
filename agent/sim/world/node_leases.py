"""The kubelet's node heartbeat: one coordination.k8s.io/v1 Lease per node in `kube-node-lease`,
renewed every 10 s while the node's kubelet runs.

The kubelet's node lease controller (pkg/kubelet/kubelet.go, `nodeLeaseController`;
component-helpers/apimachinery/lease/controller.go) keeps a Lease named after the node in the
`kube-node-lease` namespace: holderIdentity the node name, leaseDurationSeconds
`NodeLeaseDurationSeconds` (default 40: pkg/kubelet/apis/config/v1beta1/defaults.go), renewTime
bumped every `renewInterval` = 40 s × `nodeLeaseRenewIntervalFraction` (0.25) = 10 s, and an
ownerReference to its Node (`SetNodeOwnerFunc`), so the Lease goes when the Node does. The node
lifecycle controller reads renewTime to decide whether the node is alive (node_lifecycle.py).

A new node gets its Lease at the next heartbeat (within 10 s), well inside the node lifecycle
controller's 60 s startup grace: the heartbeat reads the Node list rather than following the
store, which would wake it for every write in the cluster. A Lease whose Node is gone is deleted
at the next heartbeat, as the garbage collector deletes an object whose owner is gone.

A node's kubelet stops when the fault plan says so (`FaultPlan.stop_kubelet`): its Lease is no
longer renewed. When it starts again the first renewal tells `on_restart`, so the kubelet posts
its status again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from agent.sim.faults import FaultPlan
from agent.sim.kube.store import ApiError, ObjectStore
from agent.sim.world.clock import SimClock
from agent.sim.world.tasks import cancel_and_wait

log = logging.getLogger(__name__)

NODE_LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_SECONDS = 40
RENEW_INTERVAL_SECONDS = LEASE_DURATION_SECONDS * 0.25


def micro_time(epoch: float) -> str:
    """metav1.MicroTime as the API serialises it: RFC3339 with microseconds."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_object(node: Mapping[str, Any], renewed: float) -> dict[str, Any]:
    """The Lease the kubelet creates for `node` (lease controller `newLease`)."""
    meta = node.get("metadata") or {}
    name = str(meta.get("name", ""))
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": name,
            "namespace": NODE_LEASE_NAMESPACE,
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Node", "name": name, "uid": meta.get("uid", "")}
            ],
        },
        "spec": {
            "holderIdentity": name,
            "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            "renewTime": micro_time(renewed),
        },
    }


class NodeLeases:
    """Every running kubelet's Lease: created when its Node appears, renewed every 10 s."""

    def __init__(
        self,
        store: ObjectStore,
        clock: SimClock,
        *,
        faults: FaultPlan,
        on_restart: Callable[[str], None] = lambda _name: None,
        renew_seconds: float = RENEW_INTERVAL_SECONDS,
    ) -> None:
        self._store = store
        self._clock = clock
        self._faults = faults
        self._on_restart = on_restart
        self._renew_seconds = renew_seconds
        self._nodes: dict[str, Mapping[str, Any]] = {}
        self._stopped: set[str] = set()  # nodes whose kubelet was stopped at the last look
        self._task: asyncio.Task[None] | None = None
        self.renewals = 0

    async def start(self) -> None:
        self.heartbeat()
        self._task = asyncio.create_task(self._run(), name="node-leases")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None

    async def _run(self) -> None:
        while True:
            await self._clock.sleep(self._renew_seconds)
            try:
                self.heartbeat()
            except Exception:  # a bad pass must not stop the heartbeats for good
                log.exception("node lease heartbeat failed")

    def heartbeat(self) -> None:
        """One renew interval: every node's kubelet renews its Lease; Leases of deleted nodes go."""
        nodes, _ = self._store.list("nodes")
        self._nodes = {str(node["metadata"].get("name", "")): node for node in nodes}
        self._stopped &= set(self._nodes)
        for name in self._nodes:
            try:
                self.renew(name)
            except Exception:  # one node's lease must not stop the others'
                log.exception("renewing the lease of %s failed", name)
        leases, _ = self._store.list("leases", namespace=NODE_LEASE_NAMESPACE)
        for lease in leases:
            name = str(lease["metadata"].get("name", ""))
            owners = lease["metadata"].get("ownerReferences") or ()
            if name not in self._nodes and any(o.get("kind") == "Node" for o in owners):
                with contextlib.suppress(ApiError):
                    self._store.delete("leases", name, namespace=NODE_LEASE_NAMESPACE)

    def renew(self, name: str) -> None:
        """One heartbeat of `name`'s kubelet: create or renew its Lease, unless it is stopped."""
        if self._faults.kubelet_stopped(name):
            self._stopped.add(name)
            return
        node = self._nodes.get(name)
        if node is None:
            return
        now = self._clock.now()
        renewed = micro_time(now)

        def bump(lease: dict[str, Any]) -> None:
            spec = lease.setdefault("spec", {})
            spec["renewTime"] = renewed
            spec["holderIdentity"] = name
            spec["leaseDurationSeconds"] = LEASE_DURATION_SECONDS

        try:
            self._store.mutate("leases", name, bump, namespace=NODE_LEASE_NAMESPACE)
        except ApiError as error:
            if error.code != 404:
                return
            with contextlib.suppress(ApiError):  # the node went meanwhile
                self._store.create("leases", lease_object(node, now))
        self.renewals += 1
        if name in self._stopped:
            self._stopped.discard(name)
            self._on_restart(name)
