"""The validated decide/v1 request as frozen values: pod groups, pools, ECI and policy.

Pods are not materialised one by one: pods with the same decision-relevant
shape (requests, nodeSelector, affinity, tolerations, ECI traits, placement
and eci-use-specs annotations) form one `PodGroup` holding their positions in
the request, so every later step costs per group, not per pod.

Plain classes with `__slots__`, not dataclasses: `dataclasses` (and the `inspect` it imports)
is most of the handler's cold import. They are values all the same: nothing mutates them.
"""

from __future__ import annotations

from collections.abc import Mapping

# Only the type checker reads typing (annotations are strings): ~10 ms less cold start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from functions.eci_specs import SpecTable


class PodShape:
    """What a decision needs to know about a pod, shared by every pod of a group."""

    __slots__ = (
        "affinity",
        "eci_use_specs",
        "host_network",
        "key",
        "node_selector",
        "placement",
        "privileged",
        "requests",
        "tolerations",
        "volume_types",
    )

    def __init__(
        self,
        requests: Mapping[str, int],
        node_selector: Mapping[str, str],
        affinity: Mapping[str, Any] | None,
        tolerations: tuple[Mapping[str, Any], ...],
        host_network: bool,
        volume_types: tuple[str, ...],
        privileged: bool,
        placement: str,
        eci_use_specs: str,
        key: str,
    ) -> None:
        self.requests = requests
        self.node_selector = node_selector
        self.affinity = affinity
        self.tolerations = tolerations
        self.host_network = host_network
        self.volume_types = volume_types
        self.privileged = privileged
        # ecs | eci | auto, or the unknown value the user wrote (reported as unplaceable).
        self.placement = placement
        # The pod's k8s.aliyun.com/eci-use-specs annotation ("" when absent): what ECI bills it as.
        self.eci_use_specs = eci_use_specs
        # Canonical JSON of the fields above: identity for grouping, ordering and decisionId.
        self.key = key


class PodGroup:
    __slots__ = ("indices", "shape")

    def __init__(self, shape: PodShape, indices: tuple[int, ...]) -> None:
        self.shape = shape
        # Positions of the group's pods in the request's `pods`, ascending.
        self.indices = indices


class Pool:
    __slots__ = (
        "allocatable",
        "boot_seconds",
        "desired",
        "id",
        "instance_type",
        "labels",
        "max_size",
        "min_size",
        "name",
        "price_per_hour",
        "priority",
        "ready",
        "scan_seconds",
        "skipped",
        "start_seconds",
        "taints",
    )

    def __init__(
        self,
        id: str,
        name: str,
        instance_type: str,
        allocatable: Mapping[str, int],
        labels: Mapping[str, str],
        taints: tuple[Mapping[str, Any], ...],
        min_size: int,
        max_size: int,
        desired: int,
        ready: int,
        skipped: str,
        boot_seconds: float,
        price_per_hour: float,
        priority: int,
        scan_seconds: float | None = None,
    ) -> None:
        self.id = id
        self.name = name
        self.instance_type = instance_type
        self.allocatable = allocatable
        self.labels = labels
        self.taints = taints
        self.min_size = min_size
        self.max_size = max_size
        self.desired = desired
        self.ready = ready
        # Why the pool is skipped in this decision (provisioning timed out, last error), or "".
        self.skipped = skipped
        self.boot_seconds = boot_seconds
        self.price_per_hour = price_per_hour
        self.priority = priority
        # A companion pool (`ackAutoscaler` in the request): ACK's cluster-autoscaler owns its
        # desired size and notices a pending pod only at its next scan, this many seconds
        # apart. None: the agent manages the pool.
        self.scan_seconds = scan_seconds
        # How long a new node of the pool takes to take pods: ACK's scan first on a companion.
        self.start_seconds = boot_seconds if scan_seconds is None else scan_seconds + boot_seconds

    @property
    def companion(self) -> bool:
        """Whether ACK's autoscaler owns the pool: the decision never scales it."""
        return self.scan_seconds is not None

    @property
    def upcoming(self) -> int:
        """Nodes asked for but not Ready yet; not counted on when the pool is skipped."""
        if self.skipped:
            return 0
        return max(0, self.desired - self.ready)


