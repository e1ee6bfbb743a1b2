"""Builders for the objects tests feed the code, in the style of cluster-autoscaler's
`BuildTestPod`/`BuildTestNode`: one function per kind, defaults that make a typical Ray worker or
ACK node, keyword arguments for what a test cares about.

- `build_test_pod` / `build_test_node`: raw Kubernetes JSON, as the API server stores it.
- `raw_pod` / `raw_node`: bound Ray pods and ACK nodes as the scale-in fold reads them.
- `pending_pod`, `pool_view`, `pool_node`, `virtual_node`: the agent's own values (agent.model,
  the CS emulator's PoolView).
- The contract bodies (decide/v1, scale-in/v1) are in tests.support.decide_requests and
  tests.support.scale_in_requests.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from agent.model import NodeState, PendingPod
from agent.sim.cloud.cloud_model import PoolView


def build_test_pod(
    name: str,
    *,
    namespace: str | None = None,
    uid: str | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    owners: list[dict[str, Any]] | None = None,
    created: str | None = None,
    container: str = "main",
    image: str | None = "busybox",
    cpu: str | None = None,
    memory: str | None = None,
    limits: bool = False,
    node: str | None = None,
    containers: list[dict[str, Any]] | None = None,
    status: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A raw pod with one container; only the fields a test names appear (`None` leaves a field
    out); extra keywords are pod spec fields. `node` binds it (spec.nodeName)."""
    optional = {
        "namespace": namespace,
        "uid": uid,
        "labels": labels,
        "annotations": annotations,
        "ownerReferences": owners,
        "creationTimestamp": created,
    }
    metadata = {"name": name, **{k: v for k, v in optional.items() if v is not None}}
    if containers is None:
        box: dict[str, Any] = {"name": container}
        if image is not None:
            box["image"] = image
        requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
        if requests:
            box["resources"] = {"requests": requests}
            if limits:
                box["resources"]["limits"] = dict(requests)
        containers = [box]
    body: dict[str, Any] = {"metadata": metadata, "spec": {"containers": containers, **spec}}
    if node is not None:
        body["spec"]["nodeName"] = node
    if status is not None:
        body["status"] = status
    return body


def build_test_node(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "16Gi",
    pods: str = "110",
    labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    ready: bool = True,
    unschedulable: bool = False,
) -> dict[str, Any]:
    """A raw node with its allocatable and Ready condition."""
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"taints": taints or [], "unschedulable": unschedulable},
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory, "pods": pods},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z
NODE = "cn-hangzhou.172.16.0.17"
ALLOCATABLE = {"cpu": "3900m", "memory": "14Gi", "pods": "110"}


