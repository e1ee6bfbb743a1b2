"""The Ray workload driver: plays the Ray autoscaler and the KubeRay operator over the store.

A RayCluster-like description (a head with num-cpus 0, worker groups with a pod template and
min/max replicas) and a job (groups of tasks with CPU/GPU needs and durations) drive it. Every
autoscaler period (Ray's ~5 s) it turns queued tasks into a replica count per worker group; the
operator half creates or deletes worker pods to match, named and labelled as KubeRay names them.
Tasks run on Running workers within each worker's logical CPUs/GPUs; workers idle past the
group's idleTimeoutSeconds are removed, never below minReplicas. A timeline of tasks and worker
pod phases is kept for reports. Given a seed, pod names and decisions are reproducible.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import logging
import random
import string
from collections.abc import Mapping
from dataclasses import astuple, dataclass, field
from typing import Any

from agent.sim.kube.store import ApiError, ObjectStore, Subscription
from agent.sim.world.clock import SimClock
from agent.sim.world.nodes import delete_pod_gracefully
from functions.quantity import parse_resources

GPU_RESOURCE = "nvidia.com/gpu"
MILLI = 1000
RAY_IMAGE = "rayproject/ray:2.9.3"
KUBERAY_LABELS = {
    "app.kubernetes.io/created-by": "kuberay-operator",
    "app.kubernetes.io/name": "kuberay",
}
ENDED_PHASES = ("Succeeded", "Failed")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeadSpec:
    """The head group: it runs no tasks (num-cpus 0) and must land on a system node."""

    requests: Mapping[str, str] = field(default_factory=lambda: {"cpu": "1", "memory": "2Gi"})
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkerGroupSpec:
    """One worker group: the pod template's parts that matter and the autoscaling bounds."""

    name: str
    requests: Mapping[str, str]  # requests = limits, as Ray requires
    min_replicas: int = 0
    max_replicas: int = 10
    replicas: int = 0  # initial
    idle_timeout_seconds: float = 60.0
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    host_path: bool = False  # mounts a hostPath volume (not possible on ECI)
    privileged: bool = False  # privileged container (not possible on ECI)
    custom_resources: Mapping[str, float] = field(default_factory=dict)  # rayStartParams resources

    def logical(self) -> dict[str, int]:
        """Ray's logical resources of one worker in milli-units: CPU and GPU from the container's
        resources, plus the group's custom resources."""
        parsed = parse_resources(dict(self.requests), path=f"workerGroup {self.name}.requests")
        resources = {name: round(amount * MILLI) for name, amount in self.custom_resources.items()}
        # Ray advertises whole CPUs from the container limit; fractional limits round down.
        resources["CPU"] = parsed.get("cpu", 0) // MILLI * MILLI
        resources["GPU"] = parsed.get(GPU_RESOURCE, 0) // MILLI * MILLI
        return resources


@dataclass(frozen=True)
class RayClusterSpec:
    name: str
    namespace: str = "default"
    head: HeadSpec = HeadSpec()
    worker_groups: tuple[WorkerGroupSpec, ...] = ()
    image: str = RAY_IMAGE
    autoscaler_period_seconds: float = 5.0


@dataclass(frozen=True)
class TaskGroup:
    """`count` identical tasks submitted together `submit_at_seconds` after the driver starts."""

    name: str
    count: int
    num_cpus: float = 1.0
    num_gpus: int = 0
    duration_seconds: float = 120.0
    submit_at_seconds: float = 0.0
    resources: Mapping[str, float] = field(default_factory=dict)  # custom Ray resources

    def demand(self) -> dict[str, int]:
        """One task's logical demand in milli-units."""
        demand = {name: round(amount * MILLI) for name, amount in self.resources.items()}
        demand["CPU"] = round(self.num_cpus * MILLI)
        demand["GPU"] = self.num_gpus * MILLI
        return {name: amount for name, amount in demand.items() if amount}


@dataclass(frozen=True)
class JobSpec:
    task_groups: tuple[TaskGroup, ...] = ()
    max_retries: int = 3  # Ray's default task retries when the worker dies


