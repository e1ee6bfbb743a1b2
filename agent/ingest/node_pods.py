"""What scale-in needs to know about nodes: every pod bound to each node (any namespace, any
label) folded into compact records, and the node facts the scale-out view does not keep
(ECS instance id, creation time, cordon, whether it has ever been Ready, the scale-down opt-out,
and the marks a removal in progress leaves on the node).

Only what the scale-in/v1 request carries is kept, interned through the cluster view's
`Interner`, so a bound pod costs a few hundred bytes: the uid, where it runs, who owns it,
whether it is a Ray head or worker, its phase and what it needs of a destination node.
Finished pods (Succeeded/Failed) hold nothing on their node and are dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.ingest.raw import Interner, RawObject
from functions.contract import SCALE_DOWN_DISABLED_ANNOTATION

# Owner kinds the scale-in/v1 contract names; anything else is mapped below.
KNOWN_OWNERS = frozenset({"ReplicaSet", "Job", "DaemonSet", "StatefulSet", "RayCluster"})
# A ReplicationController recreates its pods like a ReplicaSet; a mirror pod (owner Node) is
# the kubelet's static pod: drain leaves it and it goes with the node, as a DaemonSet pod does.
OWNER_ALIASES = {"ReplicationController": "ReplicaSet", "Node": "DaemonSet"}
# cluster-autoscaler's opt-out, honoured the same way: such a pod pins its node.
SAFE_TO_EVICT = "cluster-autoscaler.kubernetes.io/safe-to-evict"
# cluster-autoscaler's node opt-out: a node annotated "true" is never removed.
SCALE_DOWN_DISABLED = SCALE_DOWN_DISABLED_ANNOTATION
# Our mark on a node being removed, in the style of cluster-autoscaler's
# ToBeDeletedByClusterAutoscaler: NoSchedule, value = Unix seconds when it was marked.
TO_BE_DELETED_TAINT = "ray-ack-scaler/to-be-deleted"
# The RemoveNodePoolNodes task removing the node, so a restarted agent can follow it.
REMOVAL_TASK_ANNOTATION = "ray-ack-scaler/removal-task"
FINISHED = frozenset({"Succeeded", "Failed"})
# Two timestamps this close are the same moment (creationTimestamp has whole seconds).
_SAME_MOMENT_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class BoundPod:
    """A pod bound to a node, as a scale-in decision sees it."""

    uid: str
    namespace: str
    name: str
    node: str
    owner_kind: str  # one of the contract's ownerKind values ("none": nothing recreates it)
    ray_node_type: str | None  # "head" | "worker" | None
    phase: str
    pinned: bool  # annotated safe-to-evict=false: never moved by us
    requests: dict[str, str]
    node_selector: dict[str, str]
    affinity: dict[str, Any]
    tolerations: tuple[dict[str, Any], ...]

    @property
    def is_load(self) -> bool:
        """What a drain would evict: every pod but a DaemonSet's (those die with the node)."""
        return self.owner_kind != "DaemonSet"


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """The node facts scale-in needs beyond agent.model.NodeState."""

    instance_id: str  # from spec.providerID "<region>.<instance id>"; "" when unknown
    created_at: float | None
    unschedulable: bool
    ever_ready: bool
    scale_down_disabled: bool = False  # annotated scale-down-disabled: "true"
    marked_at: float | None = None  # our to-be-deleted taint's time; None: no taint
    removal_task: str = ""  # the task annotation; "" when none


def epoch_or_none(text: str) -> float | None:
    """Epoch seconds of an RFC3339 timestamp as Kubernetes writes it; None when absent or bad."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def owner_kind(meta: Mapping[str, Any]) -> str:
    """The controlling owner's kind, mapped onto the contract's set; "none" when nothing (or an
    unknown controller the agent cannot vouch for) would recreate the pod."""
    owners = meta.get("ownerReferences") or ()
    chosen = next((o for o in owners if o.get("controller")), owners[0] if owners else None)
    if chosen is None:
        return "none"
    kind = str(chosen.get("kind") or "")
    if kind in KNOWN_OWNERS:
        return kind
    return OWNER_ALIASES.get(kind, "none")


def instance_id_of(provider_id: str) -> str:
    """ACK's cloud controller writes providerID as "<region>.<instance id>"."""
    _region, sep, instance = provider_id.partition(".")
    return instance if sep else ""


def removal_mark(taints: Any) -> float | None:
    """When our to-be-deleted taint was put on (its value, Unix seconds); None without one. A
    value that is not a number still marks the node (as of the epoch: long ago)."""
    for taint in taints or ():
        if taint.get("key") == TO_BE_DELETED_TAINT:
            try:
                return float(taint.get("value") or 0)
            except (TypeError, ValueError):
                return 0.0
    return None


