"""The marks a removal leaves on a node, and taking them off again.

Before RemoveNodePoolNodes the agent cordons the node and adds its own taint,
`ray-ack-scaler/to-be-deleted:NoSchedule` with the Unix time as value (cluster-autoscaler marks
the nodes it removes with `ToBeDeletedByClusterAutoscaler` the same way); once CS has accepted
the removal it records the task id in the annotation `ray-ack-scaler/removal-task`. Another agent,
or this one after a restart, can so tell a node it is removing from one left behind, and follow
the task. When the removal does not happen the marks come off: taint and annotation, and the
cordon unless someone else had cordoned the node before.

Every change is a read-modify-write with the node's resourceVersion as precondition
(`KubeClient.edit_node`): a merge patch replaces spec.taints whole, and the precondition keeps it
from dropping a taint someone else added meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from agent.clients.kube import KubeError, KubeUnreachable
from agent.ingest.node_pods import REMOVAL_TASK_ANNOTATION, TO_BE_DELETED_TAINT

log = logging.getLogger(__name__)

NOT_FOUND = 404


class NodeEditor(Protocol):
    """What the marks need of the Kubernetes client (agent.clients.kube.KubeClient has it)."""

    async def edit_node(
        self, name: str, edit: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> dict[str, Any]: ...


def removal_taint(now: float) -> dict[str, str]:
    return {"key": TO_BE_DELETED_TAINT, "value": str(int(now)), "effect": "NoSchedule"}


def carries_mark(taints: Any) -> bool:
    """Whether a node's taints include ours."""
    return any(t.get("key") == TO_BE_DELETED_TAINT for t in taints or ())


def mark_patch(node: Mapping[str, Any], *, now: float) -> dict[str, Any] | None:
    """Cordon and taint; None when both are there already (an earlier mark's time is kept)."""
    spec = node.get("spec") or {}
    taints = list(spec.get("taints") or ())
    if carries_mark(taints) and spec.get("unschedulable"):
        return None
    if not carries_mark(taints):
        taints.append(removal_taint(now))
    return {"spec": {"unschedulable": True, "taints": taints}}


def unmark_patch(node: Mapping[str, Any], *, uncordon: bool) -> dict[str, Any] | None:
    """Our taint and task annotation off, and the cordon with `uncordon`; None: nothing to do."""
    spec = node.get("spec") or {}
    taints = list(spec.get("taints") or ())
    kept = [t for t in taints if t.get("key") != TO_BE_DELETED_TAINT]
    patch: dict[str, Any] = {}
    if len(kept) != len(taints):
        patch.setdefault("spec", {})["taints"] = kept
    if uncordon and spec.get("unschedulable"):
        patch.setdefault("spec", {})["unschedulable"] = False
    if REMOVAL_TASK_ANNOTATION in ((node.get("metadata") or {}).get("annotations") or {}):
        patch["metadata"] = {"annotations": {REMOVAL_TASK_ANNOTATION: None}}
    return patch or None


def task_patch(task_id: str) -> dict[str, Any]:
    return {"metadata": {"annotations": {REMOVAL_TASK_ANNOTATION: task_id}}}


async def mark(kube: NodeEditor, name: str, *, now: float) -> None:
    """Cordon and taint `name`; raises KubeError (404: the node is gone) or KubeUnreachable."""
    await kube.edit_node(name, lambda node: mark_patch(node, now=now))


async def note_task(kube: NodeEditor, name: str, task_id: str) -> None:
    """Record the removal task on the node; losing it only costs a restarted agent the task."""
    try:
        await kube.edit_node(name, lambda _node: task_patch(task_id))
    except KubeError as error:
        if error.status != NOT_FOUND:  # an empty node may be gone already: nothing to record
            log.warning("removal task not recorded on the node", extra=_fields(name, error))
    except KubeUnreachable as error:
        log.warning("removal task not recorded on the node", extra=_fields(name, error))


async def unmark(kube: NodeEditor, name: str, *, uncordon: bool = True) -> bool:
    """Take the marks off `name`; False when that failed (a node already gone counts as done)."""
    try:
        await kube.edit_node(name, lambda node: unmark_patch(node, uncordon=uncordon))
    except KubeError as error:
        if error.status == NOT_FOUND:
            return True
        log.warning("removal marks not taken off", extra=_fields(name, error))
        return False
    except KubeUnreachable as error:
        log.warning("removal marks not taken off", extra=_fields(name, error))
        return False
    return True


def _fields(name: str, error: Exception) -> dict[str, str]:
    return {"node": name, "error": str(error)}
