"""The agent's values: what the cluster view hands to the decision step, and what actuation
remembers between cycles. Raw Kubernetes quantities stay strings here; the decision core parses
them (one parser, in functions/)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class PendingPod:
    """An unschedulable pod as the view last saw it (PodScheduled=False, reason Unschedulable)."""

    uid: str
    namespace: str
    name: str
    resource_version: str
    labels: dict[str, str]
    annotations: dict[str, str]
    requests: dict[str, str]  # effective request: max(sum of containers, largest init container)
    node_selector: dict[str, str]
    affinity: dict[str, Any]
    tolerations: tuple[dict[str, Any], ...]
    host_network: bool
    volume_types: tuple[str, ...]  # "emptyDir", "hostPath", "configMap", ...
    privileged: bool
    unschedulable_since: str  # RFC3339, the condition's lastTransitionTime
    message: str  # the scheduler's explanation


@dataclass(frozen=True, slots=True)
class NodeState:
    """A node as the view last saw it."""

    name: str
    pool_id: (
        str | None
    )  # label alibabacloud.com/nodepool-id; None for the ECI virtual node and others
    ready: bool
    virtual: bool  # the ECI virtual node (label type=virtual-kubelet)
    allocatable: dict[str, str]
    labels: dict[str, str]
    taints: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One consistent picture of what needs capacity, taken when a batch window closes."""

    pending: tuple[PendingPod, ...]
    nodes: tuple[NodeState, ...]
    eci_running_pods: int  # pods bound to the virtual node and not finished


@dataclass(frozen=True, slots=True)
class PoolInfo:
    """A node pool as DescribeClusterNodePools reports it (re-read right before any write).

    `min_size`/`max_size` are the bounds the agent scales within: for a pool in the agent's
    managed list, the configured ones; otherwise ACK's own `auto_scaling` min/max, which ACK
    applies only while its auto scaling is on (`ack_autoscaling`), so 0/0 when it is off.
    A `companion` pool is one ACK's own autoscaler owns (auto scaling on, and not managed anyway
    through `allow_ack_autoscaled_pools`): its bounds are ACK's and the agent never writes it.
    """

    pool_id: str
    name: str
    instance_types: tuple[str, ...]
    desired: int
    min_size: int
    max_size: int
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[dict[str, Any], ...] = ()
    total_nodes: int = 0
    ready_nodes: int = 0
    ack_autoscaling: bool = False  # auto_scaling.enable: ACK's own node autoscaling owns the pool
    companion: bool = False  # ACK's autoscaler sets desired_size: no write, no removal by the agent


@dataclass(frozen=True, slots=True)
class PoolBounds:
    """A managed pool and the size range the agent keeps it in (`--nodes=min:max:id` style)."""

    pool_id: str
    min_size: int
    max_size: int


@dataclass(frozen=True, slots=True)
class PoolActivity:
    """What actuation remembers about a pool between cycles: fed back as scalingSince/lastError."""

    scaling_since: str | None = None  # RFC3339: when desired was last raised and not yet met
    last_error: str | None = None  # the CS task's or API's failure, until the pool recovers
    task_id: str | None = None  # the CS task of the last raise, polled for its outcome
    # When that task was seen failed (epoch seconds; the pool keeps last_error for a backoff from
    # then on), and whether its unmet part was given back (desired lowered) since.
    failed_at: float | None = None
    given_back: bool = False