@dataclass(frozen=True)
class TimelinePoint:
    """Counts at one moment: tasks by state and worker pods by phase."""

    t: float
    tasks_waiting: int  # not yet submitted
    tasks_queued: int
    tasks_running: int
    tasks_done: int
    tasks_failed: int
    pods_unscheduled: int
    pods_starting: int  # bound, not Running yet
    pods_running: int
    pods_terminating: int
    replicas: Mapping[str, int]


@dataclass(frozen=True)
class JobSummary:
    """How the job fared: what a node autoscaler is judged by, from the workload's side."""

    tasks: int
    done: int
    failed: int
    makespan_seconds: float | None  # first submission to last completion, None until all done
    mean_wait_seconds: float  # submission to first start, over started tasks
    max_wait_seconds: float
    pods_created: int
    pods_deleted: int


@dataclass
class _Task:
    task_id: int
    group: str
    demand: Mapping[str, int]
    duration: float
    submit_at: float
    state: str = "waiting"  # waiting | queued | running | done | failed
    worker: str | None = None
    started: float | None = None
    finished: float | None = None
    attempts: int = 0
    first_started: float | None = None


@dataclass
class _Worker:
    name: str
    group: str
    capacity: Mapping[str, int]
    created: float
    phase: str = "Pending"
    node: str = ""
    deleting: bool = False
    tasks: set[int] = field(default_factory=set)
    idle_since: float | None = None
    room: dict[str, int] = field(default_factory=dict)  # capacity minus running tasks

    def __post_init__(self) -> None:
        self.room = dict(self.capacity)


def _counts(point: TimelinePoint) -> tuple[Any, ...]:
    return (*astuple(point)[1:-1], tuple(sorted(point.replicas.items())))


def _worker_start_command(group: WorkerGroupSpec) -> str:
    command = "ray start --address=$RAY_IP:6379 --block"
    if group.custom_resources:
        resources = json.dumps(dict(group.custom_resources), sort_keys=True)
        command += f" --resources='{resources}'"
    return command


def _preference(capacity: Mapping[str, int], demand: Mapping[str, int]) -> tuple[int, int, int]:
    """Lower is a better home for `demand`, like Ray's utilization scorer: keep GPU and
    custom-resource workers for the work that needs them, then prefer the smallest worker."""
    wasted_gpu = capacity.get("GPU", 0) - demand.get("GPU", 0)
    unused_custom = sum(
        1
        for name, amount in capacity.items()
        if name not in ("CPU", "GPU") and amount and not demand.get(name)
    )
    return wasted_gpu, unused_custom, capacity.get("CPU", 0)


def _avoids_gpu(capacity: Mapping[str, int], demand: Mapping[str, int]) -> bool:
    """Whether the autoscaler keeps this demand off a worker with GPUs (it needs none)."""
    return capacity.get("GPU", 0) > 0 and not demand.get("GPU")


def _fits(room: Mapping[str, int], demand: Mapping[str, int]) -> bool:
    return all(room.get(name, 0) >= amount for name, amount in demand.items())


