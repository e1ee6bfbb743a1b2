"""Synthetic decide/v1 requests for the benchmark: a Ray burst of pending worker pods in several
worker groups over several node pools, mixed CPU and GPU, deterministic for a given size.

Shapes follow what KubeRay clusters on ACK look like: CPU worker groups of 1-8 vCPU, GPU worker
groups that request `nvidia.com/gpu` and tolerate the GPU pools' taint, some groups pinned to
pools by nodeSelector. Instance types and prices are illustrative, not a price list.
"""

from __future__ import annotations

from typing import Any

NOW = "2026-11-29T05:00:00Z"
SINCE = "2026-11-29T04:59:58Z"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT = {"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}

# Every worker group has its own shape (up to 2,048 CPU and 1,024 GPU shapes): CPU groups take
# 250m..8 vCPU in 250m steps and 1..~5 GiB per vCPU; GPU groups 1 or 2 GPUs with 2..7.75 vCPU and
# 8..50 GiB. Sizes are scrambled over the index so that 50 groups already span the range.
_CPU_STEPS = 32
_RATIO_STEPS = 64
_GPU_CPU_STEPS = 24
# (instance type, cpu, memory, price per hour) of CPU pools, cycled.
_CPU_POOLS = (
    ("ecs.g7.2xlarge", "7800m", "28Gi", 1.8),
    ("ecs.g7.4xlarge", "15800m", "58Gi", 3.6),
    ("ecs.c7.4xlarge", "15800m", "28Gi", 2.9),
    ("ecs.g7.8xlarge", "31800m", "120Gi", 7.2),
)
# (instance type, cpu, memory, gpus, price per hour) of GPU pools, cycled.
_GPU_POOLS = (
    ("ecs.gn7i-c16g1.4xlarge", "15800m", "56Gi", "1", 12.0),
    ("ecs.gn7i-2x.8xlarge", "31800m", "120Gi", "2", 25.0),
)


def is_gpu_group(index: int) -> bool:
    """Every fifth worker group is a GPU group (1 of 5, 10 of 50)."""
    return index % 5 == 4


def is_gpu_pool(index: int, pools: int) -> bool:
    """Every fifth pool is a GPU pool; a single-pool cluster has a CPU pool only."""
    return pools > 1 and index % 5 == 4


def make_request(
    *,
    pods: int,
    groups: int,
    pools: int,
    eci: bool = False,
    upcoming: bool = True,
    gpu: bool = True,
) -> dict[str, Any]:
    """A decide/v1 request with `pods` pending pods spread evenly over `groups` worker groups,
    each of its own shape; without `upcoming`, no pool has nodes on the way; without `gpu`,
    every worker group is a CPU group."""
    return {
        "schema": "decide/v1",
        "now": NOW,
        "cluster": {"id": "c-bench", "region": "cn-hangzhou"},
        "pods": _pods(pods, groups, gpu=gpu),
        "pools": [_pool(index, pools, upcoming=upcoming) for index in range(pools)],
        "eci": {
            "enabled": eci,
            "labels": {"type": "virtual-kubelet"},
            "taints": [
                {
                    "key": "virtual-kubelet.io/provider",
                    "value": "alibabacloud",
                    "effect": "NoSchedule",
                }
            ],
            "pricePerVcpuSecond": 0.000049,
            "pricePerGibSecond": 0.00000613,
            "startSeconds": 30,
            "maxPods": 500,
            "runningPods": 0,
            "maxPodCpu": "64",
            "maxPodMemory": "512Gi",
        },
        "policy": {
            "strategy": "cost",
            "latencyBudgetSeconds": 120,
            "expectedRunSeconds": 600,
            # Large enough that the whole burst is planned, so both planners do the full job.
            "maxNewNodesPerDecision": 100_000,
            "maxProvisionSeconds": 600,
        },
    }


def _pods(count: int, groups: int, *, gpu: bool) -> list[dict[str, Any]]:
    shapes = [_group_shape(index, gpu=gpu) for index in range(groups)]
    pods = []
    for number in range(count):
        group = number % groups
        requests, selector, tolerations = shapes[group]
        pods.append(
            {
                "uid": f"u-{number:06d}",
                "namespace": "ray",
                "name": f"burst-ray-cluster-worker-group{group}-{number:06x}",
                "labels": {
                    "ray.io/cluster": "burst-ray-cluster",
                    "ray.io/group": f"group{group}",
                    "ray.io/node-type": "worker",
                    "ray.io/is-ray-node": "yes",
                },
                "annotations": {},
                "requests": dict(requests),
                "nodeSelector": dict(selector),
                "affinity": {},
                "tolerations": [dict(toleration) for toleration in tolerations],
                "hostNetwork": False,
                "volumeTypes": ["emptyDir"],
                "privileged": False,
                "unschedulableSince": SINCE,
                "message": "0/3 nodes are available: 3 Insufficient cpu.",
            }
        )
    return pods


def _group_shape(
    index: int, *, gpu: bool
) -> tuple[dict[str, str], dict[str, str], list[dict[str, str]]]:
    if gpu and is_gpu_group(index):
        step = index // 5
        cpu = 2000 + 250 * (step % _GPU_CPU_STEPS)
        memory = 8 + step // _GPU_CPU_STEPS
        gpus = "1" if step % 3 else "2"
        toleration = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
        requests = {"cpu": f"{cpu}m", "memory": f"{memory}Gi", GPU_RESOURCE: gpus}
        return requests, {}, [toleration]
    # (cpu step, memory ratio step) is distinct for every index below 2,048.
    cpu = 250 * (index % _CPU_STEPS + 1)
    ratio = ((index // _CPU_STEPS) * 37 + index * 5) % _RATIO_STEPS
    memory_mib = cpu * (16 + ratio) * 1024 // 16_000
    # A third of the CPU groups are pinned to the pools labelled for Ray.
    selector = {"workload": "ray"} if index % 3 == 1 else {}
    return {"cpu": f"{cpu}m", "memory": f"{memory_mib}Mi"}, selector, []


def _pool(index: int, pools: int, *, upcoming: bool) -> dict[str, Any]:
    pool_id = f"np-{index:03d}"
    labels = {"alibabacloud.com/nodepool-id": pool_id}
    # The first pool always carries the label, so pinned groups fit a one-pool cluster too.
    if index % 2 == 0:
        labels["workload"] = "ray"
    if is_gpu_pool(index, pools):
        instance_type, cpu, memory, gpus, price = _GPU_POOLS[(index // 5) % len(_GPU_POOLS)]
        allocatable = {"cpu": cpu, "memory": memory, "pods": "110", GPU_RESOURCE: gpus}
        taints = [dict(GPU_TAINT)]
    else:
        instance_type, cpu, memory, price = _CPU_POOLS[index % len(_CPU_POOLS)]
        allocatable = {"cpu": cpu, "memory": memory, "pods": "110"}
        taints = []
    # Some pools already have nodes on the way, which both planners fill first.
    desired = index % 3
    ready = max(0, desired - 1) if upcoming else desired
    return {
        "id": pool_id,
        "name": f"pool-{index}",
        "instanceType": instance_type,
        "allocatable": allocatable,
        "labels": labels,
        "taints": taints,
        "size": {"min": 0, "max": 5000, "desired": desired, "ready": ready},
        "scalingSince": "2026-11-29T04:59:30Z" if desired > ready else None,
        "lastError": None,
        "bootSeconds": 90 + 10 * (index % 4),
        "pricePerHour": price,
        "priority": 0,
    }
