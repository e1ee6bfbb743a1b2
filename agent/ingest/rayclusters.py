"""RayCluster demand: the worker pods KubeRay is about to create, counted before they exist.

Ray's autoscaler states its demand on the RayCluster (`spec.workerGroupSpecs[i].replicas`, and
`scaleStrategy.workersToDelete` on the way down); the KubeRay operator then creates the worker
pods, and only after the scheduler marks them Unschedulable do the pod watches see demand. This
module owns the fold of the `ray.io/v1 rayclusters` watch and of the worker pods that exist per
group, and answers one question each round: which workers are wanted but have no pod yet.

Each such missing worker becomes an *anticipated* entry of the decide/v1 request
(docs/decide-contract.md), built from the group's pod template exactly as a pending pod is built
from a pod (the view's own fold, fed a pod-like object). Missing = wanted − existing is
recomputed from the view every round, with nothing remembered between rounds: once the operator
creates a pod, it counts as existing and replaces its anticipated entry (and the pool's upcoming
room, raised for the anticipated entry, absorbs the real pod), so capacity is counted once.

What KubeRay does, and so what is modelled (ray-project/kuberay, ray-operator/controllers/ray/):
- wanted pods per group: utils/util.go `GetWorkerGroupDesiredReplicas` — 0 when the group is
  suspended, else `replicas` clamped to [minReplicas, maxReplicas] (defaults 0 and 2^31-1),
  times `numOfHosts`; a suspended cluster (`spec.suspend`) deletes every pod
  (raycluster_controller.go), so it wants none;
- the pods of a group: common/association.go `RayClusterGroupPodsAssociationOptions` — the
  cluster's namespace, labels ray.io/cluster=NAME and ray.io/group=GROUP;
- raycluster_controller.go `reconcilePods` deletes the pods named in `workersToDelete` first and
  does not count them, deletes Failed/Succeeded pods (`shouldDeletePod`) and creates the
  difference: so neither counts as existing here.
- the worker pod: common/pod.go `DefaultWorkerPodTemplate` — the group's template, labels from
  `labelPod` (ray.io/cluster, ray.io/group, ray.io/node-type=worker, ray.io/is-ray-node=yes,
  which a template cannot override), and the `wait-gcs-ready` init container (200m / 256Mi).

One deliberate difference: KubeRay counts a terminating pod (deletionTimestamp set) as existing
until it is gone and only then creates its replacement; here it does not count, so the
replacement is demand as soon as the old pod starts terminating (it will be wanted moments
later, and its old node may be the one going away).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agent.ingest.label_selector import Matcher, parse_selector
from agent.ingest.raw import RawObject
from agent.ingest.view import ClusterView
from agent.model import PendingPod

log = logging.getLogger(__name__)

CLUSTER_LABEL = "ray.io/cluster"
GROUP_LABEL = "ray.io/group"
NODE_TYPE_LABEL = "ray.io/node-type"
RAY_NODE_LABEL = "ray.io/is-ray-node"
ANTICIPATED_PREFIX = "anticipated/"  # the uid of an anticipated entry: no pod has a uid like it
FINISHED_PHASES = frozenset({"Succeeded", "Failed"})
INT32_MAX = 2**31 - 1
# A CR can ask for any int32 of workers; one decision takes at most 200,000 pods
# (functions/scaleout/validate.py). More than this per group is cut, with a warning.
MAX_ANTICIPATED_PER_GROUP = 10_000
# KubeRay injects it into every worker unless ENABLE_INIT_CONTAINER_INJECTION=false
# (common/pod.go, DefaultWorkerPodTemplate): it counts in the pod's effective requests.
WAIT_GCS_READY = {
    "name": "wait-gcs-ready",
    "resources": {
        "requests": {"cpu": "200m", "memory": "256Mi"},
        "limits": {"cpu": "200m", "memory": "256Mi"},
    },
}

GroupKey = tuple[str, str, str]  # (namespace, RayCluster name, group name)


def wanted_workers(group: Mapping[str, Any], *, cluster_suspended: bool = False) -> int:
    """The worker pods KubeRay keeps for one `workerGroupSpecs` entry."""
    if cluster_suspended or group.get("suspend") is True:
        return 0
    low = _int(group.get("minReplicas"), 0)
    high = _int(group.get("maxReplicas"), INT32_MAX)
    replicas = group.get("replicas")
    if not isinstance(replicas, int) or replicas < low:
        wanted = low
    elif replicas > high:
        wanted = high
    else:
        wanted = replicas
    return max(0, wanted) * max(1, _int(group.get("numOfHosts"), 1))


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def worker_pod(cluster: RawObject, group: Mapping[str, Any], *, uid: str) -> dict[str, Any]:
    """The pod KubeRay would create for `group`, as much of it as a decision reads, marked
    Unschedulable so the view folds it as a pending pod (nothing else reads that condition)."""
    meta = cluster.get("metadata") or {}
    template = group.get("template") or {}
    template_meta = template.get("metadata") or {}
    spec = dict(template.get("spec") or {})
    spec.pop("nodeName", None)
    spec["initContainers"] = [WAIT_GCS_READY, *(spec.get("initContainers") or ())]
    name = str(meta.get("name", ""))
    group_name = str(group.get("groupName", ""))
    labels = {
        **(template_meta.get("labels") or {}),
        RAY_NODE_LABEL: "yes",
        CLUSTER_LABEL: name,
        NODE_TYPE_LABEL: "worker",
        GROUP_LABEL: group_name,
    }
    return {
        "metadata": {
            "uid": uid,
            "name": f"{name}-{group_name}-anticipated",
            "namespace": meta.get("namespace", ""),
            "resourceVersion": meta.get("resourceVersion", ""),
            "labels": labels,
            "annotations": dict(template_meta.get("annotations") or {}),
        },
        "spec": spec,
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "lastTransitionTime": "",
                    "message": f"anticipated: RayCluster {name} wants more {group_name} workers",
                }
            ],
        },
    }


@dataclass(frozen=True)
class GroupWant:
    """One worker group of one RayCluster: how many pods it wants, which of its pods are about
    to go, and the worker its template describes (None when no pending pod can be built from it:
    an unparsable quantity)."""

    key: GroupKey
    wanted: int
    to_delete: frozenset[str]
    prototype: PendingPod | None


class GroupPods:
    """The worker pods that exist, per (namespace, cluster, group), fed by both pod watches in
    scope (unbound and bound). Kept per stream: a pod getting bound leaves one stream and joins
    the other in either order, and is counted once while in either."""

    def __init__(self) -> None:
        self.unbound = _PodSink()
        self.bound = _PodSink()

    def of(self, key: GroupKey) -> dict[str, str]:
        """The group's live pods, uid → name."""
        return {**self.unbound.by_key.get(key, {}), **self.bound.by_key.get(key, {})}

    def at_most(self, key: GroupKey) -> int:
        """An upper bound of `len(of(key))` in O(1): a pod in both streams counts twice."""
        return len(self.unbound.by_key.get(key, ())) + len(self.bound.by_key.get(key, ()))


