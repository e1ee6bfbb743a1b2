"""The cluster view: a fold of raw pod and node watch events into the compact state a decision
needs — unschedulable pods, nodes per pool, the ECI virtual node(s) and the pods bound there.

Only what the decide/v1 request carries is kept, and everything that repeats across the pods of
one Ray worker group (labels, requests, tolerations, affinity, the scheduler's message) is
interned, so a tracked pending pod costs well under 2 KB.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from agent.ingest.node_pods import NodePods
from agent.ingest.raw import Interner, RawObject
from agent.model import NodeState, PendingPod, Snapshot
from functions.contract import ECI_NODE_LABELS, POOL_LABEL

log = logging.getLogger(__name__)

FINISHED_PHASES = frozenset({"Succeeded", "Failed"})


def unschedulable_condition(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The PodScheduled=False/Unschedulable condition of a pending, unbound, live pod, else None."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    if spec.get("nodeName") or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return None
    if status.get("phase", "Pending") != "Pending":
        return None
    for condition in status.get("conditions") or ():
        if condition.get("type") == "PodScheduled":
            if condition.get("status") == "False" and condition.get("reason") == "Unschedulable":
                return condition  # type: ignore[no-any-return]
            return None
    return None


def _volume_types(spec: Mapping[str, Any]) -> tuple[str, ...]:
    kinds: list[str] = []
    for volume in spec.get("volumes") or ():
        for key in volume:
            if key != "name" and key not in kinds:
                kinds.append(key)
    return tuple(kinds)


def _privileged(spec: Mapping[str, Any]) -> bool:
    for group in ("containers", "initContainers"):
        for container in spec.get(group) or ():
            if (container.get("securityContext") or {}).get("privileged"):
                return True
    return False


def same_decision_inputs(previous: PendingPod, pod: RawObject, intern: Interner) -> bool:
    """Whether the still-pending `pod` carries what `previous` (its last fold) holds for the
    decision: labels, annotations, effective requests, nodeSelector, affinity, tolerations,
    hostNetwork, volume kinds, privileged. What makes a pod pending or not (nodeName,
    deletionTimestamp, phase, the PodScheduled condition's status and reason) is tested before,
    by `unschedulable_condition`.

    Left out on purpose: the resourceVersion, the condition's message and its lastTransitionTime.
    kube-scheduler rewrites the condition of every unschedulable pod whenever its message changes
    (the message counts the nodes), which is every node that registers or fills up; the decision
    never reads the message, and lastTransitionTime only moves when the status does
    (podutil.UpdatePodCondition keeps it otherwise), which takes the pod out of pending first.
    The kept pod's resourceVersion is then stale: the view records the new one in
    `ClusterView.versions`, which the request carries (the ECI patch's `test` is on it, and a
    stale one would make every such patch take the refusal, re-read and re-patch path of
    agent/actuate/eci_placement.py).

    Fields the API server keeps immutable on a pending pod (nodeSelector, affinity, volumes,
    privileged, hostNetwork: ValidatePodUpdate) are compared all the same: it is cheap, and the
    fold does not depend on that rule."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    return (
        previous.labels == (meta.get("labels") or {})
        and previous.annotations == (meta.get("annotations") or {})
        and previous.tolerations == tuple(spec.get("tolerations") or ())
        and previous.node_selector == (spec.get("nodeSelector") or {})
        and previous.affinity == (spec.get("affinity") or {})
        and previous.host_network == bool(spec.get("hostNetwork"))
        and previous.requests == intern.requests(spec)
        and previous.volume_types == _volume_types(spec)
        and previous.privileged == _privileged(spec)
    )


