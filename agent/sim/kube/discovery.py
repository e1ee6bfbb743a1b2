"""The discovery documents kubectl and client libraries read before anything else: /version,
/api, /api/v1, /apis and the coordination.k8s.io, policy and ray.io groups."""

from __future__ import annotations

from typing import Any

VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.1-aliyun.1",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-10-01T00:00:00Z",
    "goVersion": "go1.22.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_READ_WRITE = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
_SUB = ["get", "patch", "update"]


def _resource(
    name: str,
    singular: str,
    kind: str,
    *,
    namespaced: bool,
    verbs: list[str],
    short: list[str] | None = None,
    categories: list[str] | None = None,
    group: str | None = None,
    version: str | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": name,
        "singularName": singular,
        "namespaced": namespaced,
        "kind": kind,
        "verbs": verbs,
    }
    if short:
        entry["shortNames"] = short
    if categories:
        entry["categories"] = categories
    if group is not None:
        entry["group"] = group
        entry["version"] = version
    return entry


CORE_V1 = {
    "kind": "APIResourceList",
    "groupVersion": "v1",
    "resources": [
        _resource("events", "event", "Event", namespaced=True, verbs=_READ_WRITE, short=["ev"]),
        _resource(
            "namespaces",
            "namespace",
            "Namespace",
            namespaced=False,
            verbs=["create", "delete", "get", "list", "patch", "update", "watch"],
            short=["ns"],
        ),
        _resource("namespaces/finalize", "", "Namespace", namespaced=False, verbs=["update"]),
        _resource("namespaces/status", "", "Namespace", namespaced=False, verbs=_SUB),
        _resource("nodes", "node", "Node", namespaced=False, verbs=_READ_WRITE, short=["no"]),
        _resource("nodes/status", "", "Node", namespaced=False, verbs=_SUB),
        # kubectl get all: the "all" category names pods (of what is served here)
        _resource(
            "pods",
            "pod",
            "Pod",
            namespaced=True,
            verbs=_READ_WRITE,
            short=["po"],
            categories=["all"],
        ),
        _resource("pods/binding", "", "Binding", namespaced=True, verbs=["create"]),
        _resource(
            "pods/eviction",
            "",
            "Eviction",
            namespaced=True,
            verbs=["create"],
            group="policy",
            version="v1",
        ),
        _resource("pods/status", "", "Pod", namespaced=True, verbs=_SUB),
    ],
}

COORDINATION_V1 = {
    "kind": "APIResourceList",
    "apiVersion": "v1",
    "groupVersion": "coordination.k8s.io/v1",
    "resources": [
        _resource("leases", "lease", "Lease", namespaced=True, verbs=_READ_WRITE),
    ],
}

_COORDINATION_VERSION = {"groupVersion": "coordination.k8s.io/v1", "version": "v1"}
COORDINATION_GROUP = {
    "kind": "APIGroup",
    "apiVersion": "v1",
    "name": "coordination.k8s.io",
    "versions": [_COORDINATION_VERSION],
    "preferredVersion": _COORDINATION_VERSION,
}

# policy/v1 as kube-apiserver 1.31 lists it (v1beta1 was removed in 1.25)
POLICY_V1 = {
    "kind": "APIResourceList",
    "apiVersion": "v1",
    "groupVersion": "policy/v1",
    "resources": [
        _resource(
            "poddisruptionbudgets",
            "poddisruptionbudget",
            "PodDisruptionBudget",
            namespaced=True,
            verbs=_READ_WRITE,
            short=["pdb"],
        ),
        _resource(
            "poddisruptionbudgets/status", "", "PodDisruptionBudget", namespaced=True, verbs=_SUB
        ),
    ],
}

_POLICY_VERSION = {"groupVersion": "policy/v1", "version": "v1"}
POLICY_GROUP = {
    "kind": "APIGroup",
    "apiVersion": "v1",
    "name": "policy",
    "versions": [_POLICY_VERSION],
    "preferredVersion": _POLICY_VERSION,
}


# ray.io/v1 as apiextensions-apiserver's discovery controller (pkg/apiserver/
# customresource_discovery_controller.go) lists a CRD's version: the verbs of every custom
# resource in its order, the CRD's categories (KubeRay's: all), no short names, and the status
# subresource. KubeRay's CRD also serves a deprecated v1alpha1, which is not modelled here.
_CUSTOM_RESOURCE_VERBS = [
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "create",
    "update",
    "watch",
]
RAY_V1 = {
    "kind": "APIResourceList",
    "apiVersion": "v1",
    "groupVersion": "ray.io/v1",
    "resources": [
        _resource(
            "rayclusters",
            "raycluster",
            "RayCluster",
            namespaced=True,
            verbs=_CUSTOM_RESOURCE_VERBS,
            categories=["all"],
        ),
        _resource("rayclusters/status", "", "RayCluster", namespaced=True, verbs=_SUB),
    ],
}

_RAY_VERSION = {"groupVersion": "ray.io/v1", "version": "v1"}
RAY_GROUP = {
    "kind": "APIGroup",
    "apiVersion": "v1",
    "name": "ray.io",
    "versions": [_RAY_VERSION],
    "preferredVersion": _RAY_VERSION,
}


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def api_groups() -> dict[str, Any]:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {k: v for k, v in group.items() if k not in ("kind", "apiVersion")}
            for group in (COORDINATION_GROUP, POLICY_GROUP, RAY_GROUP)
        ],
    }
