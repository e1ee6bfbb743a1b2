"""The decide/v1 reply: actions, covered, unplaceable, summary and the decisionId.

Every pod of the request appears exactly once; lists keep the request's pod order;
pods the time limit deferred are `unplaceable` entries marked `"deferred": true`;
scale-pool actions are sorted by pool id and come before the one place-on-eci
action. Each action carries a `reason` (`functions.scaleout.explain`; distinct group reasons
joined by "; "). `decisionId` is the first 16 hex digits of sha256 over the request's
fingerprint (see `functions.scaleout.validate`), so it does not change with `now`.

Pods the plan puts on new nodes of a pool ACK's autoscaler owns (a companion pool) are `covered`
entries marked `"ackAutoscaler": true` with a reason, never a scale-pool action: ACK adds those
nodes, not the agent. They are not in `summary.newNodes`, but their price is in
`estimatedCostPerHour` (the plan relies on them); `summary.leftForAckAutoscalerPods` counts
the pods, present only when the request has a companion pool.
"""

from __future__ import annotations

from itertools import repeat

from functions.contract import ACK_AUTOSCALER, DECIDE_SCHEMA, DEFERRED, PLACE_ON_ECI, SCALE_POOL
from functions.readers import fingerprint_bytes
from functions.scaleout.feasibility import eci_fit
from functions.scaleout.model import Request
from functions.scaleout.plan import Plan
from functions.scaleout.strategy import eci_cost_per_pod

# Only the type checker reads typing (annotations are strings): ~10 ms less cold start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def decision_id(request: Request) -> str:
    """Stable short hash of the request's content without `now`."""
    # Imported here: loading OpenSSL is ~3 ms of a cold start that only needs it per call.
    import hashlib

    return hashlib.sha256(fingerprint_bytes(request.fingerprint)).hexdigest()[:16]


def build_reply(request: Request, plan: Plan, *, deferred_reason: str = "") -> dict[str, Any]:
    """The reply JSON object for `plan`; its deferred pods are `unplaceable` with
    `deferred_reason` and `"deferred": true`."""
    uids = request.uids
    pools = {pool.id: pool for pool in request.pools}
    new_pods: dict[str, list[int]] = {pool_id: [] for pool_id in plan.added}
    covered: list[tuple[int, str]] = []
    # Positions of the pods on nodes the plan leaves ACK's autoscaler to add.
    left_for_ack: set[int] = set()
    for pool_id, fresh, run in plan.pool_pods:
        if not fresh:
            covered.extend(zip(run, repeat(pool_id)))
        elif pools[pool_id].companion:
            covered.extend(zip(run, repeat(pool_id)))
            left_for_ack.update(run)
        else:
            new_pods.setdefault(pool_id, []).extend(run)
    actions: list[dict[str, Any]] = []
    cost = 0.0
    for pool_id in sorted(plan.added):
        pool = pools[pool_id]
        count = plan.added[pool_id]
        cost += count * pool.price_per_hour
        actions.append(
            {
                "kind": SCALE_POOL,
                "poolId": pool_id,
                "fromDesired": pool.desired,
                "toDesired": pool.desired + count,
                "pods": list(map(uids.__getitem__, sorted(new_pods[pool_id]))),
                "reason": _joined(plan.pool_reasons.get(pool_id, ())),
            }
        )
    for pool_id, count in plan.ack_added.items():
        # Included: the plan relies on these nodes, though ACK, not the agent, adds them.
        cost += count * pools[pool_id].price_per_hour
    if plan.eci_pods:
        actions.append(
            {
                "kind": PLACE_ON_ECI,
                "pods": list(map(uids.__getitem__, plan.eci_pods)),
                "reason": _joined(plan.eci_reasons),
            }
        )
        on_eci = set(plan.eci_pods)
        for group in request.groups:
            count = len(on_eci.intersection(group.indices))
            if count:
                # The spec ECI bills each pod as (the plan only sends pods ECI can run there).
                billed = eci_fit(group.shape, request.eci)
                assert not isinstance(billed, str), billed
                cost += count * eci_cost_per_pod(billed, eci=request.eci, seconds=3600)
    covered.sort()
    unplaceable = [(i, reason) for reason, run in plan.unplaceable for i in run]
    unplaceable.extend((i, deferred_reason) for i in plan.deferred)
    unplaceable.sort()
    deferred = frozenset(plan.deferred)
    summary: dict[str, Any] = {
        "newNodes": sum(plan.added.values()),
        "eciPods": len(plan.eci_pods),
        "coveredPods": len(covered),
        "unplaceablePods": len(unplaceable),
        "estimatedCostPerHour": round(cost, 6),
    }
    if deferred:
        summary["deferredPods"] = len(deferred)
    if any(pool.companion for pool in request.pools):
        summary["leftForAckAutoscalerPods"] = len(left_for_ack)
    return {
        "schema": DECIDE_SCHEMA,
        "decisionId": decision_id(request),
        "actions": actions,
        "covered": [
            {
                "pod": uids[i],
                "poolId": pool_id,
                ACK_AUTOSCALER: True,
                "reason": f"left for ACK autoscaler on {pool_id}",
            }
            if i in left_for_ack
            else {"pod": uids[i], "poolId": pool_id}
            for i, pool_id in covered
        ],
        "unplaceable": [
            {"pod": uids[i], "reason": reason, DEFERRED: True}
            if i in deferred
            else {"pod": uids[i], "reason": reason}
            for i, reason in unplaceable
        ],
        "summary": summary,
    }


def _joined(reasons: tuple[str, ...]) -> str:
    # Groups that went the same way for the same reason share one entry.
    return "; ".join(reasons)
