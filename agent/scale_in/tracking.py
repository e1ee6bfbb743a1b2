"""Scale-in bookkeeping and the scale-in/v1 request: since when each node has been unneeded,
when each pool last grew, and the request that carries both to the decision.

Everything here is in memory on purpose: after a restart every timer starts again, so a node
must look unneeded for a full `scaleDownUnneededSeconds` under the new process before it can
go — the safe side. Nothing here reads a clock or a client; `now` is always an argument.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from agent.catalog import CATALOG, InstanceType
from agent.decide.request_builder import RequestSettings
from agent.ingest.node_pods import BoundPod, NodeFacts, epoch_or_none
from agent.model import NodeState, PoolActivity, PoolInfo
from functions.contract import SCALE_IN_SCHEMA
from functions.errors import DecisionError
from functions.quantity import parse_quantity

log = logging.getLogger(__name__)

# Resources that say nothing about how busy a node is (the decision's rule too).
NOT_LOAD = frozenset({"pods", "ephemeral-storage"})


@dataclass(frozen=True)
class ScaleInPolicy:
    """The scale-in/v1 policy block; defaults are the contract's."""

    unneeded_seconds: float = 60.0
    utilization_threshold: float = 0.5
    delay_after_add_seconds: float = 120.0
    max_nodes_per_decision: int = 10
    drain_non_empty: bool = False
    max_provision_seconds: float = 600.0
    delay_after_failure_seconds: float = 180.0

    def to_json(self) -> dict[str, Any]:
        return {
            "scaleDownUnneededSeconds": self.unneeded_seconds,
            "scaleDownUtilizationThreshold": self.utilization_threshold,
            "scaleDownDelayAfterAddSeconds": self.delay_after_add_seconds,
            "maxNodesPerDecision": self.max_nodes_per_decision,
            "drainNonEmpty": self.drain_non_empty,
            "maxProvisionSeconds": self.max_provision_seconds,
            "scaleDownDelayAfterFailureSeconds": self.delay_after_failure_seconds,
        }


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _milli(quantity: object) -> int | None:
    try:
        return parse_quantity(quantity)
    except DecisionError:
        return None


def utilization(pods: Iterable[BoundPod], allocatable: Mapping[str, str]) -> float:
    """Share of the node its load requests: the largest ratio over its resources (pods and
    ephemeral-storage aside); DaemonSet pods are not load. A request the node does not list,
    or cannot be parsed, counts as full — never as idle."""
    used: dict[str, int] = {}
    for pod in pods:
        if not pod.is_load:
            continue
        for name, quantity in pod.requests.items():
            amount = _milli(quantity)
            if amount is None:
                return 1.0
            used[name] = used.get(name, 0) + amount
    highest = 0.0
    for name, amount in used.items():
        if name in NOT_LOAD or amount <= 0:
            continue
        capacity = _milli(allocatable.get(name, 0)) or 0
        highest = max(highest, amount / capacity if capacity > 0 else 1.0)
    return highest


class UnneededTracker:
    """Per node, since when it has been empty (no load pod) and since when under the utilization
    threshold. `observe` is called on every change of a node's pods and once per round for every
    node; a timer starts at the first observation of the state and is cleared by any other."""

    def __init__(self, *, threshold: float) -> None:
        self._threshold = threshold
        self._empty_since: dict[str, float] = {}
        self._under_since: dict[str, float] = {}

    def observe(
        self, name: str, pods: Sequence[BoundPod], allocatable: Mapping[str, str], *, now: float
    ) -> None:
        load = [pod for pod in pods if pod.is_load]
        if load:
            self._empty_since.pop(name, None)
        else:
            self._empty_since.setdefault(name, now)
        if utilization(load, allocatable) < self._threshold:
            self._under_since.setdefault(name, now)
        else:
            self._under_since.pop(name, None)

    def resume(
        self, name: str, *, empty_since: float | None, underutilized_since: float | None
    ) -> None:
        """Earlier starts of the timers of `name`, kept elsewhere by a caller that does not live
        between rounds (the reconcile function): each moves back only while the node is still
        in that state now — an observation since has cleared it otherwise."""
        for table, since in (
            (self._empty_since, empty_since),
            (self._under_since, underutilized_since),
        ):
            if since is not None and name in table:
                table[name] = min(table[name], since)

    def forget(self, name: str) -> None:
        self._empty_since.pop(name, None)
        self._under_since.pop(name, None)

    def keep_only(self, names: Iterable[str]) -> None:
        alive = set(names)
        for table in (self._empty_since, self._under_since):
            for name in [n for n in table if n not in alive]:
                del table[name]

    def empty_since(self, name: str) -> float | None:
        return self._empty_since.get(name)

    def underutilized_since(self, name: str) -> float | None:
        return self._under_since.get(name)


