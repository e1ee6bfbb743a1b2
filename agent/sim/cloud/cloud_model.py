"""The seam between the cloud API emulators (HTTP façades) and the simulated node pools behind them.

The CS emulator turns wire requests into calls on a `NodePoolService` and its values into the
response shapes of the ACK CS API; the node pool model implements the service over the simulated
cluster. Neither side knows the other's internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class CloudError(Exception):
    """A refusal the emulator returns as the service would: HTTP status plus Alibaba error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class PoolView:
    """One node pool as DescribeClusterNodePools reports it."""

    pool_id: str
    name: str
    instance_types: tuple[str, ...]
    desired: int
    min_size: int
    max_size: int
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[dict[str, str], ...] = ()
    auto_scaling_enabled: bool = False
    total_nodes: int = 0
    healthy_nodes: int = 0  # Ready
    serving_nodes: int = 0
    initial_nodes: int = 0  # created, still booting
    failed_nodes: int = 0
    removing_nodes: int = 0
    zone: str = ""
    vswitch_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class NodeView:
    """One ECS instance of a pool as DescribeClusterNodes reports it."""

    instance_id: str
    node_name: str
    pool_id: str
    instance_type: str
    ip: str
    state: str  # "initial" | "running" | "removing" | "failed"
    node_status: str  # "Ready" | "NotReady" | "Unknown"
    creation_time: str  # RFC3339


@dataclass(frozen=True)
class TaskView:
    """An asynchronous CS task as DescribeTaskInfo reports it."""

    task_id: str
    task_type: str
    state: str  # "running" | "success" | "fail"
    created: str
    updated: str
    error: str | None = None


# ModifyClusterNodePool adds at most 500 nodes per call (its API reference).
MAX_NODES_ADDED_PER_CALL = 500


def check_desired(pool: PoolView, desired: int, *, cluster_nodes: int, node_quota: int) -> None:
    """Refuse a new desired size as ACK does (raises `CloudError`).

    - Outside auto_scaling min/max_instances, only while ACK's autoscaling is on: the CS API
      documents both as taking effect only when `enable=true`.
    - More than 500 nodes added in one call (ModifyClusterNodePool reference).
    - Beyond the cluster's node quota (DescribeUserQuota `node_quota`).
    ACK documents no error code for any of the three, so each is the generic InvalidParameter
    with a message saying what was exceeded (strict model; the real codes are unknown).
    """
    if pool.auto_scaling_enabled and not pool.min_size <= desired <= pool.max_size:
        raise CloudError(
            400,
            "InvalidParameter",
            f"desired_size {desired} is outside [min_instances {pool.min_size}, "
            f"max_instances {pool.max_size}] of nodepool {pool.pool_id}.",
        )
    added = desired - pool.desired
    if added > MAX_NODES_ADDED_PER_CALL:
        raise CloudError(
            400,
            "InvalidParameter",
            f"at most {MAX_NODES_ADDED_PER_CALL} nodes can be added in one call, "
            f"asked for {added}.",
        )
    if added > 0 and cluster_nodes + added > node_quota:
        raise CloudError(
            400,
            "InvalidParameter",
            f"the cluster's node quota (node_quota {node_quota}) would be exceeded: "
            f"{cluster_nodes} nodes and {added} more asked for nodepool {pool.pool_id}.",
        )


class NodePoolService(Protocol):
    """What the CS emulator needs from the simulated cluster. Methods raise `CloudError`."""

    cluster_id: str
    region_id: str
    node_quota: int  # DescribeUserQuota node_quota

    def cluster_nodes(self) -> int:
        """Nodes counted against the quota: the cluster's, plus desired ones not yet there."""
        ...

    def describe_pools(self) -> list[PoolView]: ...

    def describe_pool(self, pool_id: str) -> PoolView: ...

    def set_desired(self, pool_id: str, desired: int) -> TaskView:
        """ModifyClusterNodePool scaling_group.desired_size: absolute, idempotent."""
        ...

    def scale_by(self, pool_id: str, count: int) -> TaskView:
        """ScaleClusterNodePool count: adds `count` nodes (not idempotent)."""
        ...

    def remove_nodes(
        self, pool_id: str, instance_ids: list[str], *, drain: bool, release: bool
    ) -> TaskView: ...

    def describe_nodes(self, pool_id: str | None = None) -> list[NodeView]: ...

    def describe_task(self, task_id: str) -> TaskView: ...
