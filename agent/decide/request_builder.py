"""Turns the agent's view of the world into one decide/v1 request.

Inputs are values (the batch's `Snapshot`, the pools as CS last reported them, what actuation
remembers per pool) plus settings; nothing here reads a clock or a client. Pools the request cannot
describe honestly — no live node and no catalog entry for their instance type, or no price — are
left out and logged rather than guessed at.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.catalog import CATALOG, InstanceType
from agent.decide.pod_entries import PodEntryCache, shape_json
from agent.model import NodeState, PendingPod, PoolActivity, PoolInfo, Snapshot
from functions.contract import ACK_AUTOSCALER, DECIDE_SCHEMA, DEFAULT_STRATEGY, POOL_LABEL

log = logging.getLogger(__name__)

INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
BLOCKING_EFFECTS = ("NoSchedule", "NoExecute")


@dataclass(frozen=True)
class EciSettings:
    """ECI as configured; it is offered only when the view also holds the virtual node."""

    enabled: bool = True
    price_per_vcpu_second: float = 0.000049  # CNY, China site general type (facts.md)
    price_per_gib_second: float = 0.00000613
    start_seconds: float = 30.0
    max_pods: int | None = None  # None: the virtual node's allocatable pods, else no cap
    max_pod_cpu: str = "64"
    max_pod_memory: str = "512Gi"


@dataclass(frozen=True)
class PolicySettings:
    strategy: str = DEFAULT_STRATEGY
    latency_budget_seconds: float = 120.0
    expected_run_seconds: float = 600.0
    max_new_nodes_per_decision: int = 100
    max_provision_seconds: float = 600.0


@dataclass(frozen=True)
class RequestSettings:
    """The configuration a request needs beyond what the cluster shows."""

    cluster_id: str
    region: str
    managed_pools: tuple[str, ...] | None = None  # None: every pool CS reports
    pool_prices: Mapping[str, float] = field(default_factory=dict)  # pool id -> CNY/hour
    instance_type_prices: Mapping[str, float] = field(default_factory=dict)
    pool_priorities: Mapping[str, int] = field(default_factory=dict)
    boot_seconds: float = 90.0
    pool_boot_seconds: Mapping[str, float] = field(default_factory=dict)
    eci: EciSettings = field(default_factory=EciSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    ack_scan_interval_seconds: float = 30.0  # a companion pool's ACK autoscaler scans this often


def build_request(
    snapshot: Snapshot,
    pools: list[PoolInfo] | tuple[PoolInfo, ...],
    activity: Mapping[str, PoolActivity],
    *,
    settings: RequestSettings,
    now: str,
    catalog: Mapping[str, InstanceType] = CATALOG,
    node_quota: int | None = None,
    entries: PodEntryCache | None = None,
    versions: Mapping[str, str] | None = None,
    anticipated: Sequence[PendingPod] = (),
) -> dict[str, Any]:
    """A decide/v1 request for the snapshot's pending pods over the managed pools; with
    `node_quota` (the cluster's, from DescribeUserQuota) new nodes are capped by it too.

    With `entries` (the agent keeps one across rounds) the pod entries of pods that did not change
    since the last round are reused, with their encoded JSON (`pod_entries.encode_request`);
    without, every entry is built anew. Both give equal requests. `versions` (the view's
    `versions`: uid -> a newer resourceVersion of a pod whose later events changed nothing the
    decision reads) overrides the pods' own. `anticipated` workers
    (agent.ingest.rayclusters) follow the pods, marked as such."""
    policy: dict[str, Any] = {
        "strategy": settings.policy.strategy,
        "latencyBudgetSeconds": settings.policy.latency_budget_seconds,
        "expectedRunSeconds": settings.policy.expected_run_seconds,
        "maxNewNodesPerDecision": settings.policy.max_new_nodes_per_decision,
        "maxProvisionSeconds": settings.policy.max_provision_seconds,
    }
    if node_quota is not None:
        policy["nodeQuota"] = {"limit": node_quota, "nodes": nodes_counted(snapshot, pools)}
    return {
        "schema": DECIDE_SCHEMA,
        "now": now,
        "cluster": {"id": settings.cluster_id, "region": settings.region},
        "pods": _pods(snapshot, entries, versions or {}, anticipated_json(anticipated)),
        "pools": pools_json(snapshot, pools, activity, settings=settings, catalog=catalog),
        "eci": eci_json(snapshot, settings.eci),
        "policy": policy,
    }


def _pods(
    snapshot: Snapshot,
    entries: PodEntryCache | None,
    versions: Mapping[str, str],
    extra: Iterable[dict[str, Any]],
) -> list[dict[str, Any]]:
    pods: list[dict[str, Any]] = (
        [pod_json(p, versions.get(p.uid)) for p in snapshot.pending]
        if entries is None
        else entries.entries(snapshot.pending, versions)
    )
    pods.extend(extra)  # a PodEntries keeps its cache: extras are encoded when the request is
    return pods


def nodes_counted(snapshot: Snapshot, pools: list[PoolInfo] | tuple[PoolInfo, ...]) -> int:
    """Nodes the node quota counts: every real node now, plus what the given pools were asked
    for and have not delivered yet (desired above their nodes). The ECI virtual node is left
    out: it is no ECS instance (assumed; ACK does not say whether it counts)."""
    real = [n for n in snapshot.nodes if not n.virtual]
    per_pool: dict[str, int] = {}
    for node in real:
        if node.pool_id:
            per_pool[node.pool_id] = per_pool.get(node.pool_id, 0) + 1
    coming = sum(max(0, pool.desired - per_pool.get(pool.pool_id, 0)) for pool in pools)
    return len(real) + coming


def pod_json(pod: PendingPod, resource_version: str | None = None) -> dict[str, Any]:
    """The pod's decide/v1 entry; `resource_version`, when given, is newer than the pod's."""
    return {
        "uid": pod.uid,
        "namespace": pod.namespace,
        "name": pod.name,
        # Not read by the decision; actuation guards its ECI patch with it (a JSON-patch `test`).
        "resourceVersion": resource_version or pod.resource_version,
        **shape_json(pod),
        "unschedulableSince": pod.unschedulable_since or None,
        "message": pod.message,
    }


def anticipated_json(workers: Sequence[PendingPod]) -> list[dict[str, Any]]:
    """Workers a RayCluster wants that have no pod yet, as pod entries with `"anticipated":
    true` (docs/decide-contract.md): decided like pods; actuation has no pod to patch or to
    record an Event about."""
    return [{**pod_json(w), "anticipated": True} for w in workers]


def pools_json(
    snapshot: Snapshot,
    pools: list[PoolInfo] | tuple[PoolInfo, ...],
    activity: Mapping[str, PoolActivity],
    *,
    settings: RequestSettings,
    catalog: Mapping[str, InstanceType] = CATALOG,
) -> list[dict[str, Any]]:
    managed = set(settings.managed_pools) if settings.managed_pools is not None else None
    nodes_by_pool: dict[str, list[NodeState]] = {}
    for node in snapshot.nodes:
        if node.pool_id and not node.virtual:
            nodes_by_pool.setdefault(node.pool_id, []).append(node)
    result = []
    for pool in sorted(pools, key=lambda p: p.pool_id):
        if managed is not None and pool.pool_id not in managed:
            continue
        built = _pool_json(
            pool,
            nodes_by_pool.get(pool.pool_id, []),
            activity.get(pool.pool_id, PoolActivity()),
            settings=settings,
            catalog=catalog,
        )
        if built is not None:
            result.append(built)
    return result


def _pool_json(
    pool: PoolInfo,
    nodes: list[NodeState],
    activity: PoolActivity,
    *,
    settings: RequestSettings,
    catalog: Mapping[str, InstanceType],
) -> dict[str, Any] | None:
    instance_type = pool.instance_types[0] if pool.instance_types else ""
    entry = catalog.get(instance_type)
    allocatable = _live_allocatable(nodes)
    if allocatable is None and entry is not None:
        allocatable = entry.allocatable()
    if allocatable is None:
        log.warning(
            "pool left out: no live node and instance type not in the catalog",
            extra={"pool": pool.pool_id, "instance_type": instance_type},
        )
        return None
    price = _price(pool, instance_type, entry, settings)
    if price is None:
        log.warning(
            "pool left out: no configured or catalog price",
            extra={"pool": pool.pool_id, "instance_type": instance_type},
        )
        return None
    max_size = max(pool.max_size, pool.min_size)
    labels = {**pool.labels, POOL_LABEL: pool.pool_id}
    if len(pool.instance_types) == 1:
        # ACK stamps the instance type on each node; only one type makes it a pool-wide fact.
        labels[INSTANCE_TYPE_LABEL] = instance_type
    entry_json: dict[str, Any] = {
        "id": pool.pool_id,
        "name": pool.name or pool.pool_id,
        "instanceType": instance_type,
        "allocatable": allocatable,
        "labels": labels,
        "taints": [dict(t) for t in pool.taints],
        "size": {
            "min": pool.min_size,
            "max": max_size,
            "desired": min(max(pool.desired, pool.min_size), max_size),
            "ready": sum(1 for n in nodes if n.ready),
        },
        "scalingSince": activity.scaling_since,
        "lastError": activity.last_error,
        "bootSeconds": settings.pool_boot_seconds.get(pool.pool_id, settings.boot_seconds),
        "pricePerHour": price,
        "priority": settings.pool_priorities.get(pool.pool_id, 0),
    }
    if pool.companion:
        # ACK's autoscaler owns the pool (its size is ACK's min/max_instances): the decision
        # may leave pods to it, never scale it (docs/decide-contract.md).
        entry_json[ACK_AUTOSCALER] = {"scanIntervalSeconds": settings.ack_scan_interval_seconds}
    return entry_json


def _live_allocatable(nodes: list[NodeState]) -> dict[str, str] | None:
    """A Ready node's allocatable is the truth about what a new node offers; a NotReady one will do."""
    for node in sorted(nodes, key=lambda n: (not n.ready, n.name)):
        if node.allocatable:
            return dict(node.allocatable)
    return None


def _price(
    pool: PoolInfo, instance_type: str, entry: InstanceType | None, settings: RequestSettings
) -> float | None:
    if pool.pool_id in settings.pool_prices:
        return settings.pool_prices[pool.pool_id]
    if instance_type in settings.instance_type_prices:
        return settings.instance_type_prices[instance_type]
    return entry.price_per_hour if entry is not None else None


def eci_json(snapshot: Snapshot, settings: EciSettings) -> dict[str, Any]:
    virtual = next((n for n in snapshot.nodes if n.virtual), None)
    max_pods = settings.max_pods
    if max_pods is None and virtual is not None and virtual.allocatable.get("pods", "").isdigit():
        max_pods = int(virtual.allocatable["pods"])
    block: dict[str, Any] = {
        "enabled": settings.enabled and virtual is not None,
        "pricePerVcpuSecond": settings.price_per_vcpu_second,
        "pricePerGibSecond": settings.price_per_gib_second,
        "startSeconds": settings.start_seconds,
        "maxPods": max_pods,
        "runningPods": snapshot.eci_running_pods,
        "maxPodCpu": settings.max_pod_cpu,
        "maxPodMemory": settings.max_pod_memory,
    }
    if virtual is not None:
        block["labels"] = dict(virtual.labels)
        block["taints"] = [dict(t) for t in virtual.taints if t.get("effect") in BLOCKING_EFFECTS]
    return block
