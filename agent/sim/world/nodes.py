"""Kubernetes Node objects as the simulated world builds and reads them, shared by its parts.

The node pools launch nodes (`node_object`, with an `AddressBook` for their private IPs), the ECI
virtual node and tests register them (`ready_node`, `node_system_info`); the kubelet honours the
`ready-at` and `pod-start-seconds` annotations they carry. Also here: graceful pod deletion as the
API server does it, and the small predicates on nodes and the pods that occupy them.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from typing import Any

from agent.sim.kube.store import ObjectStore
from agent.sim.world.catalog import InstanceType
from agent.sim.world.clock import SimClock

READY_AT_ANNOTATION = "sim.ray-ack-scaler.io/ready-at"
POD_START_ANNOTATION = "sim.ray-ack-scaler.io/pod-start-seconds"
NOT_READY_TAINT = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
NODE_INFO = {
    "kubeletVersion": "v1.31.1-aliyun.1",
    "kubeProxyVersion": "v1.31.1-aliyun.1",
    "containerRuntimeVersion": "containerd://1.6.28",
    "osImage": "Alibaba Cloud Linux 3.2104 U10 (OpenAnolis Edition)",
    "kernelVersion": "5.10.134-17.3.al8.x86_64",
    "operatingSystem": "linux",
    "architecture": "amd64",
}


def node_system_info(name: str, **overrides: str) -> dict[str, str]:
    """A complete `status.nodeInfo`: typed clients (kubernetes-asyncio's V1NodeSystemInfo) refuse
    a node whose bootID, machineID or systemUUID is missing, as a real kubelet always sends them.
    The ids are derived from the node name, so a run is reproducible."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    ids = {
        "machineID": digest[:32],
        "systemUUID": f"{digest[32:40]}-{digest[40:44]}-{digest[44:48]}-{digest[48:52]}-{digest[52:64]}",
        "bootID": f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}",
    }
    return {**NODE_INFO, **ids, **overrides}


def ready_node(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "16Gi",
    pods: str = "110",
    allocatable: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    taints: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A Node object with capacity and no conditions: the kubelet reports it Ready at once.

    With a `sim.ray-ack-scaler.io/ready-at` annotation it is NotReady until that time instead.
    """
    capacity = {"cpu": cpu, "memory": memory, "pods": pods}
    node: dict[str, Any] = {
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                **(labels or {}),
            },
            "annotations": dict(annotations or {}),
        },
        "spec": {"taints": list(taints)} if taints else {},
        "status": {
            "capacity": capacity,
            "allocatable": dict(allocatable or capacity),
            "addresses": [{"type": "Hostname", "address": name}],
        },
    }
    # ACK names nodes <region>.<private IP>
    parts = name.split(".")[-4:]
    if len(parts) == 4 and all(part.isdigit() for part in parts):
        node["status"]["addresses"].insert(0, {"type": "InternalIP", "address": ".".join(parts)})
    return node


def node_object(
    name: str,
    machine: InstanceType,
    *,
    labels: Mapping[str, str],
    taints: list[dict[str, str]],
    ip: str,
    created: str,
    ready_at: float,
    ready: bool,
    pod_start_seconds: float,
    provider_id: str = "",
) -> dict[str, Any]:
    """A Node as ACK registers it; `ready` False adds the not-ready condition and taint."""
    node_taints = [dict(t) for t in taints]
    if not ready:
        node_taints.append(dict(NOT_READY_TAINT))
    condition = {
        "type": "Ready",
        "status": "True" if ready else "False",
        "reason": "KubeletReady" if ready else "KubeletNotReady",
        "message": "kubelet is posting ready status" if ready else "container runtime is starting",
        "lastHeartbeatTime": created,
        "lastTransitionTime": created,
    }
    spec: dict[str, Any] = {"taints": node_taints}
    if provider_id:
        spec["providerID"] = provider_id
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": dict(labels),
            "annotations": {
                READY_AT_ANNOTATION: f"{ready_at:.3f}",
                POD_START_ANNOTATION: f"{pod_start_seconds:g}",
            },
            "creationTimestamp": created,
        },
        "spec": spec,
        "status": {
            "capacity": machine.capacity(),
            "allocatable": machine.allocatable(),
            "conditions": [condition],
            "addresses": [
                {"type": "InternalIP", "address": ip},
                {"type": "Hostname", "address": name},
            ],
            "nodeInfo": node_system_info(name),
        },
    }


def delete_pod_gracefully(
    store: ObjectStore,
    clock: SimClock,
    namespace: str,
    name: str,
    *,
    grace_seconds: float | None = None,
) -> None:
    """Delete a pod as the API server does for a DELETE or an eviction: a bound, unfinished pod
    gets deletionTimestamp = now + grace and its kubelet removes it then; an unbound or finished
    one goes at once. Raises the store's ApiError when the pod is gone."""
    pod = store.get("pods", name, namespace=namespace)
    spec = pod.get("spec") or {}
    if grace_seconds is None:
        grace_seconds = float(spec.get("terminationGracePeriodSeconds", 30))
    finished = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
    if not spec.get("nodeName") or finished or grace_seconds <= 0:
        store.delete("pods", name, namespace=namespace)
        return
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return
    deadline = clock.iso(clock.now() + grace_seconds)

    def mark(obj: dict[str, Any]) -> None:
        meta = obj.setdefault("metadata", {})
        meta["deletionTimestamp"] = deadline
        meta["deletionGracePeriodSeconds"] = int(grace_seconds)

    store.mutate("pods", name, mark, namespace=namespace)


def node_is_ready(node: Mapping[str, Any]) -> bool:
    for condition in node.get("status", {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def occupies_node(pod: Mapping[str, Any]) -> str | None:
    """The node a workload pod holds, or None (unbound, finished, or a DaemonSet pod)."""
    node = (pod.get("spec") or {}).get("nodeName")
    if not node:
        return None
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return None
    if is_daemonset_pod(pod):
        return None
    return str(node)


def is_daemonset_pod(pod: Mapping[str, Any]) -> bool:
    owners = (pod.get("metadata") or {}).get("ownerReferences") or []
    return any(o.get("kind") == "DaemonSet" for o in owners)


class AddressBook:
    """Hands out unique private IPs in 172.16.0.0/16, reproducibly for a seed."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[str] = set()

    def allocate(self) -> str:
        while True:
            ip = f"172.16.{self._rng.randint(0, 255)}.{self._rng.randint(1, 254)}"
            if ip not in self._used:
                self._used.add(ip)
                return ip
