"""The validated decide/v1 request as frozen values: pod groups, pools, ECI and policy.

Pods are not materialised one by one: pods with the same decision-relevant
shape (requests, nodeSelector, affinity, tolerations, ECI traits, placement
annotation) form one `PodGroup` holding their positions in the request, so every
later step costs per group, not per pod.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Only the type checker reads typing (annotations are strings): ~10 ms less cold start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


@dataclass(frozen=True)
class PodShape:
    """What a decision needs to know about a pod, shared by every pod of a group."""

    requests: Mapping[str, int]
    node_selector: Mapping[str, str]
    affinity: Mapping[str, Any] | None
    tolerations: tuple[Mapping[str, Any], ...]
    host_network: bool
    volume_types: tuple[str, ...]
    privileged: bool
    # ecs | eci | auto, or the unknown value the user wrote (reported as unplaceable).
    placement: str
    # Canonical JSON of the fields above: identity for grouping, ordering and decisionId.
    key: str


@dataclass(frozen=True)
class PodGroup:
    shape: PodShape
    # Positions of the group's pods in the request's `pods`, ascending.
    indices: tuple[int, ...]


@dataclass(frozen=True)
class Pool:
    id: str
    name: str
    instance_type: str
    allocatable: Mapping[str, int]
    labels: Mapping[str, str]
    taints: tuple[Mapping[str, Any], ...]
    min_size: int
    max_size: int
    desired: int
    ready: int
    # Why the pool is skipped in this decision (provisioning timed out, last error), or "".
    skipped: str
    boot_seconds: float
    price_per_hour: float
    priority: int

    @property
    def upcoming(self) -> int:
        """Nodes asked for but not Ready yet; not counted on when the pool is skipped."""
        if self.skipped:
            return 0
        return max(0, self.desired - self.ready)


@dataclass(frozen=True)
class Eci:
    enabled: bool
    labels: Mapping[str, str]
    taints: tuple[Mapping[str, Any], ...]
    price_per_vcpu_second: float
    price_per_gib_second: float
    start_seconds: float
    # Pods ECI still accepts (maxPods - runningPods, never below 0); None means no cap.
    free_slots: int | None
    max_pod_cpu: int
    max_pod_memory: int


@dataclass(frozen=True)
class Policy:
    strategy: str
    latency_budget_seconds: float
    expected_run_seconds: float
    max_new_nodes_per_decision: int
    max_provision_seconds: float


@dataclass(frozen=True)
class Request:
    uids: tuple[str, ...]
    groups: tuple[PodGroup, ...]
    pools: tuple[Pool, ...]
    eci: Eci
    policy: Policy
    # Canonical JSON of everything that decides the reply except `now` itself.
    fingerprint: str
