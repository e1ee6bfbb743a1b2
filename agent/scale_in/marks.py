"""The marks a removal leaves on a node, reading them back, and taking them off again.

Before RemoveNodePoolNodes the agent cordons the node and adds its own taint,
`ray-ack-scaler/to-be-deleted:NoSchedule` with the Unix time as value (cluster-autoscaler marks
the nodes it removes with `ToBeDeletedByClusterAutoscaler` the same way), and says who marked it
and when: the annotation `ray-ack-scaler/marked-by` holds the agent's identity (the holder
identity of the pool Lease it marks under), `ray-ack-scaler/marked-at` the time (RFC 3339), and
`ray-ack-scaler/was-cordoned: "true"` says the node was cordoned already — by someone else — so
taking the marks off leaves that cordon. Once CS has accepted the removal the task id goes into
`ray-ack-scaler/removal-task`. Another agent, or this one after a restart, can so tell a node it
is removing from one left behind, and follow the task.

A node that carries a mark already is never marked again: whoever marked it is removing it, or
left it behind, and then the recovery in `agent.scale_in.removals` takes it off.

Every change is a read-modify-write with the node's resourceVersion as precondition
(`KubeClient.edit_node`): a merge patch replaces spec.taints whole, and the precondition keeps it
from dropping a taint someone else added meanwhile. Taking marks off can be made conditional on
what is on the node at that moment (`only_if`), so a mark someone put on since is never lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from agent.clients.kube import KubeError, KubeUnreachable
from agent.ingest.node_pods import (
    REMOVAL_TASK_ANNOTATION,
    TO_BE_DELETED_TAINT,
    epoch_or_none,
    removal_mark,
)
from agent.scale_in.tracking import rfc3339

log = logging.getLogger(__name__)

NOT_FOUND = 404
MARKED_BY_ANNOTATION = "ray-ack-scaler/marked-by"
MARKED_AT_ANNOTATION = "ray-ack-scaler/marked-at"
WAS_CORDONED_ANNOTATION = "ray-ack-scaler/was-cordoned"
MARK_ANNOTATIONS = (
    REMOVAL_TASK_ANNOTATION,
    MARKED_BY_ANNOTATION,
    MARKED_AT_ANNOTATION,
    WAS_CORDONED_ANNOTATION,
)


class NodeEditor(Protocol):
    """What the marks need of the Kubernetes client (agent.clients.kube.KubeClient has it)."""

    async def edit_node(
        self, name: str, edit: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Mark:
    """What the marks on a node say."""

    holder: str  # marked-by; "" for a mark without it (an agent older than the annotation)
    at: float  # marked-at, else the taint's time
    task: str  # the removal task; "" before CS accepted the removal
    was_cordoned: bool  # cordoned by someone else before we marked it: stays cordoned

    def describe(self) -> str:
        who = self.holder or "an agent"
        task = f", removal task {self.task}" if self.task else ""
        return f"marked for removal by {who} at {rfc3339(self.at)}{task}"


def removal_taint(now: float) -> dict[str, str]:
    return {"key": TO_BE_DELETED_TAINT, "value": str(int(now)), "effect": "NoSchedule"}


def carries_mark(taints: Any) -> bool:
    """Whether a node's taints include ours."""
    return any(t.get("key") == TO_BE_DELETED_TAINT for t in taints or ())


def _annotations(node: Mapping[str, Any]) -> Mapping[str, Any]:
    return (node.get("metadata") or {}).get("annotations") or {}


def mark_of(node: Mapping[str, Any]) -> Mark | None:
    """The mark on `node`, None when it carries no taint of ours."""
    tainted_at = removal_mark((node.get("spec") or {}).get("taints"))
    if tainted_at is None:
        return None
    notes = _annotations(node)
    at = epoch_or_none(str(notes.get(MARKED_AT_ANNOTATION) or ""))
    return Mark(
        holder=str(notes.get(MARKED_BY_ANNOTATION) or ""),
        at=tainted_at if at is None else at,
        task=str(notes.get(REMOVAL_TASK_ANNOTATION) or ""),
        was_cordoned=notes.get(WAS_CORDONED_ANNOTATION) == "true",
    )