def is_node_ready(node: Mapping[str, Any]) -> bool:
    for condition in (node.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


class ClusterView:
    """The agent's fold of the watch streams. Three inputs, one per watch:

    * `pods` — unbound pods in scope: tracked while PodScheduled=False/Unschedulable;
    * `bound` — pods in scope bound to a node: only their node name is kept, to count those
      running on the ECI virtual node;
    * `nodes` — all nodes: readiness, pool id, and which are virtual;
    * `node_pods_sink` — every pod bound to a node, any namespace or label (scale-in only:
      `node_pods` keeps them compact, with the node facts scale-in needs).

    `on_pending` is told about each pod that starts being unschedulable (the batching trigger);
    `on_node_pods` about each node whose pods (or node object) changed.

    A pod one stream shows bound is never pending, whatever the unbound stream still says:
    spec.nodeName, once set, stays. The streams are separate reads — two watches, or two LISTs
    in `once` and the reconcile function, never one snapshot — so a pod bound between them
    arrives in both; counted pending too, it wanted a node while taking room on one, and a
    round raised a pool for it (agentless seed, 5 → 6 or 7 nodes).
    """

    def __init__(
        self,
        *,
        on_pending: Callable[[PendingPod], None] | None = None,
        on_node_pods: Callable[[str], None] | None = None,
        pool_label: str = POOL_LABEL,
        virtual_node_labels: Mapping[str, str] = ECI_NODE_LABELS,
    ) -> None:
        self._on_pending = on_pending
        self._pool_label = pool_label
        self._virtual_labels = dict(virtual_node_labels)
        self._intern = Interner()
        self.pending: dict[str, PendingPod] = {}
        self.refolds_skipped = 0  # MODIFIED events of pending pods that changed nothing it keeps
        # uid -> the latest resourceVersion of a pending pod whose last events were skipped
        # refolds (the kept PendingPod has an older one); gone when the pod is folded again.
        self.versions: dict[str, str] = {}
        # The last snapshot's pending pods in order, and the uids set or dropped since: a
        # snapshot re-sorts only when something moved (mostly-sorted input: timsort's best case).
        self._order: tuple[PendingPod, ...] = ()
        self._moved: set[str] = set()
        self.nodes: dict[str, NodeState] = {}
        self._bound: dict[str, str] = {}  # pod uid -> node name (interned)
        self.pods = _Sink(key=_uid, apply=self.apply_pod, forget=self._forget_pending)
        self.bound = _Sink(key=_uid, apply=self.apply_bound_pod, forget=self._forget_bound)
        self.nodes_sink = _Sink(key=_name, apply=self.apply_node, forget=self._forget_node)
        self.node_pods = NodePods(self._intern, on_change=on_node_pods)
        self.node_pods_sink = _Sink(
            key=_uid, apply=self.apply_node_pod, forget=self.node_pods.forget_pods
        )

    # --- pods waiting for capacity -------------------------------------------------------------

    def apply_pod(self, event_type: str, pod: RawObject) -> None:
        """Fold one event of the unbound-pods watch."""
        uid = _uid(pod)
        if not uid:
            return
        condition = None if event_type == "DELETED" else unschedulable_condition(pod)
        if condition is None or self.is_bound(uid):
            self._drop_pending(uid)
            return
        previous = self.pending.get(uid)
        if previous is not None:
            resource_version = (pod.get("metadata") or {}).get("resourceVersion", "")
            if resource_version == self.versions.get(uid, previous.resource_version):
                return  # this version was seen already
            if same_decision_inputs(previous, pod, self._intern):
                # Still pending, and nothing the decision reads changed (typically the scheduler
                # rewrote its message after a node came or filled up): keep the object, so the
                # request builder keeps its entry, and wake nobody; only the version moves.
                self.refolds_skipped += 1
                self.versions[uid] = resource_version
                return
        pending = self._pending_pod(pod, condition)
        self._moved.add(uid)
        self.versions.pop(uid, None)
        if pending is None:
            self.pending.pop(uid, None)
            return
        self.pending[uid] = pending
        if previous is None and self._on_pending is not None:
            self._on_pending(pending)

    def _pending_pod(self, pod: RawObject, condition: Mapping[str, Any]) -> PendingPod | None:
        intern = self._intern
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        requests = intern.requests(spec)
        if requests is None:
            log.warning(
                "pod %s/%s has an unparsable quantity; ignored",
                meta.get("namespace"),
                meta.get("name"),
            )
            return None
        return PendingPod(
            uid=meta.get("uid", ""),
            namespace=intern.text(meta.get("namespace", "")),
            name=meta.get("name", ""),
            resource_version=meta.get("resourceVersion", ""),
            labels=intern.flat(meta.get("labels")),
            annotations=intern.flat(meta.get("annotations")),
            requests=requests,
            node_selector=intern.flat(spec.get("nodeSelector")),
            affinity=intern.nested(spec.get("affinity") or {}),
            tolerations=intern.records(spec.get("tolerations")),
            host_network=bool(spec.get("hostNetwork")),
            volume_types=intern.tuple_of_text(_volume_types(spec)),
            privileged=_privileged(spec),
            unschedulable_since=intern.text(condition.get("lastTransitionTime") or ""),
            message=intern.text(condition.get("message") or ""),
        )

    def is_bound(self, uid: str) -> bool:
        """Whether a pod stream has shown this pod bound to a node (and not finished since)."""
        return uid in self._bound or uid in self.node_pods.pods

    def _drop_pending(self, uid: str) -> None:
        if self.pending.pop(uid, None) is not None:
            self._moved.add(uid)
            self.versions.pop(uid, None)

    def _forget_pending(self, keep: set[str]) -> None:
        for uid in [uid for uid in self.pending if uid not in keep]:
            del self.pending[uid]
            self._moved.add(uid)
            self.versions.pop(uid, None)

    # --- pods bound somewhere (ECI counting) ---------------------------------------------------

    def apply_bound_pod(self, event_type: str, pod: RawObject) -> None:
        """Fold one event of the bound-pods watch."""
        uid = _uid(pod)
        if not uid:
            return
        node_name = (pod.get("spec") or {}).get("nodeName")
        phase = (pod.get("status") or {}).get("phase")
        if event_type == "DELETED" or not node_name or phase in FINISHED_PHASES:
            self._bound.pop(uid, None)
        else:
            self._bound[uid] = self._intern.text(node_name)
            self._drop_pending(uid)

    def apply_node_pod(self, event_type: str, pod: RawObject) -> None:
        """Fold one event of the all-namespaces bound-pods watch (`node_pods`)."""
        self.node_pods.apply_pod(event_type, pod)
        uid = _uid(pod)
        if uid in self.node_pods.pods:
            self._drop_pending(uid)

    def _forget_bound(self, keep: set[str]) -> None:
        for uid in [uid for uid in self._bound if uid not in keep]:
            del self._bound[uid]

    @property
    def eci_running_pods(self) -> int:
        virtual = {name for name, node in self.nodes.items() if node.virtual}
        if not virtual:
            return 0
        return sum(1 for node_name in self._bound.values() if node_name in virtual)

    # --- nodes ---------------------------------------------------------------------------------

    def apply_node(self, event_type: str, node: RawObject) -> None:
        """Fold one event of the nodes watch."""
        meta = node.get("metadata") or {}
        name = meta.get("name")
        if not name:
            return
        if event_type == "DELETED":
            self.nodes.pop(name, None)
            self.node_pods.apply_node(event_type, node)
            return
        labels = meta.get("labels") or {}
        virtual = bool(self._virtual_labels) and all(
            labels.get(k) == v for k, v in self._virtual_labels.items()
        )
        intern = self._intern
        self.nodes[name] = NodeState(
            name=name,
            pool_id=None if virtual else labels.get(self._pool_label),
            ready=is_node_ready(node),
            virtual=virtual,
            allocatable=intern.flat((node.get("status") or {}).get("allocatable")),
            labels=intern.flat(labels),
            taints=intern.records((node.get("spec") or {}).get("taints")),
        )
        self.node_pods.apply_node(event_type, node)

    def _forget_node(self, keep: set[str]) -> None:
        self.node_pods.forget_nodes(keep)
        for name in [name for name in self.nodes if name not in keep]:
            del self.nodes[name]

    # --- output --------------------------------------------------------------------------------

    def nodes_by_pool(self) -> dict[str, list[NodeState]]:
        pools: dict[str, list[NodeState]] = {}
        for node in self.nodes.values():
            if node.pool_id is not None:
                pools.setdefault(node.pool_id, []).append(node)
        return pools

    def snapshot(self) -> Snapshot:
        """One consistent picture, oldest unschedulable pods first (stable order for the decider)."""
        if self._moved or len(self._order) != len(self.pending):
            moved = self._moved
            order = [p for p in self._order if p.uid not in moved]
            order.extend(self.pending[uid] for uid in moved if uid in self.pending)
            if len(order) != len(self.pending):  # `pending` changed behind the fold's back
                order = list(self.pending.values())
            # One string per pod, not a tuple: no garbage-collected objects at 100k pods.
            order.sort(key=_pending_order)
            self._order = tuple(order)
            self._moved = set()
        return Snapshot(
            pending=self._order,
            nodes=tuple(self.nodes[name] for name in sorted(self.nodes)),
            eci_running_pods=self.eci_running_pods,
        )


class _Sink:
    """What a watcher feeds: `apply` per event; after a full LIST, `relisted` with the keys seen,
    so objects that vanished while the watch was down leave the view."""

    def __init__(
        self,
        *,
        key: Callable[[RawObject], str],
        apply: Callable[[str, RawObject], None],
        forget: Callable[[set[str]], None],
    ) -> None:
        self.key = key
        self.apply = apply
        self._forget = forget

    def relisted(self, keys: set[str]) -> None:
        self._forget(keys)


def _pending_order(pod: PendingPod) -> str:
    # (unschedulable_since, uid) as one string: NUL sorts below any character either holds.
    return f"{pod.unschedulable_since}\0{pod.uid}"


def _uid(obj: RawObject) -> str:
    return (obj.get("metadata") or {}).get("uid", "")


def _name(obj: RawObject) -> str:
    return (obj.get("metadata") or {}).get("name", "")