def stamp(epoch: float) -> str:
    """An RFC 3339 UTC timestamp, as Kubernetes writes them."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def raw_node(
    name: str = NODE,
    *,
    ready: bool = True,
    created: float = T0,
    transition: float | None = None,
    unschedulable: bool = False,
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "creationTimestamp": stamp(created),
            "labels": {"alibabacloud.com/nodepool-id": "np-cpu"},
        },
        "spec": {"providerID": "cn-hangzhou.i-bp1abc", "unschedulable": unschedulable},
        "status": {
            "allocatable": dict(ALLOCATABLE),
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "lastTransitionTime": stamp(transition or created),
                }
            ],
        },
    }


def raw_pod(
    uid: str,
    *,
    node: str = NODE,
    owner: str | None = "RayCluster",
    cpu: str = "1",
    phase: str = "Running",
    ray: str | None = "worker",
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "uid": uid,
        "name": f"pod-{uid}",
        "namespace": "ray",
        "labels": {"ray.io/node-type": ray} if ray else {},
        "annotations": annotations or {},
    }
    if owner:
        meta["ownerReferences"] = [{"kind": owner, "name": "o", "uid": "o-1", "controller": True}]
    return {
        "metadata": meta,
        "spec": {
            "nodeName": node,
            "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}],
        },
        "status": {"phase": phase},
    }


def pool_view(
    pool_id: str,
    *,
    instance_type: str = "ecs.g7.xlarge",
    desired: int = 0,
    max_size: int = 20,
    min_size: int = 0,
    labels: dict[str, str] | None = None,
) -> PoolView:
    return PoolView(
        pool_id=pool_id,
        name=pool_id.removeprefix("np-"),
        instance_types=(instance_type,),
        desired=desired,
        min_size=min_size,
        max_size=max_size,
        labels={"alibabacloud.com/nodepool-id": pool_id, **(labels or {})},
        auto_scaling_enabled=True,
    )


def pending_pod(
    uid: str,
    *,
    cpu: str = "1",
    memory: str = "1Gi",
    rv: str = "1",
    name: str | None = None,
    namespace: str = "ray",
    node_selector: dict[str, str] | None = None,
    tolerations: tuple[dict[str, Any], ...] = (),
) -> PendingPod:
    """A KubeRay worker as the view reports it when the scheduler marked it Unschedulable."""
    return PendingPod(
        uid=uid,
        namespace=namespace,
        name=name or f"raycluster-worker-{uid}",
        resource_version=rv,
        labels={
            "ray.io/cluster": "raycluster",
            "ray.io/group": "workergroup",
            "ray.io/node-type": "worker",
        },
        annotations={},
        requests={"cpu": cpu, "memory": memory},
        node_selector=dict(node_selector or {}),
        affinity={},
        tolerations=tolerations,
        host_network=False,
        volume_types=("emptyDir",),
        privileged=False,
        unschedulable_since="2026-11-29T04:59:58Z",
        message="0/1 nodes are available: 1 Insufficient cpu.",
    )


def pool_node(
    name: str, pool_id: str, *, ready: bool = True, allocatable: dict[str, str] | None = None
) -> NodeState:
    return NodeState(
        name=name,
        pool_id=pool_id,
        ready=ready,
        virtual=False,
        allocatable=allocatable or {"cpu": "3900m", "memory": "14Gi", "pods": "64"},
        labels={"alibabacloud.com/nodepool-id": pool_id},
        taints=(),
    )


ECI_TAINT = {"key": "virtual-kubelet.io/provider", "value": "alibabacloud", "effect": "NoSchedule"}


def virtual_node(*, pods: str = "500") -> NodeState:
    return NodeState(
        name="virtual-kubelet-cn-hangzhou-k",
        pool_id=None,
        ready=True,
        virtual=True,
        allocatable={"cpu": "1000", "memory": "4Ti", "pods": pods},
        labels={"type": "virtual-kubelet", "kubernetes.io/role": "agent"},
        taints=(ECI_TAINT,),
    )


def build_test_raycluster(
    name: str,
    *,
    namespace: str | None = None,
    replicas: int = 1,
    min_replicas: int = 0,
    max_replicas: int = 10,
    group: str = "cpu-workers",
    finalizers: list[str] | None = None,
) -> dict[str, Any]:
    """A `ray.io/v1` RayCluster as a Helm chart would create it: a head group and one worker
    group with `replicas` workers of 1 CPU / 2Gi."""
    container = {
        "name": "ray-worker",
        "image": "rayproject/ray:2.40.0",
        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}},
    }
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    if finalizers is not None:
        metadata["finalizers"] = finalizers
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": metadata,
        "spec": {
            "rayVersion": "2.40.0",
            "enableInTreeAutoscaling": True,
            "headGroupSpec": {
                "rayStartParams": {},
                "template": {
                    "spec": {"containers": [{**container, "name": "ray-head"}]},
                },
            },
            "workerGroupSpecs": [
                {
                    "groupName": group,
                    "replicas": replicas,
                    "minReplicas": min_replicas,
                    "maxReplicas": max_replicas,
                    "rayStartParams": {},
                    # as after the autoscaler's first clean-up patch
                    "scaleStrategy": {"workersToDelete": []},
                    "template": {"spec": {"containers": [container]}},
                }
            ],
        },
    }