def node_facts(node: RawObject) -> NodeFacts:
    meta = node.get("metadata") or {}
    spec = node.get("spec") or {}
    annotations = meta.get("annotations") or {}
    created = epoch_or_none(str(meta.get("creationTimestamp") or ""))
    ready_condition = next(
        (c for c in (node.get("status") or {}).get("conditions") or () if c.get("type") == "Ready"),
        None,
    )
    ready = bool(ready_condition and ready_condition.get("status") == "True")
    ever_ready = True
    if not ready and ready_condition is not None and created is not None:
        # NotReady since registration (never transitioned) is a node that never booted; a node
        # that was Ready and fell back is kept while it may recover.
        since = epoch_or_none(str(ready_condition.get("lastTransitionTime") or ""))
        ever_ready = since is None or since - created > _SAME_MOMENT_SECONDS
    return NodeFacts(
        instance_id=instance_id_of(str(spec.get("providerID") or "")),
        created_at=created,
        unschedulable=bool(spec.get("unschedulable")),
        ever_ready=ever_ready,
        # cluster-autoscaler compares the value with "true" exactly
        scale_down_disabled=annotations.get(SCALE_DOWN_DISABLED) == "true",
        marked_at=removal_mark(spec.get("taints")),
        removal_task=str(annotations.get(REMOVAL_TASK_ANNOTATION) or ""),
    )


class NodePods:
    """The fold: pod events of an all-namespaces `spec.nodeName!=` watch plus node events.

    `on_change(node_name)` is told whenever the set or state of a node's pods changes, so the
    unneeded-time tracker can stamp the moment a node became empty.
    """

    def __init__(self, intern: Interner, *, on_change: Callable[[str], None] | None = None) -> None:
        self._intern = intern
        self._on_change = on_change
        self.pods: dict[str, BoundPod] = {}  # uid -> pod
        self.by_node: dict[str, set[str]] = {}  # node name -> uids
        self.facts: dict[str, NodeFacts] = {}

    # --- pods ----------------------------------------------------------------------------------

    def apply_pod(self, event_type: str, pod: RawObject) -> None:
        meta = pod.get("metadata") or {}
        uid = meta.get("uid", "")
        if not uid:
            return
        spec = pod.get("spec") or {}
        phase = (pod.get("status") or {}).get("phase") or "Pending"
        node = spec.get("nodeName")
        if event_type == "DELETED" or not node or phase in FINISHED:
            self._drop(uid)
            return
        record = self._record(uid, meta, spec, node=node, phase=phase)
        previous = self.pods.get(uid)
        if previous == record:
            return
        if previous is not None and previous.node != record.node:
            self._drop(uid)
        self.pods[uid] = record
        self.by_node.setdefault(record.node, set()).add(uid)
        self._changed(record.node)

    def _record(
        self, uid: str, meta: Mapping[str, Any], spec: Mapping[str, Any], *, node: str, phase: str
    ) -> BoundPod:
        intern = self._intern
        labels = meta.get("labels") or {}
        ray_type = labels.get("ray.io/node-type")
        annotations = meta.get("annotations") or {}
        return BoundPod(
            uid=uid,
            namespace=intern.text(str(meta.get("namespace") or "")),
            name=str(meta.get("name") or ""),
            node=intern.text(node),
            owner_kind=owner_kind(meta),
            ray_node_type=ray_type if ray_type in ("head", "worker") else None,
            phase=intern.text(phase),
            pinned=str(annotations.get(SAFE_TO_EVICT, "")).lower() == "false",
            requests=intern.requests(spec) or intern.flat(None),
            node_selector=intern.flat(spec.get("nodeSelector")),
            affinity=intern.nested(spec.get("affinity") or {}),
            tolerations=intern.records(spec.get("tolerations")),
        )

    def _drop(self, uid: str) -> None:
        previous = self.pods.pop(uid, None)
        if previous is None:
            return
        held = self.by_node.get(previous.node)
        if held is not None:
            held.discard(uid)
            if not held:
                del self.by_node[previous.node]
        self._changed(previous.node)

    def forget_pods(self, keep: set[str]) -> None:
        """After a re-LIST: pods missing from it are gone."""
        for uid in [uid for uid in self.pods if uid not in keep]:
            self._drop(uid)

    def on_node(self, node_name: str) -> list[BoundPod]:
        return [self.pods[uid] for uid in sorted(self.by_node.get(node_name, ()))]

    # --- nodes ---------------------------------------------------------------------------------

    def apply_node(self, event_type: str, node: RawObject) -> None:
        name = (node.get("metadata") or {}).get("name")
        if not name:
            return
        if event_type == "DELETED":
            self.facts.pop(name, None)
        else:
            self.facts[name] = node_facts(node)
        self._changed(name)

    def forget_nodes(self, keep: set[str]) -> None:
        for name in [name for name in self.facts if name not in keep]:
            del self.facts[name]

    def _changed(self, node_name: str) -> None:
        if self._on_change is not None:
            self._on_change(node_name)
