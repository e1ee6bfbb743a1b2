"""A KubeRay operator stand-in: reconciles every `ray.io/v1` RayCluster in the store into a head
pod and worker pods, and writes the RayCluster's status, as KubeRay's RayClusterReconciler does
(ray-operator/controllers/ray/raycluster_controller.go, common/pod.go, utils/util.go and
expectations/scale_expectations.go in github:ray-project/kuberay at feeaf72f). What it does, each
with its source:

- It reconciles a cluster after a change of the RayCluster's generation, labels or annotations,
  or of a pod it owns (SetupWithManager: GenerationChangedPredicate, LabelChangedPredicate,
  AnnotationChangedPredicate; Owns(Pod)) — so a status write alone triggers nothing — plus the
  unconditional requeue after RAYCLUSTER_DEFAULT_REQUEUE_SECONDS (300 s), or after
  DefaultRequeueDuration (2 s) when the reconcile failed. Each reconcile runs `delay` seconds after
  its trigger (see raycluster_spec.OPERATOR_DELAY_SECONDS for the number).
- Head: none → it creates one; one Failed or Succeeded → it deletes it (shouldDeletePod) and the
  next reconcile creates a new one.
- Workers, per group (reconcilePods): Failed/Succeeded pods are deleted, and nothing is created
  in that reconcile; then every pod named in `scaleStrategy.workersToDelete` is deleted, whatever
  `replicas` says. The list is NOT cleared in the object: the controller only empties its local
  copy (`worker.ScaleStrategy.WorkersToDelete = []string{}`); clearing it is the Ray autoscaler's
  job (ray's KubeRayNodeProvider.safe_to_scale). Then the wanted count is `replicas` clamped to
  [minReplicas, maxReplicas] (GetWorkerGroupDesiredReplicas), compared with the group's pods —
  terminating ones included, as the cache lists them — minus those just deleted. Missing pods
  are created; extra pods are deleted (the first ones listed) only when enableInTreeAutoscaling
  is off: with it on, the autoscaler alone names pods to delete. A group whose pods this
  operator deleted is skipped until they are gone (the scale expectations).
- Pods: named by generateName `<cluster>-head-` / `<cluster>-<group>-worker-` (utils.PodName),
  labelled by labelPod (the template's labels, then ray.io/is-ray-node, ray.io/cluster,
  ray.io/node-type, ray.io/group, ray.io/identifier, app.kubernetes.io/name and created-by, the
  first three not overridable), owned by the RayCluster (controller ownerReference with its uid),
  container args the generated `ulimit -n ...; ray start ...` line (BuildPod,
  generateRayStartCommand, setMissingRayStartParams, convertParamMap).
- Status (calculateStatus, written through the status subresource only when it changed, with
  lastUpdateTime): readyWorkerReplicas (Running with Ready=True), availableWorkerReplicas
  (Running), desiredWorkerReplicas, min/maxWorkerReplicas, desiredCPU/Memory/GPU,
  observedGeneration, and state `ready` once the head and every wanted worker exist and run.

Simplified: no head Service, no GCS fault tolerance, no suspend, no multi-host groups, no
upgrade strategy; pod names are drawn from a seeded random in the API server's generateName
alphabet, so a seed reproduces them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Mapping
from typing import Any

from agent.sim.kube.store import ApiError, ObjectStore, Subscription, copy_json
from agent.sim.world.clock import SimClock
from agent.sim.world.nodes import delete_pod_gracefully
from agent.sim.world.raycluster_pods import ENDED, ClusterPods, PodIndex, cluster_of
from agent.sim.world.raycluster_spec import OPERATOR_DELAY_SECONDS
from functions.quantity import parse_quantity

log = logging.getLogger(__name__)

REQUEUE_SECONDS = 300.0  # utils.RAYCLUSTER_DEFAULT_REQUEUE_SECONDS
ERROR_REQUEUE_SECONDS = 2.0  # DefaultRequeueDuration
METRICS_PORT = "8080"  # utils.DefaultMetricsPort
DASHBOARD_AGENT_PORT = "52365"  # utils.DefaultDashboardAgentListenPort
HEAD_PORT = "6379"
INT32_MAX = 2147483647
# generateName's suffix characters (k8s.io/apimachinery/pkg/util/rand: alphanums, no vowels and
# no look-alike digits)
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

Key = tuple[str, str]  # (namespace, name)


def desired_replicas(group: Mapping[str, Any]) -> int:
    """utils.GetWorkerGroupDesiredReplicas: replicas within [minReplicas, maxReplicas], times
    numOfHosts; 0 for a suspended group."""
    if group.get("suspend"):
        return 0
    low = int(group.get("minReplicas") or 0)
    high = INT32_MAX if group.get("maxReplicas") is None else int(group["maxReplicas"])
    replicas = group.get("replicas")
    wanted = low if replicas is None or replicas < low else min(int(replicas), high)
    return wanted * max(1, int(group.get("numOfHosts") or 1))


def _owned_by(pod: Mapping[str, Any]) -> str | None:
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("kind") == "RayCluster" and ref.get("controller"):
            return str(ref.get("name"))
    return None


def _terminating(pod: Mapping[str, Any]) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def _start_command(
    node_type: str, params: Mapping[str, Any], container: Mapping[str, Any], address: str
) -> str:
    """generateRayStartCommand over setMissingRayStartParams: num-cpus and memory from the
    container's limits, the GPU count, --block, and the ports KubeRay always sets; flags sorted;
    "true" a bare switch."""
    complete = {str(k): str(v) for k, v in params.items()}
    if node_type == "worker":
        complete.setdefault("address", address)
    else:
        complete.setdefault("dashboard-host", "0.0.0.0")
    complete.setdefault("metrics-export-port", METRICS_PORT)
    complete["block"] = "true"
    complete.setdefault("dashboard-agent-listen-port", DASHBOARD_AGENT_PORT)
    resources = container.get("resources") or {}
    limits = resources.get("limits") or {}
    requests = resources.get("requests") or {}
    cpu = limits.get("cpu") or requests.get("cpu")
    if "num-cpus" not in complete and cpu:
        complete["num-cpus"] = str(parse_quantity(str(cpu)) // 1000)  # Quantity.Value(): whole
    if "memory" not in complete and limits.get("memory"):
        complete["memory"] = str(parse_quantity(str(limits["memory"])) // 1000)
    if "num-gpus" not in complete and limits.get("nvidia.com/gpu"):
        complete["num-gpus"] = str(parse_quantity(str(limits["nvidia.com/gpu"])) // 1000)
    flags = []
    for option in sorted(complete):
        value = complete[option]
        if value.lower() in ("true", "false"):
            if value.lower() == "true":
                flags.append(f"--{option}")
        else:
            flags.append(f"--{option}={value}")
    head = " --head" if node_type == "head" else ""
    return f"ray start{head} " + " ".join(flags)


class KubeRayOperator:
    """A SimCluster component reconciling every RayCluster in the store."""

    def __init__(
        self,
        store: ObjectStore,
        clock: SimClock,
        *,
        delay_seconds: float = OPERATOR_DELAY_SECONDS,
        seed: int = 0,
    ) -> None:
        self._store = store
        self._clock = clock
        self.delay_seconds = delay_seconds
        self._rng = random.Random(seed)
        self._subscription: Subscription | None = None
        # the pods by cluster, kept from the subscription's events once started (a reconcile
        # called without start() reads the store instead)
        self._index: PodIndex | None = None
        self._loop: asyncio.Task[None] | None = None
        self._timers: dict[Key, tuple[float, asyncio.TimerHandle | asyncio.Task[None]]] = {}
        self._deleting: dict[tuple[str, str, str], set[str]] = {}  # (ns, cluster, group) → pods
        self._seen: dict[Key, tuple[int, Any, Any]] = {}  # generation, labels, annotations
        self.reconciles = 0

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._subscription = self._store.subscribe(resources=("rayclusters", "pods"))
        self._index = PodIndex(self._store)  # no await since subscribing: no event missed
        for cluster in self._store.list("rayclusters")[0]:
            self._watched(cluster, deleted=False)
        self._loop = asyncio.create_task(self._follow(), name="kuberay-operator")

    async def stop(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
        for _, timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None

    # -- triggers -----------------------------------------------------------------------------

    async def _follow(self) -> None:
        assert self._subscription is not None
        while True:
            await self._subscription.wait()
            self._sync()
            if self._subscription.closed:
                return

    def _sync(self) -> None:
        """Take in every event published so far: the triggers, and the pod index. A reconcile
        calls it before it reads, so it sees the store as it is, its own writes included."""
        if self._subscription is None:
            return
        for event in self._subscription.drain():
            if event.resource == "rayclusters":
                self._watched(event.object, deleted=event.type == "DELETED")
                continue
            if self._index is not None:
                self._index.apply(event.type, event.object, event.previous)
            owner = _owned_by(event.object)
            if owner is not None:
                namespace = str(event.object["metadata"].get("namespace"))
                self._enqueue((namespace, owner), self.delay_seconds)

    def _watched(self, cluster: Mapping[str, Any], *, deleted: bool) -> None:
        meta = cluster.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        if deleted:
            self._seen.pop(key, None)
            return
        seen = (int(meta.get("generation") or 0), meta.get("labels"), meta.get("annotations"))
        if self._seen.get(key) != seen:  # the predicates: a status write alone is not a change
            self._seen[key] = seen
            self._enqueue(key, self.delay_seconds)

    def _enqueue(self, key: Key, after: float) -> None:
        """Reconcile `key` in `after` seconds, unless one is already due sooner (the work
        queue holds each key once)."""
        due = self._clock.now() + after
        current = self._timers.get(key)
        if current is not None:
            if current[0] <= due:
                return
            current[1].cancel()
        self._timers[key] = (due, asyncio.create_task(self._later(key, after)))

    async def _later(self, key: Key, after: float) -> None:
        await self._clock.sleep(after)
        self._timers.pop(key, None)
        try:
            failed = self.reconcile(*key)
        except Exception:  # one bad reconcile must not stop the operator
            log.exception("reconciling RayCluster %s/%s failed", *key)
            failed = True
        if failed is None:
            return  # the RayCluster is gone
        self._enqueue(key, ERROR_REQUEUE_SECONDS if failed else REQUEUE_SECONDS)

    # -- reconcile ----------------------------------------------------------------------------

    def reconcile(self, namespace: str, name: str) -> bool | None:
        """One reconcile of a RayCluster: pods, then status. Returns whether it failed (and is
        retried soon), None when the RayCluster does not exist."""
        self.reconciles += 1
        try:
            cluster = self._store.get("rayclusters", name, namespace=namespace)
        except ApiError:
            return None
        if (cluster.get("metadata") or {}).get("deletionTimestamp"):
            return False
        pods = self._pods_of(namespace, name)
        failed = self._reconcile_head(cluster, list(pods.heads.values()))
        if not failed:
            failed = self._reconcile_workers(cluster, pods)
        self._write_status(namespace, name)
        return failed

    def _pods_of(self, namespace: str, cluster: str) -> ClusterPods:
        """The cluster's pods, by label ray.io/cluster, as the controller's List does (its
        informer cache keeps terminating pods until they are gone), oldest first."""
        if self._index is None:
            pods, _ = self._store.list("pods", namespace=namespace)
            return ClusterPods(p for p in pods if cluster_of(p) == (namespace, cluster))
        self._sync()
        return self._index.of(namespace, cluster)

    def _reconcile_head(self, cluster: dict[str, Any], heads: list[dict[str, Any]]) -> bool:
        if not heads:
            self._create_pod(cluster, "head", cluster["spec"]["headGroupSpec"], "headgroup")
            return False
        if len(heads) > 1:
            return True  # "Please delete extra head pods": an error, retried
        head = heads[0]
        if (head.get("status") or {}).get("phase") in ENDED:
            self._delete(head)
            return True
        return False

    def _reconcile_workers(self, cluster: dict[str, Any], pods: ClusterPods) -> bool:
        for group in cluster["spec"].get("workerGroupSpecs") or ():
            if self._reconcile_group(cluster, group, pods):
                return True
        return False

    def _reconcile_group(
        self, cluster: dict[str, Any], group: Mapping[str, Any], pods: ClusterPods
    ) -> bool:
        """One worker group; returns whether the reconcile ends here with an error."""
        meta = cluster["metadata"]
        group_name = str(group.get("groupName"))
        # the list as the reconcile began: its own deletes and creates are taken in when the
        # status is written (the next _sync), as the controller's one List is
        members = pods.members(group_name)
        expected = (meta["namespace"], meta["name"], group_name)
        waiting = self._deleting.get(expected, set())
        if waiting:
            waiting = {name for name in waiting if name in members}
        if waiting:
            self._deleting[expected] = waiting
            return False  # the scale expectations: its deletions are not done yet
        self._deleting[expected] = waiting
        if group.get("suspend"):
            for pod in list(members.values()):
                self._delete(pod)
            return False
        unhealthy = (
            [p for p in members.values() if (p.get("status") or {}).get("phase") in ENDED]
            if pods.ended[group_name]
            else []
        )
        if unhealthy:
            for pod in unhealthy:
                self._delete(pod)
                waiting.add(pod["metadata"]["name"])
            return True  # "delete N unhealthy worker Pods": no creates this time
        deleted: set[str] = set()
        named = (group.get("scaleStrategy") or {}).get("workersToDelete") or ()
        if named:
            for pod_name in named:
                if pod_name in members and self._delete(members[pod_name]):
                    deleted.add(pod_name)
        waiting |= deleted
        diff = desired_replicas(group) - (len(members) - len(deleted))
        for _ in range(diff):
            self._create_pod(cluster, "worker", group, group_name)
        if diff < 0 and not cluster["spec"].get("enableInTreeAutoscaling"):
            remaining = [p for name, p in members.items() if name not in deleted]
            for pod in remaining[:-diff]:
                if self._delete(pod):
                    waiting.add(pod["metadata"]["name"])
        return False

    # -- pods ---------------------------------------------------------------------------------

    def _delete(self, pod: Mapping[str, Any]) -> bool:
        """DELETE the pod (a graceful delete, as any client's); False when it was gone."""
        meta = pod["metadata"]
        try:
            delete_pod_gracefully(self._store, self._clock, meta["namespace"], meta["name"])
        except ApiError:
            return False
        return True

    def _create_pod(
        self, cluster: dict[str, Any], node_type: str, group: Mapping[str, Any], group_name: str
    ) -> None:
        meta = cluster["metadata"]
        name, namespace = meta["name"], meta["namespace"]
        template = copy_json(group.get("template") or {})
        template_meta = template.get("metadata") or {}
        pod_spec = template.get("spec") or {}
        labels = {
            "ray.io/is-ray-node": "yes",
            "ray.io/cluster": name,
            "ray.io/node-type": node_type,
            "ray.io/group": group_name,
            "ray.io/identifier": f"{name}-{node_type}",
            "app.kubernetes.io/name": "kuberay",
            "app.kubernetes.io/created-by": "kuberay-operator",
        }
        for key, value in (template_meta.get("labels") or {}).items():
            if key not in ("ray.io/node-type", "ray.io/group", "ray.io/cluster"):
                labels[key] = value
        annotations = dict(template_meta.get("annotations") or {})
        if node_type == "head":
            annotations.setdefault("ray.io/ft-enabled", "false")
        containers = pod_spec.get("containers") or [{"name": f"ray-{node_type}"}]
        ray_container = containers[0]
        address = f"{name}-head-svc.{namespace}.svc.cluster.local:{HEAD_PORT}"
        command = _start_command(
            node_type, group.get("rayStartParams") or {}, ray_container, address
        )
        ray_container["args"] = [f"ulimit -n ${{RAY_START_ULIMIT_OPEN_FILES:-65536}}; {command}"]
        pod_spec.setdefault("restartPolicy", "Always")
        pod_spec.setdefault("terminationGracePeriodSeconds", 30)
        prefix = (
            f"{name[:50]}-{node_type}-"
            if node_type == "head"
            else (f"{f'{name}-{group_name}'[:50]}-worker-")
        )
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": self._name(namespace, prefix),
                "generateName": prefix,
                "namespace": namespace,
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [
                    {
                        "apiVersion": "ray.io/v1",
                        "kind": "RayCluster",
                        "name": name,
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": pod_spec,
            "status": {"phase": "Pending"},
        }
        try:
            self._store.create("pods", pod, namespace=namespace)
        except ApiError as error:
            log.warning("creating a %s pod of %s/%s failed: %s", node_type, namespace, name, error)

    def _name(self, namespace: str, prefix: str) -> str:
        """The name generateName would give (5 characters of the API server's alphabet),
        drawn from the operator's seeded random so a seed gives the same names."""
        while True:
            candidate = prefix + "".join(self._rng.choice(NAME_ALPHABET) for _ in range(5))
            try:
                self._store.get("pods", candidate, namespace=namespace)
            except ApiError:
                return candidate

    # -- status -------------------------------------------------------------------------------

    def _write_status(self, namespace: str, name: str) -> None:
        try:
            cluster = self._store.get("rayclusters", name, namespace=namespace)
        except ApiError:
            return
        pods = self._pods_of(namespace, name)
        status = self.calculate_status(cluster, pods)
        old = dict(cluster.get("status") or {})
        old.pop("lastUpdateTime", None)
        if old == status:
            return
        status["lastUpdateTime"] = self._clock.iso()

        def write(obj: dict[str, Any]) -> None:
            obj["status"] = status  # the status subresource: nothing else changes

        with contextlib.suppress(ApiError):
            self._store.mutate("rayclusters", name, write, namespace=namespace)

    @staticmethod
    def calculate_status(cluster: Mapping[str, Any], pods: ClusterPods) -> dict[str, Any]:
        """calculateStatus, without conditions and head service details."""
        groups = [g for g in (cluster.get("spec") or {}).get("workerGroupSpecs") or ()]
        desired = sum(desired_replicas(g) for g in groups)
        active = [g for g in groups if not g.get("suspend")]
        cpu = memory = gpu = 0
        head_spec = (cluster.get("spec") or {}).get("headGroupSpec") or {}
        for count, template in [(1, head_spec.get("template") or {})] + [
            (desired_replicas(g), g.get("template") or {}) for g in groups
        ]:
            for container in (template.get("spec") or {}).get("containers") or ():
                resources = container.get("resources") or {}
                requests = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
                cpu += count * parse_quantity(str(requests.get("cpu", "0")))
                memory += count * parse_quantity(str(requests.get("memory", "0")))
                gpu += count * parse_quantity(str(requests.get("nvidia.com/gpu", "0")))
        status: dict[str, Any] = {
            "readyWorkerReplicas": pods.workers_ready,
            "availableWorkerReplicas": pods.workers_running,
            "desiredWorkerReplicas": desired,
            "minWorkerReplicas": sum(int(g.get("minReplicas") or 0) for g in active),
            "maxWorkerReplicas": min(
                INT32_MAX, sum(int(g.get("maxReplicas") or 0) for g in active)
            ),
            "desiredCPU": _quantity(cpu),
            "desiredMemory": _quantity(memory, binary=True),
            "desiredGPU": _quantity(gpu),
            "desiredTPU": "0",
            "observedGeneration": int((cluster.get("metadata") or {}).get("generation") or 0),
        }
        old_state = (cluster.get("status") or {}).get("state")
        if len(pods.pods) == desired + 1 and pods.running == len(pods.pods):
            status["state"] = "ready"
        elif old_state:
            status["state"] = old_state  # KubeRay keeps a state once reached
        return status


def _quantity(milli: int, *, binary: bool = False) -> str:
    """A resource.Quantity's String() for a sum: whole units, milli-units, or Gi/Mi."""
    if binary:
        value = milli // 1000
        for suffix, size in (("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
            if value and value % size == 0:
                return f"{value // size}{suffix}"
        return str(value)
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"
