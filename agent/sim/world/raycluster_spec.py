"""A scenario's RayCluster: the parts of it the simulator models, and the `ray.io/v1` RayCluster
object they stand for, as the kuberay/ray-cluster Helm chart renders it (helm-chart/ray-cluster/
templates/raycluster-cluster.yaml in github:ray-project/kuberay): a head group with its
rayStartParams and pod template, and one workerGroupSpec per worker group with replicas,
minReplicas, maxReplicas, idleTimeoutSeconds, rayStartParams and a pod template whose container
has requests = limits (as Ray requires).

The Ray workload (`ray.RayDriver`) POSTs `manifest()` to the API server at start, as `helm install`
does; the KubeRay operator stand-in (`kuberay_operator`) builds pods from the stored object only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from functions.quantity import parse_resources

GPU_RESOURCE = "nvidia.com/gpu"
MILLI = 1000
RAY_IMAGE = "rayproject/ray:2.9.3"
# What the scenario's Helm release is called in the object's labels (the chart's helpers.tpl).
HELM_CHART = "ray-cluster-1.1.0"
# How long the KubeRay operator takes from a RayCluster or pod change to its reconcile's writes.
# controller-runtime queues the key on the watch event at once (client-go's workqueue adds
# without delay; its rate limiter, 5 ms doubling, only delays retries), then one reconcile lists
# the cluster's pods and creates the missing ones one API request at a time. No published figure
# exists; 0.5 s is an estimate of that path, a setting (`ray.operatorDelaySeconds`) so a bench
# can vary it.
OPERATOR_DELAY_SECONDS = 0.5
# Who changes the RayCluster's replicas: the simulated Ray autoscaler and job (`ray.RayDriver`),
# or something outside the simulator, such as Ray's own KubeRay node provider run against
# `sim serve --tls`, which the simulated one would fight over the same fields.
AUTOSCALERS = ("simulated", "external")


@dataclass(frozen=True)
class HeadSpec:
    """The head group: it runs no tasks (num-cpus 0) and must land on a system node."""

    requests: Mapping[str, str] = field(default_factory=lambda: {"cpu": "1", "memory": "2Gi"})
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkerGroupSpec:
    """One worker group: the pod template's parts that matter and the autoscaling bounds."""

    name: str
    requests: Mapping[str, str]  # requests = limits, as Ray requires
    min_replicas: int = 0
    max_replicas: int = 10
    replicas: int = 0  # initial
    idle_timeout_seconds: float = 60.0
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    host_path: bool = False  # mounts a hostPath volume (not possible on ECI)
    privileged: bool = False  # privileged container (not possible on ECI)
    custom_resources: Mapping[str, float] = field(default_factory=dict)  # rayStartParams resources

    def logical(self) -> dict[str, int]:
        """Ray's logical resources of one worker in milli-units: CPU and GPU from the container's
        resources, plus the group's custom resources."""
        parsed = parse_resources(dict(self.requests), path=f"workerGroup {self.name}.requests")
        resources = {name: round(amount * MILLI) for name, amount in self.custom_resources.items()}
        # Ray advertises whole CPUs from the container limit; fractional limits round down.
        resources["CPU"] = parsed.get("cpu", 0) // MILLI * MILLI
        resources["GPU"] = parsed.get(GPU_RESOURCE, 0) // MILLI * MILLI
        return resources


@dataclass(frozen=True)
class RayClusterSpec:
    name: str
    namespace: str = "default"
    head: HeadSpec = HeadSpec()
    worker_groups: tuple[WorkerGroupSpec, ...] = ()
    image: str = RAY_IMAGE
    autoscaler_period_seconds: float = 5.0
    operator_delay_seconds: float = OPERATOR_DELAY_SECONDS
    autoscaler: str = "simulated"  # one of AUTOSCALERS


def _container(name: str, image: str, requests: Mapping[str, str]) -> dict[str, Any]:
    # no command or args: KubeRay generates the `ray start` line from rayStartParams
    return {
        "name": name,
        "image": image,
        "resources": {"requests": dict(requests), "limits": dict(requests)},
    }


def _pod_spec(
    container: dict[str, Any],
    node_selector: Mapping[str, str],
    tolerations: tuple[Mapping[str, Any], ...],
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [container]}
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    if tolerations:
        spec["tolerations"] = [dict(t) for t in tolerations]
    return spec


def worker_group_manifest(group: WorkerGroupSpec, image: str) -> dict[str, Any]:
    """One `spec.workerGroupSpecs[]` entry."""
    container = _container("ray-worker", image, group.requests)
    spec = _pod_spec(container, group.node_selector, group.tolerations)
    if group.host_path:
        spec["volumes"] = [{"name": "host-data", "hostPath": {"path": "/mnt/data"}}]
        container["volumeMounts"] = [{"name": "host-data", "mountPath": "/data"}]
    if group.privileged:
        container["securityContext"] = {"privileged": True}
    start_params: dict[str, str] = {}
    if group.custom_resources:
        # written as Ray's docs write it: single-quoted JSON, passed verbatim to `ray start`
        start_params["resources"] = (
            "'" + json.dumps(dict(group.custom_resources), sort_keys=True) + "'"
        )
    template_meta: dict[str, Any] = {}
    if group.labels:
        template_meta["labels"] = dict(group.labels)
    if group.annotations:
        template_meta["annotations"] = dict(group.annotations)
    return {
        "groupName": group.name,
        "replicas": max(group.replicas, group.min_replicas),
        "minReplicas": group.min_replicas,
        "maxReplicas": group.max_replicas,
        # an integer in the CRD (int32): the scenario's seconds, rounded up
        "idleTimeoutSeconds": int(-(-group.idle_timeout_seconds // 1)),
        "rayStartParams": start_params,
        "template": {"metadata": template_meta, "spec": spec},
    }


def manifest(cluster: RayClusterSpec) -> dict[str, Any]:
    """The RayCluster object `helm install` creates for this cluster, autoscaling on (the
    Ray autoscaler, here `ray.RayDriver`, then owns `replicas` and `workersToDelete`)."""
    head = cluster.head
    head_meta: dict[str, Any] = {"labels": dict(head.labels)} if head.labels else {}
    ray_version = cluster.image.rpartition(":")[2] if ":" in cluster.image else ""
    spec: dict[str, Any] = {
        "enableInTreeAutoscaling": True,
        "headGroupSpec": {
            "rayStartParams": {"num-cpus": "0"},
            "serviceType": "ClusterIP",
            "template": {
                "metadata": head_meta,
                "spec": _pod_spec(
                    _container("ray-head", cluster.image, head.requests),
                    head.node_selector,
                    head.tolerations,
                ),
            },
        },
        "workerGroupSpecs": [
            worker_group_manifest(g, cluster.image) for g in cluster.worker_groups
        ],
    }
    if ray_version:
        spec = {"rayVersion": ray_version, **spec}
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {
            "name": cluster.name,
            "namespace": cluster.namespace,
            "labels": {
                "app.kubernetes.io/instance": cluster.name,
                "app.kubernetes.io/managed-by": "Helm",
                "helm.sh/chart": HELM_CHART,
            },
        },
        "spec": spec,
    }