class ScaleUpLog:
    """When each pool's desired size was last raised — by this agent's writes, or seen rising in
    a pool read (another writer). Fed back as `lastScaleUpAt`, the decision's cool-down."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._desired: dict[str, int] = {}

    def raised(self, pool_id: str, *, at: float) -> None:
        self._last[pool_id] = max(at, self._last.get(pool_id, at))

    def observe_pools(self, pools: Iterable[PoolInfo], *, now: float) -> None:
        for pool in pools:
            before = self._desired.get(pool.pool_id)
            if before is not None and pool.desired > before:
                self.raised(pool.pool_id, at=now)
            self._desired[pool.pool_id] = pool.desired

    def last(self, pool_id: str, activity: PoolActivity | None = None) -> float | None:
        """The latest known raise, counting actuation's `scalingSince` for a raise in flight."""
        times = [
            t
            for t in (
                self._last.get(pool_id),
                epoch_or_none(activity.scaling_since or "") if activity else None,
            )
            if t is not None
        ]
        return max(times) if times else None


# --- the request --------------------------------------------------------------------------------


def _pool_price(
    pool: PoolInfo, settings: RequestSettings, catalog: Mapping[str, InstanceType]
) -> float | None:
    instance_type = pool.instance_types[0] if pool.instance_types else ""
    if pool.pool_id in settings.pool_prices:
        return settings.pool_prices[pool.pool_id]
    if instance_type in settings.instance_type_prices:
        return settings.instance_type_prices[instance_type]
    entry = catalog.get(instance_type)
    return entry.price_per_hour if entry is not None else None


def pod_json(pod: BoundPod) -> dict[str, Any]:
    return {
        "uid": pod.uid,
        "namespace": pod.namespace,
        "name": pod.name,
        "ownerKind": pod.owner_kind,
        "rayNodeType": pod.ray_node_type,
        "phase": pod.phase,
        "pdbBlocked": pod.pinned,
        "requests": dict(pod.requests),
        "nodeSelector": dict(pod.node_selector),
        "affinity": dict(pod.affinity),
        "tolerations": [dict(t) for t in pod.tolerations],
    }


def build_scale_in_request(
    nodes: Sequence[NodeState],
    pools: Sequence[PoolInfo],
    *,
    facts: Mapping[str, NodeFacts],
    pods_on: Callable[[str], Sequence[BoundPod]],
    tracker: UnneededTracker,
    last_scale_up: Callable[[str], float | None],
    settings: RequestSettings,
    policy: ScaleInPolicy,
    now: float,
    catalog: Mapping[str, InstanceType] = CATALOG,
    leaving: Collection[str] = (),
    failed_at: Callable[[str], float | None] = lambda _name: None,
) -> dict[str, Any]:
    """A scale-in/v1 request over the managed pools and their nodes. Companion pools (ACK's
    autoscaler owns them) are left out, so their nodes are unmanaged ones (`poolId` null), which
    no decision may remove. Nodes of other pools (and
    nodes without a pool) ride along as destinations only when non-empty nodes may be drained;
    the ECI virtual node never does, nor do the nodes a running removal takes (`leaving`).
    `failed_at` says when a node's last removal failed (the decision backs off from it)."""
    managed = set(settings.managed_pools) if settings.managed_pools is not None else None
    pools_json: list[dict[str, Any]] = []
    for pool in sorted(pools, key=lambda p: p.pool_id):
        if (managed is not None and pool.pool_id not in managed) or pool.companion:
            continue
        price = _pool_price(pool, settings, catalog)
        if price is None:
            log.warning(
                "pool left out of scale-in: no configured or catalog price",
                extra={"pool": pool.pool_id},
            )
            continue
        last = last_scale_up(pool.pool_id)
        pools_json.append(
            {
                "id": pool.pool_id,
                "name": pool.name or pool.pool_id,
                "size": {"min": pool.min_size, "desired": max(pool.desired, pool.min_size)},
                "pricePerHour": price,
                "lastScaleUpAt": None if last is None else rfc3339(last),
            }
        )
    in_request = {p["id"] for p in pools_json}
    nodes_json: list[dict[str, Any]] = []
    for node in nodes:
        if node.virtual or node.name in leaving:
            continue
        fact = facts.get(node.name)
        pool_id = node.pool_id if node.pool_id in in_request else None
        if pool_id is not None and (fact is None or not fact.instance_id):
            pool_id = None  # without its ECS instance id a node cannot be removed: never offer it
        if pool_id is None and not policy.drain_non_empty:
            continue
        created = fact.created_at if fact is not None and fact.created_at is not None else now
        empty = tracker.empty_since(node.name)
        under = tracker.underutilized_since(node.name)
        failed = failed_at(node.name)
        nodes_json.append(
            {
                "name": node.name,
                "poolId": pool_id,
                "instanceId": fact.instance_id if fact is not None else None,
                "ready": node.ready,
                "everReady": True if fact is None else fact.ever_ready,
                "createdAt": rfc3339(created),
                "unschedulable": bool(fact and fact.unschedulable),
                "allocatable": dict(node.allocatable),
                "labels": dict(node.labels),
                "taints": [dict(t) for t in node.taints],
                "pods": [pod_json(p) for p in pods_on(node.name)],
                "emptySince": None if empty is None else rfc3339(empty),
                "underutilizedSince": None if under is None else rfc3339(under),
                "scaleDownDisabled": bool(fact and fact.scale_down_disabled),
                "lastRemovalFailedAt": None if failed is None else rfc3339(failed),
            }
        )
    return {
        "schema": SCALE_IN_SCHEMA,
        "now": rfc3339(now),
        "cluster": {"id": settings.cluster_id, "region": settings.region},
        "pools": pools_json,
        "nodes": nodes_json,
        "policy": policy.to_json(),
    }
