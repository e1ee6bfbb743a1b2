"""One RayCluster's pods as the KubeRay operator's informer cache lists them, kept up to date from
the store's watch events instead of filtered out of every pod at each reconcile.

The controller lists a cluster's pods by the label `ray.io/cluster` (its cache keeps terminating
pods until they are gone). `ClusterPods` holds that list in the store's order, split by
`ray.io/node-type` and `ray.io/group`, with the counts the status needs (pods Running; worker
pods Running, and Running with Ready=True; worker pods Failed or Succeeded per group), so a
reconcile at 10k workers costs what the cluster's changes cost, not a pass over every pod.

`PodIndex` keeps one `ClusterPods` per (namespace, cluster). It applies the store's events in
order; a pod whose cluster, type or group label changes (never done by the operator, KubeRay or
Ray) makes it rebuild the clusters concerned from the store, so their order stays the store's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from agent.sim.kube.store import ObjectStore

ENDED = ("Failed", "Succeeded")

Key = tuple[str, str]  # (namespace, cluster name)


@dataclass(frozen=True)
class _Facts:
    """What the operator reads of one pod."""

    node_type: str
    group: str
    running: bool
    ready: bool
    ended: bool


def _facts(pod: Mapping[str, Any]) -> _Facts:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    status = pod.get("status") or {}
    phase = status.get("phase")
    running = phase == "Running"
    ready = running and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or ()
    )
    return _Facts(
        node_type=str(labels.get("ray.io/node-type") or ""),
        group=str(labels.get("ray.io/group")),
        running=running,
        ready=ready,
        ended=phase in ENDED,
    )


def cluster_of(pod: Mapping[str, Any]) -> Key | None:
    """The (namespace, cluster) whose list the pod is in, by its `ray.io/cluster` label."""
    meta = pod.get("metadata") or {}
    cluster = (meta.get("labels") or {}).get("ray.io/cluster")
    return None if cluster is None else (str(meta.get("namespace")), str(cluster))


class ClusterPods:
    """One RayCluster's pods, in the store's order, by type and group, with their counts."""

    def __init__(self, pods: Iterable[dict[str, Any]] = ()) -> None:
        self.pods: dict[str, dict[str, Any]] = {}
        self._facts: dict[str, _Facts] = {}
        self.heads: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, dict[str, Any]]] = {}  # worker pods by ray.io/group
        self.ended: Counter[str] = Counter()  # worker pods Failed or Succeeded, by group
        self.running = 0  # pods (head included) Running
        self.workers_running = 0
        self.workers_ready = 0
        for pod in pods:
            self.put(pod)

    def put(self, pod: dict[str, Any]) -> bool:
        """Add or update a pod; False (and nothing changed) when its type or group changed."""
        name = str(pod["metadata"]["name"])
        facts = _facts(pod)
        old = self._facts.get(name)
        if old is not None:
            if (old.node_type, old.group) != (facts.node_type, facts.group):
                return False
            self._count(old, -1)
        self.pods[name] = pod  # an update keeps the pod's place, as the store's table does
        self._facts[name] = facts
        if facts.node_type == "head":
            self.heads[name] = pod
        elif facts.node_type == "worker":
            self.groups.setdefault(facts.group, {})[name] = pod
        self._count(facts, 1)
        return True

    def remove(self, name: str) -> None:
        old = self._facts.pop(name, None)
        if old is None:
            return
        del self.pods[name]
        self.heads.pop(name, None)
        self.groups.get(old.group, {}).pop(name, None)
        self._count(old, -1)

    def _count(self, facts: _Facts, sign: int) -> None:
        self.running += sign * facts.running
        if facts.node_type == "worker":
            self.workers_running += sign * facts.running
            self.workers_ready += sign * facts.ready
            if facts.ended:
                self.ended[facts.group] += sign

    def members(self, group: str) -> dict[str, dict[str, Any]]:
        """The group's worker pods by name, in the store's order."""
        return self.groups.get(group, {})


class PodIndex:
    """Every RayCluster's `ClusterPods`, fed the store's pod events in order."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store
        self._clusters: dict[Key, ClusterPods] = {}
        for pod in store.list("pods")[0]:
            key = cluster_of(pod)
            if key is not None:
                self._clusters.setdefault(key, ClusterPods()).put(pod)

    def of(self, namespace: str, cluster: str) -> ClusterPods:
        return self._clusters.get((namespace, cluster)) or ClusterPods()

    def apply(
        self, kind: str, pod: dict[str, Any], previous: Mapping[str, Any] | None = None
    ) -> None:
        key = cluster_of(pod)
        old_key = cluster_of(previous) if previous is not None else key
        name = str(pod["metadata"]["name"])
        if kind == "DELETED":
            if key is not None and key in self._clusters:
                self._clusters[key].remove(name)
            return
        if old_key != key:
            self._rebuild(k for k in (old_key, key) if k is not None)
            return
        if key is None:
            return
        if not self._clusters.setdefault(key, ClusterPods()).put(pod):
            self._rebuild((key,))

    def _rebuild(self, keys: Iterable[Key]) -> None:
        """The clusters' lists again from the store: a label change leaves a pod in its place
        in the store's order, which appending it would not."""
        wanted = set(keys)
        fresh: dict[Key, ClusterPods] = {key: ClusterPods() for key in wanted}
        for pod in self._store.list("pods")[0]:
            key = cluster_of(pod)
            if key in wanted:
                fresh[key].put(pod)
        self._clusters.update(fresh)