def mark_patch(node: Mapping[str, Any], *, now: float, holder: str) -> dict[str, Any]:
    """Cordon, taint, and say who and when (and whether the node was cordoned already)."""
    spec = node.get("spec") or {}
    taints = [*(spec.get("taints") or ()), removal_taint(now)]
    notes: dict[str, str] = {MARKED_BY_ANNOTATION: holder, MARKED_AT_ANNOTATION: rfc3339(now)}
    if spec.get("unschedulable"):
        notes[WAS_CORDONED_ANNOTATION] = "true"
    return {"spec": {"unschedulable": True, "taints": taints}, "metadata": {"annotations": notes}}


def unmark_patch(node: Mapping[str, Any], *, uncordon: bool) -> dict[str, Any] | None:
    """Our taint and annotations off, and the cordon with `uncordon` unless the node was cordoned
    before we marked it; None: nothing to do."""
    spec = node.get("spec") or {}
    taints = list(spec.get("taints") or ())
    kept = [t for t in taints if t.get("key") != TO_BE_DELETED_TAINT]
    notes = _annotations(node)
    patch: dict[str, Any] = {}
    if len(kept) != len(taints):
        patch.setdefault("spec", {})["taints"] = kept
    was_cordoned = notes.get(WAS_CORDONED_ANNOTATION) == "true"
    if uncordon and not was_cordoned and spec.get("unschedulable"):
        patch.setdefault("spec", {})["unschedulable"] = False
    gone = {key: None for key in MARK_ANNOTATIONS if key in notes}
    if gone:
        patch["metadata"] = {"annotations": gone}
    return patch or None


def task_patch(task_id: str) -> dict[str, Any]:
    return {"metadata": {"annotations": {REMOVAL_TASK_ANNOTATION: task_id}}}


async def mark(kube: NodeEditor, name: str, *, now: float, holder: str = "") -> Mark | None:
    """Cordon and taint `name` as `holder`. None when marked; the mark found when the node
    carries one already (it is left as it is). Raises KubeError (404: the node is gone) or
    KubeUnreachable."""
    found: list[Mark] = []

    def edit(node: dict[str, Any]) -> dict[str, Any] | None:
        found.clear()
        existing = mark_of(node)
        if existing is not None:
            found.append(existing)
            return None
        return mark_patch(node, now=now, holder=holder)

    await kube.edit_node(name, edit)
    return found[0] if found else None


async def note_task(kube: NodeEditor, name: str, task_id: str) -> None:
    """Record the removal task on the node; losing it only costs a restarted agent the task (it
    then asks CS whether the node is being removed)."""
    try:
        await kube.edit_node(name, lambda _node: task_patch(task_id))
    except KubeError as error:
        if error.status != NOT_FOUND:  # an empty node may be gone already: nothing to record
            log.warning("removal task not recorded on the node", extra=_fields(name, error))
    except KubeUnreachable as error:
        log.warning("removal task not recorded on the node", extra=_fields(name, error))


async def unmark(
    kube: NodeEditor,
    name: str,
    *,
    uncordon: bool = True,
    only_if: Callable[[Mapping[str, Any]], bool] | None = None,
) -> bool:
    """Take the marks off `name` (with `only_if`: only when the node read says so); False when
    that failed (a node already gone counts as done)."""

    def edit(node: dict[str, Any]) -> dict[str, Any] | None:
        if only_if is not None and not only_if(node):
            return None
        return unmark_patch(node, uncordon=uncordon)

    try:
        await kube.edit_node(name, edit)
    except KubeError as error:
        if error.status == NOT_FOUND:
            return True
        log.warning("removal marks not taken off", extra=_fields(name, error))
        return False
    except KubeUnreachable as error:
        log.warning("removal marks not taken off", extra=_fields(name, error))
        return False
    return True


def still(expected: Mark) -> Callable[[Mapping[str, Any]], bool]:
    """`only_if` for unmark: the node carries exactly the mark that was read."""
    return lambda node: mark_of(node) == expected


def of_task(task_id: str, holder: str) -> Callable[[Mapping[str, Any]], bool]:
    """`only_if` for undoing a failed removal: the node is marked for that task, or marked by
    `holder` with no task recorded (the task annotation was not written); never a mark someone
    put on since for another removal."""

    def check(node: Mapping[str, Any]) -> bool:
        found = mark_of(node)
        if found is None:
            return False
        return found.task == task_id or (not found.task and bool(holder) and found.holder == holder)

    return check


def _fields(name: str, error: Exception) -> dict[str, str]:
    return {"node": name, "error": str(error)}
