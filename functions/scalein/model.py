"""The validated scale-in/v1 request as frozen values: managed pools, nodes with their pods, policy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Only the type checker reads typing (annotations are strings): ~10 ms less cold start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

OWNER_KINDS = ("ReplicaSet", "Job", "DaemonSet", "StatefulSet", "RayCluster", "none")
RAY_NODE_TYPES = ("head", "worker")
PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
# A finished pod holds no resources and has nothing to move.
FINISHED_PHASES = frozenset({"Succeeded", "Failed"})


@dataclass(frozen=True)
class NodePod:
    """A pod bound to a node, with what decides whether it may be evicted and where it may go."""

    uid: str
    namespace: str
    name: str
    requests: Mapping[str, int]
    owner_kind: str
    ray_node_type: str | None
    pdb_blocked: bool
    node_selector: Mapping[str, str]
    affinity: Mapping[str, Any] | None
    tolerations: tuple[Mapping[str, Any], ...]
    phase: str
    # Canonical JSON of requests, nodeSelector, affinity and tolerations: pods with the same
    # key fit the same nodes, so placement work is shared between them.
    fit_key: str
    # The same without requests: pods with the same key may go to the same nodes (labels and
    # taints allow it), whether or not there is room.
    place_key: str

    @property
    def label(self) -> str:
        """namespace/name as people know the pod (the uid when the request has no name)."""
        return f"{self.namespace}/{self.name}" if self.name else self.uid

    @property
    def active(self) -> bool:
        """Holds resources on its node (not Succeeded or Failed)."""
        return self.phase not in FINISHED_PHASES

    @property
    def movable(self) -> bool:
        """Load that a drain evicts: active and not a DaemonSet pod (drain leaves those)."""
        return self.active and self.owner_kind != "DaemonSet"


@dataclass(frozen=True)
class Node:
    name: str
    # None: the node belongs to no managed pool; it is never removed but may take moved pods.
    pool_id: str | None
    instance_id: str
    ready: bool
    # False only when the agent knows the node has never been Ready since it registered.
    ever_ready: bool
    created_at: float
    unschedulable: bool
    allocatable: Mapping[str, int]
    labels: Mapping[str, str]
    taints: tuple[Mapping[str, Any], ...]
    # Sorted by uid, so the decision does not depend on the order the agent listed them.
    pods: tuple[NodePod, ...]
    empty_since: float | None
    underutilized_since: float | None
    # cluster-autoscaler's scale-down-disabled annotation: never removed.
    scale_down_disabled: bool = False
    # When the agent last saw a removal of this node fail (its drain did not finish).
    removal_failed_at: float | None = None


@dataclass(frozen=True)
class ManagedPool:
    id: str
    name: str
    min_size: int
    desired: int
    price_per_hour: float
    last_scale_up_at: float | None


@dataclass(frozen=True)
class ScaleInPolicy:
    unneeded_seconds: float
    utilization_threshold: float
    delay_after_add_seconds: float
    max_nodes_per_decision: int
    drain_non_empty: bool
    max_provision_seconds: float
    # After a failed removal the node stays this long (cluster-autoscaler:
    # --scale-down-delay-after-failure, 3 minutes).
    delay_after_failure_seconds: float = 180.0


@dataclass(frozen=True)
class ScaleInRequest:
    now: float
    pools: Mapping[str, ManagedPool]
    # Sorted by name.
    nodes: tuple[Node, ...]
    policy: ScaleInPolicy
    # Canonical JSON of everything that decides the reply except `now` itself.
    fingerprint: str
    # policy.maxDecisionSeconds: not content, so not in the fingerprint.
    max_decision_seconds: float | None = None
