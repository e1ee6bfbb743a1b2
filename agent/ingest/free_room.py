"""Free room on running nodes, for workers that have no pod yet.

A pending pod reaches the decision only once the scheduler has said it fits no node. An
anticipated worker (agent.ingest.rayclusters) has not been through the scheduler: when KubeRay
creates it, it may well land in the room a running node has left — a node whose workers Ray's
idle timeout just removed, say. Raising a pool for it would buy a node that then sits idle until
scale-in gives it back. So before anticipated workers enter a request, the ones that fit the
free room of a running node are taken out, first-fit, the way the scheduler's filters would
judge them (functions.predicates: resources and the `pods` slot, nodeSelector, required node
affinity, NoSchedule/NoExecute taints).

Running node: Ready, not the ECI virtual node, not cordoned and not marked for removal by
scale-in. Free room: allocatable minus the requests of every pod bound to the node and not
finished (the scale-in fold, `NodePods`, which sees every namespace). Not modelled: pod
(anti-)affinity and topology spread, which the decision does not model for pods either; the
scheduler's choice among several nodes with room (first-fit in node-name order stands in).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from agent.ingest.node_pods import NodePods
from agent.model import NodeState, PendingPod
from functions.errors import DecisionError
from functions.predicates import (
    POD_SLOT,
    first_untolerated_taint,
    insufficient,
    node_selector_matches,
    required_affinity_matches,
)
from functions.quantity import parse_quantity


def _milli(resources: Mapping[str, str]) -> dict[str, int] | None:
    try:
        return {name: parse_quantity(value) for name, value in resources.items()}
    except DecisionError:
        return None


def free_room(nodes: Iterable[NodeState], node_pods: NodePods) -> dict[str, dict[str, int]]:
    """Per running node, what its pods leave of its allocatable (milli-units, `pods` included)."""
    room: dict[str, dict[str, int]] = {}
    for node in nodes:
        facts = node_pods.facts.get(node.name)
        if not node.ready or node.virtual or facts is None:
            continue
        if facts.unschedulable or facts.marked_at is not None:
            continue
        free = _milli(node.allocatable)
        if free is None:
            continue
        for uid in node_pods.by_node.get(node.name, ()):
            pod = node_pods.pods.get(uid)
            used = _milli(pod.requests) if pod is not None else None
            for name, amount in {**(used or {}), **POD_SLOT}.items():
                free[name] = free.get(name, 0) - amount
        room[node.name] = free
    return room


def beyond_free_room(
    workers: Sequence[PendingPod], nodes: Sequence[NodeState], node_pods: NodePods
) -> tuple[PendingPod, ...]:
    """The workers that fit no running node's free room, after placing the others first-fit
    (each placement takes its room from the next)."""
    if not workers:
        return ()
    room = free_room(nodes, node_pods)
    if not room:
        return tuple(workers)
    by_name = {node.name: node for node in nodes}
    order = sorted(room)
    left: list[PendingPod] = []
    for worker in workers:
        needs = _milli(worker.requests)
        if needs is None:
            left.append(worker)
            continue
        needs = {**needs, **POD_SLOT}
        for name in order:
            node = by_name[name]
            if (
                not insufficient(needs, room[name])
                and node_selector_matches(worker.node_selector, node.labels)
                and required_affinity_matches(worker.affinity, node.labels)
                and first_untolerated_taint(worker.tolerations, node.taints) is None
            ):
                free = room[name]
                for resource, amount in needs.items():
                    free[resource] = free.get(resource, 0) - amount
                break
        else:
            left.append(worker)
    return tuple(left)
