"""The benchmark's baseline: pod-by-pod, node-by-node first fit, the way cluster-autoscaler's
binpacking estimator works. For each pod it runs the filters (resources, nodeSelector, taints)
against every node opened so far, in order; if none fits it opens a node of the first feasible
pool. Upcoming nodes (desired - ready) are opened first, as cluster-autoscaler injects them into
its snapshot. It reads the same decide/v1 request, parsing quantities with the core's parser.

It ignores what the bench's requests never use (affinity, ECI, strategies), so it does strictly
less work per check than the real core; the comparison flatters the baseline, not the core.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from functions.quantity import parse_quantity

BLOCKING_EFFECTS = frozenset({"NoSchedule", "NoExecute"})


class BudgetExceeded(Exception):
    """The baseline ran past its time budget; `pods_done` says how far it got."""

    def __init__(self, pods_done: int) -> None:
        super().__init__(f"stopped after {pods_done} pods")
        self.pods_done = pods_done


@dataclass
class _Node:
    pool: int
    free: dict[str, int]


@dataclass
class NaivePlan:
    new_nodes: dict[str, int] = field(default_factory=dict)
    placed: int = 0
    unplaceable: int = 0

    @property
    def total_new_nodes(self) -> int:
        return sum(self.new_nodes.values())


def _tolerated(tolerations: list[dict[str, Any]], taint: dict[str, Any]) -> bool:
    for toleration in tolerations:
        effect = toleration.get("effect") or ""
        if effect and effect != taint.get("effect"):
            continue
        key = toleration.get("key") or ""
        if key and key != taint.get("key"):
            continue
        if (toleration.get("operator") or "Equal") == "Exists":
            return True
        if (toleration.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def _pool_admits(pod: dict[str, Any], pool: dict[str, Any]) -> bool:
    labels = pool["labels"]
    for key, value in (pod.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    tolerations = pod.get("tolerations") or []
    for taint in pool.get("taints") or ():
        if taint.get("effect") in BLOCKING_EFFECTS and not _tolerated(tolerations, taint):
            return False
    return True


def _fits(requests: dict[str, int], free: dict[str, int]) -> bool:
    return all(amount <= free.get(name, 0) for name, amount in requests.items())


def naive_first_fit(request: dict[str, Any], *, budget_seconds: float = float("inf")) -> NaivePlan:
    """Plans the request pod by pod; raises BudgetExceeded past `budget_seconds` of wall time."""
    deadline = time.perf_counter() + budget_seconds
    pools = request["pools"]
    allocatable = [
        {name: parse_quantity(value) for name, value in pool["allocatable"].items()}
        for pool in pools
    ]
    room = [pool["size"]["max"] - pool["size"]["desired"] for pool in pools]
    new_node_cap = request["policy"]["maxNewNodesPerDecision"]
    plan = NaivePlan()
    opened = 0
    nodes: list[_Node] = []
    for index, pool in enumerate(pools):
        upcoming = pool["size"]["desired"] - pool["size"]["ready"]
        nodes.extend(_Node(index, dict(allocatable[index])) for _ in range(upcoming))

    for done, pod in enumerate(request["pods"]):
        if done % 256 == 0 and time.perf_counter() > deadline:
            raise BudgetExceeded(done)
        requests = {name: parse_quantity(value) for name, value in pod["requests"].items()}
        requests["pods"] = 1000
        target = None
        for node in nodes:
            # The scheduler's filters run per node, so the pool's labels and taints are re-checked.
            if _pool_admits(pod, pools[node.pool]) and _fits(requests, node.free):
                target = node
                break
        if target is None and opened < new_node_cap:
            for index, pool in enumerate(pools):
                if (
                    room[index] > 0
                    and _pool_admits(pod, pool)
                    and _fits(requests, allocatable[index])
                ):
                    room[index] -= 1
                    opened += 1
                    plan.new_nodes[pool["id"]] = plan.new_nodes.get(pool["id"], 0) + 1
                    target = _Node(index, dict(allocatable[index]))
                    nodes.append(target)
                    break
        if target is None:
            plan.unplaceable += 1
            continue
        for name, amount in requests.items():
            target.free[name] = target.free.get(name, 0) - amount
        plan.placed += 1
    return plan