class Eci:
    __slots__ = (
        "enabled",
        "free_slots",
        "labels",
        "max_pod_cpu",
        "max_pod_memory",
        "price_per_gib_second",
        "price_per_vcpu_second",
        "specs",
        "start_seconds",
        "taints",
    )

    def __init__(
        self,
        enabled: bool,
        labels: Mapping[str, str],
        taints: tuple[Mapping[str, Any], ...],
        price_per_vcpu_second: float,
        price_per_gib_second: float,
        start_seconds: float,
        free_slots: int | None,
        max_pod_cpu: int,
        max_pod_memory: int,
        specs: SpecTable,
    ) -> None:
        self.enabled = enabled
        self.labels = labels
        self.taints = taints
        self.price_per_vcpu_second = price_per_vcpu_second
        self.price_per_gib_second = price_per_gib_second
        self.start_seconds = start_seconds
        # Pods ECI still accepts (maxPods - runningPods, never below 0); None means no cap.
        self.free_slots = free_slots
        self.max_pod_cpu = max_pod_cpu
        self.max_pod_memory = max_pod_memory
        # The specs ECI offers in the cluster's region, which pods are rounded up to and billed as.
        self.specs = specs


class Policy:
    __slots__ = (
        "cluster_nodes",
        "expected_run_seconds",
        "latency_budget_seconds",
        "max_new_nodes_per_decision",
        "max_provision_seconds",
        "node_quota",
        "strategy",
    )

    def __init__(
        self,
        strategy: str,
        latency_budget_seconds: float,
        expected_run_seconds: float,
        max_new_nodes_per_decision: int,
        max_provision_seconds: float,
        node_quota: int | None = None,
        cluster_nodes: int = 0,
    ) -> None:
        self.strategy = strategy
        self.latency_budget_seconds = latency_budget_seconds
        self.expected_run_seconds = expected_run_seconds
        self.max_new_nodes_per_decision = max_new_nodes_per_decision
        self.max_provision_seconds = max_provision_seconds
        # The cluster's node quota (ACK DescribeUserQuota `node_quota`) and the nodes counted
        # against it now; None when the request does not say.
        self.node_quota = node_quota
        self.cluster_nodes = cluster_nodes

    @property
    def new_node_budget(self) -> int:
        """Nodes this decision may add: the per-decision cap, or what the quota leaves."""
        if self.node_quota is None:
            return self.max_new_nodes_per_decision
        return min(self.max_new_nodes_per_decision, max(0, self.node_quota - self.cluster_nodes))

    @property
    def budget_limit(self) -> str:
        """Which of the two caps binds, in words for reasons."""
        if self.node_quota is not None and self.new_node_budget < self.max_new_nodes_per_decision:
            return f"cluster node quota {self.node_quota} reached ({self.cluster_nodes} nodes)"
        return f"maxNewNodesPerDecision {self.max_new_nodes_per_decision} reached"


class Request:
    __slots__ = ("eci", "fingerprint", "groups", "max_decision_seconds", "policy", "pools", "uids")

    def __init__(
        self,
        uids: tuple[str, ...],
        groups: tuple[PodGroup, ...],
        pools: tuple[Pool, ...],
        eci: Eci,
        policy: Policy,
        fingerprint: str,
        max_decision_seconds: float | None = None,
    ) -> None:
        self.uids = uids
        self.groups = groups
        self.pools = pools
        self.eci = eci
        self.policy = policy
        # Canonical JSON of everything that decides the reply except `now` itself.
        self.fingerprint = fingerprint
        # policy.maxDecisionSeconds: not content, so not in the fingerprint.
        self.max_decision_seconds = max_decision_seconds
