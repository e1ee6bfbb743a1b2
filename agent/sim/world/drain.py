"""The drain RemoveNodePoolNodes runs on one node (`drain_node=true`), as strict as ACK's.

ACK's user guide ("remove a node") says the drain respects PodDisruptionBudgets and waits up to
30 minutes; if pods remain, the drain fails and the node is not removed. Here: cordon, then one
pass evicts every pod it may through the API server's own eviction rule
(`agent.sim.kube.disruption.admit_eviction`, as a client's POST .../pods/NAME/eviction would), and
reports the pods that stay. The node pools call a pass again after EVICTION_RETRY_SECONDS while
anything stays, until their drain timeout.

Not documented by ACK, so modelled strictly: a pod annotated
`cluster-autoscaler.kubernetes.io/safe-to-evict: "false"` is never evicted (the drain waits on it
like on a PDB refusal); DaemonSet pods and finished pods are left alone, as `kubectl drain
--ignore-daemonsets` does; pods with no controller are evicted (ACK's drain options are unknown).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from agent.sim.kube.disruption import admit_eviction
from agent.sim.kube.store import ApiError, ObjectStore
from agent.sim.world.clock import SimClock
from agent.sim.world.nodes import delete_pod_gracefully, is_daemonset_pod

SAFE_TO_EVICT = "cluster-autoscaler.kubernetes.io/safe-to-evict"
# kubectl drain retries a refused eviction after 5 s ("error when evicting pods/... (will retry
# after 5s)"); ACK's own interval is not documented.
EVICTION_RETRY_SECONDS = 5.0
# ACK user guide "remove a node": the drain waits up to 30 minutes.
DRAIN_TIMEOUT_SECONDS = 1800.0


def cordon(store: ObjectStore, node_name: str) -> None:
    """spec.unschedulable, as `kubectl cordon` writes it. The `node.kubernetes.io/unschedulable`
    taint is the node lifecycle controller's to add and remove with it; the simulator has no such
    controller (its scheduler reads spec.unschedulable), so the taint is not written here, where
    nothing would remove it again on uncordon."""

    def change(node: dict[str, Any]) -> None:
        node.setdefault("spec", {})["unschedulable"] = True

    with contextlib.suppress(ApiError):  # gone already
        store.mutate("nodes", node_name, change)


def evict_pass(store: ObjectStore, clock: SimClock, node_name: str) -> list[str]:
    """Evict what may go from `node_name` now; the pods that stay, each with why."""
    staying: list[str] = []
    pods, _ = store.list("pods")
    for pod in pods:
        if (pod.get("spec") or {}).get("nodeName") != node_name or _left_alone(pod):
            continue
        meta = pod["metadata"]
        namespace, name = str(meta.get("namespace") or ""), str(meta["name"])
        if meta.get("deletionTimestamp"):
            staying.append(f"{namespace}/{name} (terminating)")
            continue
        if str((meta.get("annotations") or {}).get(SAFE_TO_EVICT, "")).lower() == "false":
            staying.append(f'{namespace}/{name} (annotated {SAFE_TO_EVICT}: "false")')
            continue
        try:
            admit_eviction(store, namespace, name, now=clock.now())
            delete_pod_gracefully(store, clock, namespace, name)
        except ApiError as error:
            if error.code == 404:
                continue  # gone meanwhile
            staying.append(f"{namespace}/{name} (eviction refused: {_refusal(error)})")
    return staying


def _left_alone(pod: Mapping[str, Any]) -> bool:
    finished = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
    return finished or is_daemonset_pod(pod)


def _refusal(error: ApiError) -> str:
    """The eviction's Status message, with its DisruptionBudget cause when there is one."""
    causes = (error.details or {}).get("causes") or ()
    return "; ".join([error.message, *(str(c.get("message")) for c in causes if c.get("message"))])
