"""QueueingHints: whether a cluster event may make a pod that some plugins rejected schedulable.

kube-scheduler records, for every pod that failed a scheduling attempt, the filter plugins that
rejected it on some node (`QueuedPodInfo.UnschedulablePlugins`), and on every cluster event asks
only those plugins' QueueingHint functions whether the event may change their answer
(pkg/scheduler/backend/queue/scheduling_queue.go, `isPodWorthRequeuing`: no rejector plugin at
all → queue; otherwise queue if any rejector's hint says Queue, else the pod stays unschedulable).
The hints of the four filters the simulated scheduler runs, as they are with SchedulerQueueingHints
enabled (default since 1.32):

- NodeResourcesFit (plugins/noderesources/fit.go, `isSchedulableAfterNodeChange`): a node added
  whose allocatable fits the pod's request on an empty node; a node updated that fits and whose
  allocatable grew in a resource the pod requests (or in pods). `isSchedulableAfterPodEvent`: an
  assigned pod deleted frees room; the pod's own request scaled down.
- TaintToleration (plugins/tainttoleration, `isSchedulableAfterNodeChange`): the pod tolerates
  the added or updated node's NoSchedule/NoExecute taints and did not before (a node turning
  Ready loses the not-ready taint); `isSchedulableAfterPodTolerationChange`: the pod's own
  tolerations changed.
- NodeAffinity (plugins/nodeaffinity, `isSchedulableAfterNodeChange`): the added node matches the
  pod's required node selector and affinity, or an updated node matches and did not before.
- NodeUnschedulable (plugins/nodeunschedulable, `isSchedulableAfterNodeChange`): a schedulable
  node added, or a node uncordoned; `isSchedulableAfterPodTolerationChange`: the pod now tolerates
  the unschedulable taint.

A pod's node selector and affinity are immutable once it is past its scheduling gates, so the
stand-in's pod-update hint for NodeAffinity (queue when they changed) only covers a store that
allows what the API server would refuse; that one is modelled, not upstream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from agent.sim.world.nodes import UNSCHEDULABLE_TAINT
from functions.predicates import (
    first_untolerated_taint,
    insufficient,
    node_selector_matches,
    required_affinity_matches,
    tolerates,
)

if TYPE_CHECKING:  # the scheduler imports this module
    from agent.sim.world.scheduler import NodeInfo, PodInfo

NODE_RESOURCES_FIT = "NodeResourcesFit"
TAINT_TOLERATION = "TaintToleration"
NODE_AFFINITY = "NodeAffinity"
NODE_UNSCHEDULABLE = "NodeUnschedulable"


def node_change_queues(
    pod: PodInfo, rejectors: frozenset[str], old: NodeInfo | None, new: NodeInfo
) -> bool:
    """Whether a node added (`old` None) or updated may make `pod` schedulable."""
    if not rejectors:
        return True
    if NODE_RESOURCES_FIT in rejectors and _fit_hint(pod, old, new):
        return True
    if TAINT_TOLERATION in rejectors:
        was_untolerated = old is None or _untolerated(pod, old)
        if was_untolerated and not _untolerated(pod, new):
            return True
    if (
        NODE_AFFINITY in rejectors
        and _matches(pod, new)
        and (old is None or not _matches(pod, old))
    ):
        return True
    return NODE_UNSCHEDULABLE in rejectors and (
        not new.unschedulable and (old is None or old.unschedulable)
    )


def assigned_pod_freed_queues(rejectors: frozenset[str]) -> bool:
    """Whether an assigned pod deleted (or finished, which frees its room alike) may make a pod
    rejected by `rejectors` schedulable: only NodeResourcesFit asks for this event."""
    return not rejectors or NODE_RESOURCES_FIT in rejectors


def pod_update_queues(rejectors: frozenset[str], old: PodInfo, new: PodInfo) -> bool:
    """Whether the unschedulable pod's own update (`old` → `new`) may make it schedulable."""
    if not rejectors:
        return True
    if NODE_RESOURCES_FIT in rejectors and any(
        new.requests.get(name, 0) < value for name, value in old.requests.items()
    ):
        return True
    tolerations_changed = old.tolerations != new.tolerations
    if TAINT_TOLERATION in rejectors and tolerations_changed:
        return True
    if (
        NODE_UNSCHEDULABLE in rejectors
        and tolerations_changed
        and any(tolerates(t, UNSCHEDULABLE_TAINT) for t in new.tolerations)
    ):
        return True
    return NODE_AFFINITY in rejectors and (
        old.node_selector != new.node_selector or old.affinity != new.affinity
    )


def _fit_hint(pod: PodInfo, old: NodeInfo | None, new: NodeInfo) -> bool:
    if insufficient(dict(pod.requests), dict(new.allocatable)):
        return False  # would not fit even on the empty node
    if old is None:
        return True
    return any(
        new.allocatable.get(name, 0) > old.allocatable.get(name, 0)
        for name, value in pod.requests.items()
        if value
    )


def _untolerated(pod: PodInfo, node: NodeInfo) -> bool:
    return first_untolerated_taint(list(pod.tolerations), list(node.taints)) is not None


def _matches(pod: PodInfo, node: NodeInfo) -> bool:
    labels: Mapping[str, str] = node.labels
    return node_selector_matches(pod.node_selector, labels) and required_affinity_matches(
        pod.affinity, labels
    )