class _PodSink:
    def __init__(self) -> None:
        self._keys: dict[str, GroupKey] = {}  # uid -> its group
        self.by_key: dict[GroupKey, dict[str, str]] = {}  # group -> uid -> name

    def key(self, obj: RawObject) -> str:
        return (obj.get("metadata") or {}).get("uid", "")

    def apply(self, event_type: str, obj: RawObject) -> None:
        meta = obj.get("metadata") or {}
        uid = meta.get("uid", "")
        labels = meta.get("labels") or {}
        cluster, group = labels.get(CLUSTER_LABEL), labels.get(GROUP_LABEL)
        if (
            event_type == "DELETED"
            or not uid
            or not cluster
            or not group
            or labels.get(NODE_TYPE_LABEL) == "head"
            or meta.get("deletionTimestamp")
            or (obj.get("status") or {}).get("phase") in FINISHED_PHASES
        ):
            self._drop(uid)
            return
        key = (meta.get("namespace", ""), cluster, group)
        if self._keys.get(uid, key) != key:
            self._drop(uid)
        self._keys[uid] = key
        self.by_key.setdefault(key, {})[uid] = meta.get("name", "")

    def _drop(self, uid: str) -> None:
        key = self._keys.pop(uid, None)
        if key is None:
            return
        pods = self.by_key[key]
        del pods[uid]
        if not pods:
            del self.by_key[key]

    def relisted(self, keys: set[str]) -> None:
        for uid in [uid for uid in self._keys if uid not in keys]:
            self._drop(uid)


