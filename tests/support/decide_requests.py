"""Builders for decide/v1 requests in tests: small dicts with the contract's shape."""

from __future__ import annotations

from typing import Any

NOW = "2026-11-29T05:00:00Z"


def pod(uid: str, *, cpu: str = "1", memory: str = "1Gi", **fields: Any) -> dict[str, Any]:
    """An unschedulable Ray worker pod; keyword fields override or add contract fields."""
    body: dict[str, Any] = {
        "uid": uid,
        "namespace": "ray",
        "name": f"rc-worker-{uid}",
        "labels": {"ray.io/cluster": "rc", "ray.io/node-type": "worker"},
        "annotations": {},
        "requests": {"cpu": cpu, "memory": memory},
        "nodeSelector": {},
        "affinity": {},
        "tolerations": [],
        "hostNetwork": False,
        "volumeTypes": ["emptyDir"],
        "privileged": False,
    }
    body.update(fields)
    return body


def pool(
    pool_id: str,
    *,
    cpu: str = "3900m",
    memory: str = "14Gi",
    desired: int = 0,
    ready: int = 0,
    max_size: int = 10,
    price: float = 0.9,
    boot: float = 90,
    **fields: Any,
) -> dict[str, Any]:
    """A node pool template (4 vCPU / 16 GiB by default)."""
    body: dict[str, Any] = {
        "id": pool_id,
        "name": pool_id,
        "instanceType": "ecs.g7.xlarge",
        "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
        "labels": {"alibabacloud.com/nodepool-id": pool_id},
        "taints": [],
        "size": {"min": 0, "max": max_size, "desired": desired, "ready": ready},
        "scalingSince": None,
        "lastError": None,
        "bootSeconds": boot,
        "pricePerHour": price,
        "priority": 0,
    }
    body.update(fields)
    return body


def walkthrough_request(
    pods: int = 15,
    *,
    cluster_id: str = "c-1",
    allocatable: tuple[str, str] = ("4", "16Gi"),
    ray_node_type: bool = False,
) -> dict[str, Any]:
    """ACK's walkthrough: `pods` one-vCPU Ray workers pending, one 4 vCPU pool with one node; the
    cost strategy and no ECI. `allocatable` is the node's (cpu, memory)."""
    labels = {"ray.io/cluster": "myfirst-ray-cluster", "ray.io/group": "workergroup"}
    if ray_node_type:
        labels["ray.io/node-type"] = "worker"
    workers = [
        pod(
            f"u-{i}",
            name=f"myfirst-ray-cluster-worker-workergroup-{i:05d}",
            labels=dict(labels),
            unschedulableSince="2026-11-29T04:59:58Z",
            message="0/1 nodes are available: 1 Insufficient cpu.",
        )
        for i in range(pods)
    ]
    cpu, memory = allocatable
    return {
        "schema": "decide/v1",
        "now": NOW,
        "cluster": {"id": cluster_id, "region": "cn-hangzhou"},
        "pods": workers,
        "pools": [
            pool("np-cpu", name="cpu", cpu=cpu, memory=memory, desired=1, ready=1, max_size=20)
        ],
        "eci": {"enabled": False},
        "policy": {"strategy": "cost"},
    }


def eci(
    *, enabled: bool = True, max_pods: int = 500, running: int = 0, **fields: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "enabled": enabled,
        "labels": {"type": "virtual-kubelet"},
        "taints": [
            {"key": "virtual-kubelet.io/provider", "value": "alibabacloud", "effect": "NoSchedule"}
        ],
        "pricePerVcpuSecond": 0.000049,
        "pricePerGibSecond": 0.00000613,
        "startSeconds": 30,
        "maxPods": max_pods,
        "runningPods": running,
        "maxPodCpu": "64",
        "maxPodMemory": "512Gi",
    }
    body.update(fields)
    return body


def request(
    pods: list[dict[str, Any]],
    pools: list[dict[str, Any]],
    *,
    eci_config: dict[str, Any] | None = None,
    now: str = NOW,
    **policy: Any,
) -> dict[str, Any]:
    """A full request; ECI disabled unless `eci_config` is given; policy fields as keywords."""
    body: dict[str, Any] = {
        "schema": "decide/v1",
        "now": now,
        "cluster": {"id": "c-1", "region": "cn-hangzhou"},
        "pods": pods,
        "pools": pools,
        "eci": eci_config if eci_config is not None else eci(enabled=False),
        "policy": {
            "strategy": "cost",
            "latencyBudgetSeconds": 120,
            "expectedRunSeconds": 600,
            "maxNewNodesPerDecision": 100,
            "maxProvisionSeconds": 600,
            **policy,
        },
    }
    return body


def feed_back(request_body: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
    """The next request once `reply` is applied: pools at toDesired, ECI pods gone and running."""
    to_desired = {
        a["poolId"]: a["toDesired"] for a in reply["actions"] if a["kind"] == "scale-pool"
    }
    on_eci = {uid for a in reply["actions"] if a["kind"] == "place-on-eci" for uid in a["pods"]}
    pools = []
    for p in request_body["pools"]:
        p = {**p, "size": dict(p["size"])}
        if p["id"] in to_desired:
            p["size"]["desired"] = to_desired[p["id"]]
        pools.append(p)
    eci_body = dict(request_body["eci"])
    eci_body["runningPods"] = eci_body.get("runningPods", 0) + len(on_eci)
    return {
        **request_body,
        "pods": [p for p in request_body["pods"] if p["uid"] not in on_eci],
        "pools": pools,
        "eci": eci_body,
    }


def placements(reply: dict[str, Any]) -> dict[str, str]:
    """uid -> where the reply put it: 'new:<pool>', 'covered:<pool>', 'eci' or 'unplaceable'."""
    where: dict[str, str] = {}
    for action in reply["actions"]:
        target = "eci" if action["kind"] == "place-on-eci" else f"new:{action['poolId']}"
        for uid in action["pods"]:
            where[uid] = target
    for item in reply["covered"]:
        where[item["pod"]] = f"covered:{item['poolId']}"
    for item in reply["unplaceable"]:
        where[item["pod"]] = "unplaceable"
    return where
