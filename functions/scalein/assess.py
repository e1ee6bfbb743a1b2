"""One node on its own: may it be removed, and if not, why not (the rules that need no other node).

The node's own opt-out comes first (cluster-autoscaler's scale-down-disabled annotation), then
protection (a Ray head, an unowned pod, a pod under a PodDisruptionBudget), then the pool's
cool-down and the node's back-off after a failed removal, then the node's health, then how long
it has been unneeded. What depends on the other nodes — the pool's min, the per-decision cap,
whether evicted pods fit elsewhere — is `functions.scalein.select`'s job.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from functions.contract import SCALE_DOWN_DISABLED_ANNOTATION
from functions.scalein.model import ManagedPool, Node, NodePod, ScaleInPolicy

# Resources that say nothing about how busy a node is.
_NOT_LOAD = frozenset({"pods", "ephemeral-storage"})


@dataclass(frozen=True)
class Candidate:
    """A node the per-node rules allow to go; `reason` says why, `evicts` what a drain moves."""

    node: Node
    pool: ManagedPool
    utilization: float
    # Never became Ready within maxProvisionSeconds: removed without a fit check.
    failed: bool
    evicts: tuple[NodePod, ...]
    reason: str


@dataclass(frozen=True)
class Kept:
    node: Node
    reason: str
    # Not decided: the decision's time limit passed before the node was reached.
    deferred: bool = False


def utilization(node: Node) -> float:
    """Share of the node that its load requests: the largest ratio over cpu, memory and any
    other listed resource (pods and ephemeral-storage aside); DaemonSet pods are not load."""
    used: dict[str, int] = {}
    for pod in node.pods:
        if pod.movable:
            for name, amount in pod.requests.items():
                used[name] = used.get(name, 0) + amount
    highest = 0.0
    for name, amount in used.items():
        if name in _NOT_LOAD or amount <= 0:
            continue
        capacity = node.allocatable.get(name, 0)
        # A request for something the node does not list: full, whatever the arithmetic says.
        share = amount / capacity if capacity > 0 else 1.0
        highest = max(highest, share)
    return highest


def assess(
    node: Node, *, pools: Mapping[str, ManagedPool], policy: ScaleInPolicy, now: float
) -> Candidate | Kept:
    """The per-node verdict for `node` at time `now`."""
    if node.pool_id is None:
        return Kept(node, "not in a managed node pool")
    if node.scale_down_disabled:
        return Kept(
            node, f'scale-down disabled (annotation {SCALE_DOWN_DISABLED_ANNOTATION}: "true")'
        )
    pool = pools[node.pool_id]
    protected = _protection(node.pods)
    if protected:
        return Kept(node, protected)
    waiting = _waiting(node, pool, policy=policy, now=now)
    if waiting:
        return Kept(node, waiting)
    evicts = tuple(pod for pod in node.pods if pod.movable)
    load = utilization(node)
    age = now - node.created_at
    if not node.ready:
        if node.ever_ready:
            return Kept(node, "node is not Ready (it was before; kept while it may recover)")
        if age <= policy.max_provision_seconds:
            return Kept(
                node,
                f"node is not Ready yet: created {age:.0f}s ago "
                f"(failed after maxProvisionSeconds {policy.max_provision_seconds:g})",
            )
        return Candidate(
            node=node,
            pool=pool,
            utilization=load,
            failed=True,
            evicts=evicts,
            reason=f"failed: never became Ready in {age:.0f}s "
            f"(maxProvisionSeconds {policy.max_provision_seconds:g})",
        )
    wait = policy.unneeded_seconds
    if not evicts:
        if node.empty_since is None:
            return Kept(node, "empty, but not yet tracked as empty (emptySince is null)")
        empty_for = now - node.empty_since
        if empty_for < wait:
            return Kept(node, f"empty for {max(empty_for, 0):.0f}s of {wait:g}s")
        return Candidate(
            node=node,
            pool=pool,
            utilization=0.0,
            failed=False,
            evicts=evicts,
            reason=f"empty for {empty_for:.0f}s (scaleDownUnneededSeconds {wait:g})",
        )
    threshold = policy.utilization_threshold
    if load >= threshold:
        return Kept(
            node,
            f"utilization {_percent(load)} is not below "
            f"scaleDownUtilizationThreshold {_percent(threshold)}",
        )
    if not policy.drain_non_empty:
        names = ", ".join(pod.label for pod in evicts[:3])
        more = f" and {len(evicts) - 3} more" if len(evicts) > 3 else ""
        return Kept(node, f"runs {len(evicts)} pod(s) ({names}{more}) and drainNonEmpty is false")
    if node.underutilized_since is None:
        return Kept(
            node,
            f"utilization {_percent(load)}, but not yet tracked as underutilized "
            "(underutilizedSince is null)",
        )
    under_for = now - node.underutilized_since
    if under_for < wait:
        return Kept(
            node,
            f"utilization {_percent(load)} below {_percent(threshold)} for "
            f"{max(under_for, 0):.0f}s of {wait:g}s",
        )
    return Candidate(
        node=node,
        pool=pool,
        utilization=load,
        failed=False,
        evicts=evicts,
        reason=f"utilization {_percent(load)} below {_percent(threshold)} for "
        f"{under_for:.0f}s; {len(evicts)} pod(s) fit on other nodes",
    )


def _waiting(node: Node, pool: ManagedPool, *, policy: ScaleInPolicy, now: float) -> str:
    """The timers that hold a node for now: its pool's cool-down, its own failure back-off."""
    if pool.last_scale_up_at is not None:
        since = now - pool.last_scale_up_at
        if since < policy.delay_after_add_seconds:
            return (
                f"cool-down: pool {pool.id} scaled up {since:.0f}s ago "
                f"(scaleDownDelayAfterAddSeconds {policy.delay_after_add_seconds:g})"
            )
    if node.removal_failed_at is not None:
        since = now - node.removal_failed_at
        if since < policy.delay_after_failure_seconds:
            return (
                f"back-off: removing it failed {max(since, 0):.0f}s ago "
                f"(scaleDownDelayAfterFailureSeconds {policy.delay_after_failure_seconds:g})"
            )
    return ""


def _protection(pods: tuple[NodePod, ...]) -> str:
    # DaemonSet pods never protect a node: drain leaves them and they die with it.
    load = [pod for pod in pods if pod.movable]
    for pod in load:
        if pod.ray_node_type == "head":
            return f"node has a Ray head pod {pod.label}"
    for pod in load:
        if pod.owner_kind == "none":
            return f"pod {pod.label} has no owner (nothing would recreate it)"
    for pod in load:
        if pod.pdb_blocked:
            return f"pod {pod.label} may not be evicted now (PodDisruptionBudget)"
    return ""


def _percent(share: float) -> str:
    # Rounded down to 0.1%: 49.96% must not print as the 50% threshold it is below.
    return f"{math.floor(share * 1000 + 1e-9) / 10:g}%"
