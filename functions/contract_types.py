"""The decide/v1 and scale-in/v1 requests, replies and error object as TypedDicts.

Field names and meanings: docs/decide-contract.md, docs/scale-in-contract.md; the names the
fields hold (schemas, strategies, labels, taints) are `functions.contract`'s. This module loads
`typing`, so nothing on the Function Compute handler's import path imports it at run time:
modules of `functions` import it under `if TYPE_CHECKING:` only; the agent may import it freely.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypedDict

# --- shared -------------------------------------------------------------------------------
# Quantities are Kubernetes quantity strings ("500m", "2Gi") or JSON numbers.
Quantity = str | int | float
Resources = Mapping[str, Quantity]


class Taint(TypedDict):
    key: str
    value: str
    effect: str


class Toleration(TypedDict, total=False):
    key: str
    operator: str
    value: str
    effect: str


class ErrorDetail(TypedDict):
    code: str  # InvalidRequest | RequestTooLarge
    message: str
    path: str


class ErrorReply(TypedDict):
    error: ErrorDetail


# --- decide/v1 request --------------------------------------------------------------------


class _PodRequired(TypedDict):
    uid: str


class PendingPod(_PodRequired, total=False):
    namespace: str
    name: str
    labels: dict[str, str]
    annotations: dict[str, str]  # PLACEMENT_ANNOTATION: ecs | eci | auto
    requests: Resources
    nodeSelector: dict[str, str]
    affinity: dict[str, Any]  # spec.affinity as Kubernetes writes it
    tolerations: list[Toleration]
    hostNetwork: bool
    volumeTypes: list[str]
    privileged: bool
    unschedulableSince: str | None
    message: str | None
    # Added by the agent, ignored by the decision: actuation guards its ECI patch with it.
    resourceVersion: str
    # True: a worker a RayCluster wants that has no pod yet (docs/decide-contract.md); decided
    # like a pod, nothing to patch or to record an Event about.
    anticipated: bool


class _PoolSizeRequired(TypedDict):
    max: int


class PoolSize(_PoolSizeRequired, total=False):
    min: int
    desired: int
    ready: int


class _PoolRequired(TypedDict):
    id: str
    allocatable: Resources
    size: PoolSize
    pricePerHour: float


class AckAutoscaler(TypedDict, total=False):
    scanIntervalSeconds: float  # cluster-autoscaler's scan interval; default 30


class Pool(_PoolRequired, total=False):
    name: str
    instanceType: str
    labels: dict[str, str]  # POOL_LABEL: the pool id
    taints: list[Taint]
    scalingSince: str | None
    lastError: str | None
    bootSeconds: float
    priority: int
    # Present: ACK's own autoscaler owns the pool (a companion pool): size.min/max are its
    # min/max_instances, and the decision never scales it (docs/decide-contract.md).
    ackAutoscaler: AckAutoscaler


class Eci(TypedDict, total=False):
    enabled: bool
    labels: dict[str, str]  # default ECI_NODE_LABELS
    taints: list[Taint]  # default [ECI_TAINT]
    pricePerVcpuSecond: float
    pricePerGibSecond: float
    startSeconds: float
    maxPods: int | None
    runningPods: int
    maxPodCpu: Quantity
    maxPodMemory: Quantity


class NodeQuota(TypedDict, total=False):
    limit: int  # ACK DescribeUserQuota node_quota
    nodes: int  # nodes counted against it now (existing, and asked for but not yet there)


class Policy(TypedDict, total=False):
    strategy: str  # one of STRATEGIES
    latencyBudgetSeconds: float
    expectedRunSeconds: float
    maxNewNodesPerDecision: int
    maxProvisionSeconds: float
    nodeQuota: NodeQuota
    maxDecisionSeconds: float  # the decision's own time limit; past it, pods are deferred


class _DecideRequestRequired(TypedDict):
    schema: Literal["decide/v1"]
    now: str  # RFC 3339
    pods: list[PendingPod]
    pools: list[Pool]


class DecideRequest(_DecideRequestRequired, total=False):
    cluster: dict[str, Any]
    eci: Eci
    policy: Policy


# --- decide/v1 reply ----------------------------------------------------------------------


class ScalePoolAction(TypedDict):
    kind: Literal["scale-pool"]
    poolId: str
    fromDesired: int
    toDesired: int  # absolute, never above size.max
    pods: list[str]
    reason: str


class PlaceOnEciAction(TypedDict):
    kind: Literal["place-on-eci"]
    pods: list[str]
    reason: str


Action = ScalePoolAction | PlaceOnEciAction


class _CoveredRequired(TypedDict):
    pod: str
    poolId: str


class Covered(_CoveredRequired, total=False):
    # Only on pods left for ACK's autoscaler on a companion pool: true, and why.
    ackAutoscaler: bool
    reason: str


class _UnplaceableRequired(TypedDict):
    pod: str
    reason: str


class Unplaceable(_UnplaceableRequired, total=False):
    deferred: bool  # true (only ever present as true): the time limit left the pod unplanned


class _DecideSummaryRequired(TypedDict):
    newNodes: int
    eciPods: int
    coveredPods: int
    unplaceablePods: int  # deferred pods included
    estimatedCostPerHour: float


class DecideSummary(_DecideSummaryRequired, total=False):
    deferredPods: int  # present only when the time limit deferred some
    leftForAckAutoscalerPods: int  # present only when the request has a companion pool


class DecideReply(TypedDict):
    schema: Literal["decide/v1"]
    decisionId: str
    actions: list[Action]
    covered: list[Covered]
    unplaceable: list[Unplaceable]
    summary: DecideSummary


# --- scale-in/v1 request ------------------------------------------------------------------


class _ManagedPoolSizeRequired(TypedDict):
    desired: int


class ManagedPoolSize(_ManagedPoolSizeRequired, total=False):
    min: int


class _ManagedPoolRequired(TypedDict):
    id: str
    size: ManagedPoolSize
    pricePerHour: float


class ManagedPool(_ManagedPoolRequired, total=False):
    name: str
    allocatable: Resources
    lastScaleUpAt: str | None


class _NodePodRequired(TypedDict):
    uid: str
    # ReplicaSet | Job | DaemonSet | StatefulSet | RayCluster | none
    ownerKind: str


class NodePod(_NodePodRequired, total=False):
    namespace: str
    name: str
    requests: Resources
    rayNodeType: str | None  # head | worker
    pdbBlocked: bool
    nodeSelector: dict[str, str]
    affinity: dict[str, Any]
    tolerations: list[Toleration]
    phase: str


class _NodeRequired(TypedDict):
    name: str
    ready: bool
    createdAt: str


class Node(_NodeRequired, total=False):
    poolId: str | None  # null or absent: a node of no managed pool
    instanceId: str  # required for a node of a managed pool
    allocatable: Resources  # default: its pool's allocatable
    pods: list[NodePod]
    everReady: bool
    unschedulable: bool
    labels: dict[str, str]
    taints: list[Taint]
    emptySince: str | None
    underutilizedSince: str | None
    scaleDownDisabled: bool  # cluster-autoscaler's scale-down-disabled annotation is "true"
    lastRemovalFailedAt: str | None  # when a removal of the node last failed


class ScaleInPolicy(TypedDict, total=False):
    scaleDownUnneededSeconds: float
    scaleDownUtilizationThreshold: float
    scaleDownDelayAfterAddSeconds: float
    maxNodesPerDecision: int
    drainNonEmpty: bool
    maxProvisionSeconds: float
    scaleDownDelayAfterFailureSeconds: float
    maxDecisionSeconds: float  # the decision's own time limit; past it, nodes are deferred


class _ScaleInRequestRequired(TypedDict):
    schema: Literal["scale-in/v1"]
    now: str
    pools: list[ManagedPool]
    nodes: list[Node]


class ScaleInRequest(_ScaleInRequestRequired, total=False):
    cluster: dict[str, Any]
    policy: ScaleInPolicy


# --- scale-in/v1 reply --------------------------------------------------------------------


class Removal(TypedDict):
    node: str
    poolId: str
    instanceId: str
    reason: str
    evicts: list[str]


class PoolRemoval(TypedDict):
    poolId: str
    fromDesired: int
    toDesired: int
    nodes: list[str]
    instanceIds: list[str]


class _KeptRequired(TypedDict):
    node: str
    reason: str


class Kept(_KeptRequired, total=False):
    deferred: bool  # true (only ever present as true): the time limit left the node unchecked


class _ScaleInSummaryRequired(TypedDict):
    removeNodes: int
    keepNodes: int  # deferred nodes included
    savedPerHour: float


class ScaleInSummary(_ScaleInSummaryRequired, total=False):
    deferredNodes: int  # present only when the time limit deferred some


class ScaleInReply(TypedDict):
    schema: Literal["scale-in/v1"]
    decisionId: str
    remove: list[Removal]
    pools: list[PoolRemoval]
    keep: list[Kept]
    summary: ScaleInSummary