def _how_many(room: Mapping[str, int], demand: Mapping[str, int]) -> int:
    """How many copies of `demand` fit in `room`."""
    return min(room.get(name, 0) // amount for name, amount in demand.items() if amount > 0)


def _shape(demand: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(demand.items()))


def _take(room: dict[str, int], demand: Mapping[str, int]) -> None:
    for name, amount in demand.items():
        room[name] = room.get(name, 0) - amount


class RayDriver:
    """A SimCluster component driving one RayCluster and its job."""

    def __init__(
        self,
        store: ObjectStore,
        clock: SimClock,
        *,
        cluster: RayClusterSpec,
        job: JobSpec,
        seed: int = 0,
        tick_seconds: float = 1.0,
    ) -> None:
        self.cluster = cluster
        self.job = job
        self._store = store
        self._clock = clock
        self._rng = random.Random(seed)
        self._tick = tick_seconds
        self._groups = {g.name: g for g in cluster.worker_groups}
        self._logical = {g.name: g.logical() for g in cluster.worker_groups}
        self._replicas = {g.name: max(g.replicas, g.min_replicas) for g in cluster.worker_groups}
        self._tasks: dict[int, _Task] = {}
        self._workers: dict[str, _Worker] = {}
        self._head_name = ""
        self._uid = f"raycluster-{self._rng.getrandbits(64):016x}"
        self._timeline: list[TimelinePoint] = []
        self._ending: list[tuple[float, int, int]] = []  # (end time, task id, attempt)
        self._started_at: float | None = None
        self._next_autoscale = 0.0
        self._subscription: Subscription | None = None
        self._loops: list[asyncio.Task[None]] = []
        self.pods_created = 0
        self.pods_deleted = 0
        # Running tasks sent back to the queue because their worker died or was evicted: what a
        # node autoscaler must never cause when it gives a node back.
        self.tasks_requeued = 0

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        now = self._clock.now()
        self._started_at = now
        self._next_autoscale = now
        task_id = 0
        for group in self.job.task_groups:
            for _ in range(group.count):
                self._tasks[task_id] = _Task(
                    task_id=task_id,
                    group=group.name,
                    demand=group.demand(),
                    duration=group.duration_seconds,
                    submit_at=now + group.submit_at_seconds,
                )
                task_id += 1
        self._subscription = self._store.subscribe(resources=("pods",))
        with contextlib.suppress(ApiError):  # already there
            self._store.create("namespaces", {"metadata": {"name": self.cluster.namespace}})
        self._create_head()
        self._loops = [
            asyncio.create_task(self._follow(), name=f"ray-{self.cluster.name}-follow"),
            asyncio.create_task(self._run(), name=f"ray-{self.cluster.name}-run"),
        ]

    async def stop(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
        for loop in self._loops:
            loop.cancel()
        for loop in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        self._loops = []

    def submit(self, group: TaskGroup) -> None:
        """Submit `group`'s tasks now (plus its `submit_at_seconds`): a new job arriving while
        the cluster is busy, or while it is shrinking."""
        now = self._clock.now()
        first = len(self._tasks)
        for task_id in range(first, first + group.count):
            self._tasks[task_id] = _Task(
                task_id=task_id,
                group=group.name,
                demand=group.demand(),
                duration=group.duration_seconds,
                submit_at=now + group.submit_at_seconds,
            )

    # -- what reports and tests read ----------------------------------------------------------

    @property
    def head_name(self) -> str:
        return self._head_name

    def timeline(self) -> list[TimelinePoint]:
        return list(self._timeline)

    def snapshot(self) -> TimelinePoint:
        return self._point(self._clock.now())

    def replicas(self) -> dict[str, int]:
        return dict(self._replicas)

    def finished(self) -> bool:
        """Every task is done (or failed past its retries)."""
        return all(t.state in ("done", "failed") for t in self._tasks.values())

    def summary(self) -> JobSummary:
        tasks = list(self._tasks.values())
        waits = [t.first_started - t.submit_at for t in tasks if t.first_started is not None]
        ends = [t.finished for t in tasks if t.finished is not None]
        makespan = None
        if tasks and self.finished() and ends:
            makespan = max(ends) - min(t.submit_at for t in tasks)
        return JobSummary(
            tasks=len(tasks),
            done=sum(1 for t in tasks if t.state == "done"),
            failed=sum(1 for t in tasks if t.state == "failed"),
            makespan_seconds=makespan,
            mean_wait_seconds=sum(waits) / len(waits) if waits else 0.0,
            max_wait_seconds=max(waits, default=0.0),
            pods_created=self.pods_created,
            pods_deleted=self.pods_deleted,
        )

    def worker_names(self) -> list[str]:
        return sorted(self._workers)

    # -- loops --------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                self.step(self._clock.now())
            except Exception:  # a bug in one tick must not freeze the workload
                log.exception("Ray driver step failed")
            await self._clock.sleep(self._tick)

    async def _follow(self) -> None:
        assert self._subscription is not None
        async for event in self._subscription:
            if event.resource == "pods":
                self._observe(event.object, deleted=event.type == "DELETED")

    def step(self, now: float) -> None:
        """One tick: finish and start tasks; every autoscaler period, rescale; reconcile pods."""
        self._finish_tasks(now)
        for task in self._tasks.values():
            if task.state == "waiting" and task.submit_at <= now:
                task.state = "queued"
        self._schedule_tasks(now)
        period = now >= self._next_autoscale
        if period:
            self._next_autoscale = now + self.cluster.autoscaler_period_seconds
            self._autoscale(now)
        self._reconcile(now)
        point = self._point(now)
        # one point per autoscaler period, plus one whenever a count changed in between
        if period or not self._timeline or _counts(point) != _counts(self._timeline[-1]):
            self._timeline.append(point)

    # -- Ray: tasks ---------------------------------------------------------------------------

    def _finish_tasks(self, now: float) -> None:
        while self._ending and self._ending[0][0] <= now:
            end, task_id, attempt = heapq.heappop(self._ending)
            task = self._tasks[task_id]
            if task.state != "running" or task.attempts != attempt:
                continue  # requeued since: this end belongs to an earlier run
            task.state = "done"
            task.finished = end
            worker = self._workers.get(task.worker or "")
            if worker is not None:
                self._release(worker, task)
                if not worker.tasks:
                    worker.idle_since = end

    def _schedule_tasks(self, now: float) -> None:
        queued = self._queued_by_shape()
        if not queued:
            return
        ready = [w for w in self._workers.values() if w.phase == "Running" and not w.deleting]
        for tasks in queued.values():
            demand = tasks[0].demand
            # best homes first, so CPU-only work leaves GPU and special workers alone
            for worker in sorted(ready, key=lambda w: (_preference(w.capacity, demand), w.name)):
                if not tasks:
                    break
                count = min(len(tasks), _how_many(worker.room, demand))
                for task in tasks[:count]:
                    self._assign(worker, task, now)
                del tasks[:count]

    def _assign(self, worker: _Worker, task: _Task, now: float) -> None:
        task.state = "running"
        task.worker = worker.name
        task.started = now
        if task.first_started is None:
            task.first_started = now
        task.attempts += 1
        _take(worker.room, task.demand)
        worker.tasks.add(task.task_id)
        worker.idle_since = None
        heapq.heappush(self._ending, (now + task.duration, task.task_id, task.attempts))

    @staticmethod
    def _release(worker: _Worker, task: _Task) -> None:
        worker.tasks.discard(task.task_id)
        for name, amount in task.demand.items():
            worker.room[name] = worker.room.get(name, 0) + amount

    def _queued_by_shape(self) -> dict[tuple[tuple[str, int], ...], list[_Task]]:
        """Queued tasks grouped by demand, groups and tasks in submission order."""
        shapes: dict[tuple[tuple[str, int], ...], list[_Task]] = {}
        for task in self._tasks.values():
            if task.state == "queued":
                shapes.setdefault(_shape(task.demand), []).append(task)
        return shapes

    def _requeue_tasks_of(self, worker: _Worker) -> None:
        for task_id in sorted(worker.tasks):
            task = self._tasks[task_id]
            self.tasks_requeued += 1
            task.worker = None
            task.started = None
            task.state = "queued" if task.attempts <= self.job.max_retries else "failed"
        worker.tasks.clear()
        worker.room = dict(worker.capacity)

    # -- Ray autoscaler -----------------------------------------------------------------------

    def _autoscale(self, now: float) -> None:
        """Raise replicas for queued demand; remove workers idle past their group's timeout."""
        # Capacity already asked for (Pending workers included) absorbs demand first.
        free = [
            (w.capacity, dict(w.room)) for _, w in sorted(self._workers.items()) if not w.deleting
        ]
        added = dict.fromkeys(self._replicas, 0)
        for tasks in self._queued_by_shape().values():
            demand = tasks[0].demand
            left = self._place_on(free, demand, len(tasks))
            while left > 0:
                group = self._group_for(demand, added)
                if group is None:
                    break  # infeasible or at maxReplicas: the rest stays queued
                spec = self._groups[group]
                capacity = self._logical[group]
                per_worker = _how_many(capacity, demand)
                room_for = spec.max_replicas - self._replicas[group] - added[group]
                new = min(room_for, -(-left // per_worker))
                added[group] += new
                hosted = [per_worker] * new
                if new * per_worker > left:
                    hosted[-1] -= new * per_worker - left
                left -= new * per_worker
                # what the new workers have to spare is there for the demands that follow
                for count in hosted:
                    spare = dict(capacity)
                    for name, amount in demand.items():
                        spare[name] -= amount * count
                    if any(spare.values()):
                        free.append((capacity, spare))
        for group, count in added.items():
            spec = self._groups[group]
            self._replicas[group] = min(
                spec.max_replicas, max(spec.min_replicas, self._replicas[group] + count)
            )
        self._remove_idle(now)

    @staticmethod
    def _place_on(
        free: list[tuple[Mapping[str, int], dict[str, int]]], demand: Mapping[str, int], count: int
    ) -> int:
        """Pack `count` copies of `demand` into `free`, best homes first; returns how many are
        left."""
        for capacity, room in sorted(free, key=lambda entry: _preference(entry[0], demand)):
            if count == 0:
                break
            if _avoids_gpu(capacity, demand):
                continue
            fit = min(count, _how_many(room, demand))
            if fit:
                for name, amount in demand.items():
                    room[name] = room.get(name, 0) - amount * fit
                count -= fit
        return count

    def _group_for(self, demand: Mapping[str, int], added: Mapping[str, int]) -> str | None:
        """The worker group to grow for `demand`: the best home by `_preference`, ties by order."""
        best: tuple[tuple[int, int, int, int], str] | None = None
        for order, spec in enumerate(self.cluster.worker_groups):
            capacity = self._logical[spec.name]
            if not _fits(capacity, demand):
                continue
            if self._replicas[spec.name] + added[spec.name] >= spec.max_replicas:
                continue
            key = (*_preference(capacity, demand), order)
            if best is None or key < best[0]:
                best = (key, spec.name)
        return None if best is None else best[1]

    def _remove_idle(self, now: float) -> None:
        for _, worker in sorted(self._workers.items()):
            spec = self._groups[worker.group]
            if worker.deleting or worker.phase != "Running" or worker.tasks:
                continue
            if worker.idle_since is None or now - worker.idle_since < spec.idle_timeout_seconds:
                continue
            if self._replicas[worker.group] <= spec.min_replicas:
                continue
            # scaleStrategy.workersToDelete: the operator deletes exactly this pod.
            self._replicas[worker.group] -= 1
            self._delete_worker(worker)

    # -- KubeRay operator ---------------------------------------------------------------------

    def _reconcile(self, now: float) -> None:
        for spec in self.cluster.worker_groups:
            live = [w for w in self._workers.values() if w.group == spec.name and not w.deleting]
            missing = self._replicas[spec.name] - len(live)
            for _ in range(missing):
                self._create_worker(spec, now)
            if missing < 0:
                # replicas lowered without naming pods: the operator picks pods not running tasks
                spare = sorted(live, key=lambda w: (bool(w.tasks), w.phase == "Running", w.name))
                for worker in spare[:-missing]:
                    self._delete_worker(worker)

    def _create_head(self) -> None:
        cluster = self.cluster
        head = cluster.head
        name = f"{cluster.name}-head-{self._suffix()}"
        labels = {
            **head.labels,
            **KUBERAY_LABELS,
            "ray.io/cluster": cluster.name,
            "ray.io/group": "headgroup",
            "ray.io/node-type": "head",
            "ray.io/is-ray-node": "yes",
            "ray.io/identifier": f"{cluster.name}-head",
        }
        container = {
            "name": "ray-head",
            "image": cluster.image,
            "args": ["ray start --head --num-cpus=0 --block"],
            "resources": {"requests": dict(head.requests), "limits": dict(head.requests)},
        }
        spec: dict[str, Any] = {"containers": [container]}
        if head.node_selector:
            spec["nodeSelector"] = dict(head.node_selector)
        if head.tolerations:
            spec["tolerations"] = [dict(t) for t in head.tolerations]
        self._store.create(
            "pods",
            self._pod(name, labels, {"ray.io/ft-enabled": "false"}, spec),
            namespace=cluster.namespace,
        )
        self._head_name = name

    def _create_worker(self, group: WorkerGroupSpec, now: float) -> None:
        cluster = self.cluster
        name = f"{cluster.name}-{group.name}-worker-{self._suffix()}"
        while name in self._workers:
            name = f"{cluster.name}-{group.name}-worker-{self._suffix()}"
        labels = {
            **group.labels,
            **KUBERAY_LABELS,
            "ray.io/cluster": cluster.name,
            "ray.io/group": group.name,
            "ray.io/node-type": "worker",
            "ray.io/is-ray-node": "yes",
            "ray.io/identifier": f"{cluster.name}-worker",
        }
        container: dict[str, Any] = {
            "name": "ray-worker",
            "image": cluster.image,
            "args": [_worker_start_command(group)],
            "resources": {"requests": dict(group.requests), "limits": dict(group.requests)},
        }
        spec: dict[str, Any] = {"containers": [container]}
        if group.node_selector:
            spec["nodeSelector"] = dict(group.node_selector)
        if group.tolerations:
            spec["tolerations"] = [dict(t) for t in group.tolerations]
        if group.host_path:
            spec["volumes"] = [{"name": "host-data", "hostPath": {"path": "/mnt/data"}}]
            container["volumeMounts"] = [{"name": "host-data", "mountPath": "/data"}]
        if group.privileged:
            container["securityContext"] = {"privileged": True}
        self._store.create(
            "pods",
            self._pod(name, labels, dict(group.annotations), spec),
            namespace=cluster.namespace,
        )
        self._workers[name] = _Worker(
            name=name, group=group.name, capacity=self._logical[group.name], created=now
        )
        self.pods_created += 1

    def _pod(
        self, name: str, labels: dict[str, str], annotations: dict[str, str], spec: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": self.cluster.namespace,
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [
                    {
                        "apiVersion": "ray.io/v1",
                        "kind": "RayCluster",
                        "name": self.cluster.name,
                        "uid": self._uid,
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {"restartPolicy": "Always", "terminationGracePeriodSeconds": 30, **spec},
            "status": {"phase": "Pending"},
        }

    def _delete_worker(self, worker: _Worker) -> None:
        worker.deleting = True
        self._requeue_tasks_of(worker)
        self.pods_deleted += 1
        with contextlib.suppress(ApiError):
            delete_pod_gracefully(self._store, self._clock, self.cluster.namespace, worker.name)

    def _suffix(self) -> str:
        return "".join(self._rng.choices(string.ascii_lowercase, k=5))

    # -- pod events ---------------------------------------------------------------------------

    def _observe(self, pod: Mapping[str, Any], *, deleted: bool) -> None:
        meta = pod.get("metadata") or {}
        if meta.get("namespace") != self.cluster.namespace:
            return
        worker = self._workers.get(str(meta.get("name")))
        if worker is None:
            return
        phase = (pod.get("status") or {}).get("phase") or "Pending"
        if deleted or phase in ENDED_PHASES:
            # Evicted (a drained node) or dead: Ray retries its tasks elsewhere, and KubeRay
            # replaces the pod while the replica count still wants it.
            self._requeue_tasks_of(worker)
            del self._workers[worker.name]
            if not deleted:
                with contextlib.suppress(ApiError):
                    self._store.delete("pods", worker.name, namespace=self.cluster.namespace)
            return
        if meta.get("deletionTimestamp"):
            if not worker.deleting:
                worker.deleting = True
                self._requeue_tasks_of(worker)
            return
        if phase == "Running" and worker.phase != "Running":
            worker.idle_since = self._clock.now()
        worker.phase = phase
        worker.node = str((pod.get("spec") or {}).get("nodeName") or "")

    # -- timeline -----------------------------------------------------------------------------

    def _point(self, now: float) -> TimelinePoint:
        states = [t.state for t in self._tasks.values()]
        workers = list(self._workers.values())
        return TimelinePoint(
            t=now - (self._started_at or now),
            tasks_waiting=states.count("waiting"),
            tasks_queued=states.count("queued"),
            tasks_running=states.count("running"),
            tasks_done=states.count("done"),
            tasks_failed=states.count("failed"),
            pods_unscheduled=sum(1 for w in workers if not w.deleting and not w.node),
            pods_starting=sum(
                1 for w in workers if not w.deleting and w.node and w.phase != "Running"
            ),
            pods_running=sum(1 for w in workers if not w.deleting and w.phase == "Running"),
            pods_terminating=sum(1 for w in workers if w.deleting),
            replicas=dict(self._replicas),
        )
