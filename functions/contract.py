"""Every name of the two contracts, decide/v1 and scale-in/v1 (docs/decide-contract.md,
docs/scale-in-contract.md): schema names, strategies, the placement annotation and its values,
action kinds, the node pool label, the ECI virtual node's label, taint and toleration, and the
ECI pod annotation that pins specs.

The function and the agent spell these facts only here. The shapes of each request and reply are
TypedDicts in `functions.contract_types`, kept apart so a Function Compute cold start (which
compiles every module it loads from source) pays for neither `typing` nor their class bodies.
"""

from __future__ import annotations

# Only the type checker reads typing (annotations are strings): ~10 ms less cold start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

# --- schemas ------------------------------------------------------------------------------

DECIDE_SCHEMA = "decide/v1"
SCALE_IN_SCHEMA = "scale-in/v1"

# --- decide/v1 policy and placement -------------------------------------------------------

STRATEGY_COST = "cost"
STRATEGY_LATENCY = "latency"
STRATEGY_POOL_FIRST = "pool-first"
STRATEGY_ECI_FIRST = "eci-first"
STRATEGIES = (STRATEGY_COST, STRATEGY_LATENCY, STRATEGY_POOL_FIRST, STRATEGY_ECI_FIRST)
DEFAULT_STRATEGY = STRATEGY_COST

# Pod annotation that overrides the strategy for that pod.
PLACEMENT_ANNOTATION = "ray-ack-scaler/placement"
PLACEMENT_AUTO = "auto"
PLACEMENT_ECS = "ecs"
PLACEMENT_ECI = "eci"
PLACEMENTS = (PLACEMENT_AUTO, PLACEMENT_ECS, PLACEMENT_ECI)

# Pool field (request) and `covered` entry flag (reply): ACK's own autoscaler owns the pool
# (a companion pool). The decision never scales it; pods it would take are left to ACK.
ACK_AUTOSCALER = "ackAutoscaler"

# Reply action kinds.
SCALE_POOL = "scale-pool"
PLACE_ON_ECI = "place-on-eci"
ACTION_KINDS = (SCALE_POOL, PLACE_ON_ECI)

# --- both contracts: the decision's time limit ------------------------------------------

# Request field (seconds, optional): the most time the function may take for this decision.
MAX_DECISION_SECONDS = "maxDecisionSeconds"
# What the time limit left undecided: a decide/v1 `unplaceable` entry or a scale-in/v1 `keep`
# entry carries `"deferred": true` and a reason that starts with "deferred:"; the reply's
# summary counts them (`deferredPods`, `deferredNodes`), present only when there are some.
DEFERRED = "deferred"

# --- ACK facts the contract carries -------------------------------------------------------

# ACK labels every node of a node pool with the pool's id.
POOL_LABEL = "alibabacloud.com/nodepool-id"
# The ECI virtual node (virtual-kubelet): its label, and the taint that keeps pods off it
# unless they tolerate it (the agent adds ECI_TOLERATION to send a pod there).
ECI_NODE_LABELS: Mapping[str, str] = {"type": "virtual-kubelet"}
ECI_TAINT_KEY = "virtual-kubelet.io/provider"
ECI_TAINT_VALUE = "alibabacloud"
ECI_TAINT_EFFECT = "NoSchedule"
ECI_TAINT: Mapping[str, str] = {
    "key": ECI_TAINT_KEY,
    "value": ECI_TAINT_VALUE,
    "effect": ECI_TAINT_EFFECT,
}
ECI_TOLERATION: Mapping[str, str] = {
    "key": ECI_TAINT_KEY,
    "operator": "Equal",
    "value": ECI_TAINT_VALUE,
    "effect": ECI_TAINT_EFFECT,
}
# Pod annotation, read at pod creation only: the specs ECI runs the pod as, in priority order
# (`2-4Gi` or an ECS instance type, comma-separated); see `functions.eci_specs`.
ECI_USE_SPECS_ANNOTATION = "k8s.aliyun.com/eci-use-specs"

# --- scale-in/v1 --------------------------------------------------------------------------

# cluster-autoscaler's node annotation: "true" keeps the node out of scale-in (the agent sends
# it as the node's `scaleDownDisabled`).
SCALE_DOWN_DISABLED_ANNOTATION = "cluster-autoscaler.kubernetes.io/scale-down-disabled"