class RayClusterDemand:
    """The fold of the RayCluster watch (`sink`) and of the worker pods (`pods`), and the
    anticipated workers (`missing()`).

    `on_raise` is told, with a key for the batcher, when a CR change leaves a group with workers
    missing: the same trigger a newly pending pod pulls, so a burst of CR writes is one round.
    Groups are in scope when the RayCluster is `ray_cluster` (if set) and KubeRay's worker labels
    plus the template's match `selector` (the pod watches' selector): workers the agent would not
    see as pods are not anticipated either."""

    def __init__(
        self,
        *,
        on_raise: Callable[[str], None] | None = None,
        selector: str = "",
        ray_cluster: str | None = None,
    ) -> None:
        self._on_raise = on_raise
        self._ray_cluster = ray_cluster
        try:
            self._matches: Matcher = parse_selector(selector)
        except ValueError as error:
            log.warning("pod selector not understood (%s): no RayCluster worker anticipated", error)
            self._matches = lambda labels: False
        self._converter = ClusterView()  # the pending-pod fold, fed the template's pod
        self.clusters: dict[str, tuple[GroupWant, ...]] = {}  # by CR uid
        self.pods = GroupPods()
        self.sink = _ClusterSink(self)

    # --- the RayCluster watch --------------------------------------------------------------

    def apply_cluster(self, event_type: str, cluster: RawObject) -> None:
        meta = cluster.get("metadata") or {}
        uid = meta.get("uid", "")
        if not uid:
            return
        if event_type == "DELETED" or (
            self._ray_cluster is not None and meta.get("name") != self._ray_cluster
        ):
            self.clusters.pop(uid, None)
            return
        before = {g.key: g for g in self.clusters.get(uid, ())}
        wants = self._wants(cluster)
        self.clusters[uid] = wants
        if self._on_raise is None:
            return
        for want in wants:
            old = before.get(want.key)
            if old is not None and (old.wanted, old.to_delete) == (want.wanted, want.to_delete):
                continue
            if _missing(want, self.pods.of(want.key)) > 0:
                self._on_raise(f"raycluster/{uid}/{meta.get('resourceVersion', '')}")
                return

    def _wants(self, cluster: RawObject) -> tuple[GroupWant, ...]:
        meta = cluster.get("metadata") or {}
        spec = cluster.get("spec") or {}
        suspended = spec.get("suspend") is True or bool(meta.get("deletionTimestamp"))
        wants: list[GroupWant] = []
        for group in spec.get("workerGroupSpecs") or ():
            if not isinstance(group, Mapping) or not group.get("groupName"):
                continue
            key = (str(meta.get("namespace", "")), str(meta.get("name", "")), group["groupName"])
            pod = worker_pod(cluster, group, uid=f"{ANTICIPATED_PREFIX}{meta['uid']}/{key[2]}")
            if not self._matches(pod["metadata"]["labels"]):
                continue
            strategy = group.get("scaleStrategy") or {}
            to_delete = frozenset(
                str(n) for n in strategy.get("workersToDelete") or () if isinstance(n, str)
            )
            wants.append(
                GroupWant(
                    key=key,
                    wanted=wanted_workers(group, cluster_suspended=suspended),
                    to_delete=to_delete,
                    prototype=self._prototype(pod),
                )
            )
        return tuple(wants)

    def _prototype(self, pod: dict[str, Any]) -> PendingPod | None:
        converter = self._converter
        converter.apply_pod("ADDED", pod)  # type: ignore[arg-type]
        return converter.pending.pop(pod["metadata"]["uid"], None)

    def forget_clusters(self, keep: set[str]) -> None:
        for uid in [uid for uid in self.clusters if uid not in keep]:
            del self.clusters[uid]

    # --- output --------------------------------------------------------------------------------

    def missing(self) -> tuple[PendingPod, ...]:
        """The anticipated workers now: per group in scope, wanted − existing (never below 0),
        each as a pending pod with a stable uid (the group's prototype, numbered)."""
        entries: list[PendingPod] = []
        for uid in sorted(self.clusters):
            for want in self.clusters[uid]:
                if want.prototype is None:
                    continue
                count = _missing(want, self.pods.of(want.key))
                if count > MAX_ANTICIPATED_PER_GROUP:
                    log.warning(
                        "RayCluster %s/%s group %s: %d workers missing, anticipating %d",
                        *want.key,
                        count,
                        MAX_ANTICIPATED_PER_GROUP,
                    )
                    count = MAX_ANTICIPATED_PER_GROUP
                base = want.prototype
                entries.extend(
                    dataclasses.replace(base, uid=f"{base.uid}/{i}", name=f"{base.name}-{i}")
                    for i in range(count)
                )
        return tuple(entries)

    def announced(self, namespace: str, labels: Mapping[str, str]) -> bool:
        """Whether a pod (just seen pending) is one its RayCluster already asked for — its group
        wants at least as many workers as exist — so a round has decided for it as an
        anticipated worker. O(1) per pod, conservative: a pod in both pod streams counts twice,
        which can only make the answer False."""
        key = (namespace, labels.get(CLUSTER_LABEL, ""), labels.get(GROUP_LABEL, ""))
        for wants in self.clusters.values():
            for want in wants:
                if want.key == key:
                    return self.pods.at_most(key) <= want.wanted
        return False


def _missing(want: GroupWant, pods: Mapping[str, str]) -> int:
    existing = sum(1 for name in pods.values() if name not in want.to_delete)
    return max(0, want.wanted - existing)


def is_anticipated(uid: str) -> bool:
    return uid.startswith(ANTICIPATED_PREFIX)


class _ClusterSink:
    def __init__(self, demand: RayClusterDemand) -> None:
        self._demand = demand

    def key(self, obj: RawObject) -> str:
        return (obj.get("metadata") or {}).get("uid", "")

    def apply(self, event_type: str, obj: RawObject) -> None:
        self._demand.apply_cluster(event_type, obj)

    def relisted(self, keys: set[str]) -> None:
        self._demand.forget_clusters(keys)
