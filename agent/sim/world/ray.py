"""The Ray workload and Ray's autoscaler: tasks on the workers of one RayCluster, and the
requests Ray's KubeRay node provider makes to scale it.

At start it creates the RayCluster through the API server, as `helm install` does
(`raycluster_spec.manifest`). The KubeRay operator stand-in (`kuberay_operator`) then creates
the pods; this driver never writes a pod. It observes the cluster's pods through the store and
runs a job (groups of tasks with CPU/GPU needs and durations) on Running workers within each
worker's logical CPUs/GPUs.

Every autoscaler period (Ray's ~5 s) it acts only through the requests of Ray's KubeRay node
provider (python/ray/autoscaler/_private/kuberay/node_provider.py in github:ray-project/ray,
KubeRayNodeProvider over BatchingNodeProvider), over HTTP:
- `GET /apis/ray.io/v1/namespaces/NS/rayclusters/NAME` (get_node_data), whose groups'
  replicas, minReplicas, maxReplicas and idleTimeoutSeconds the update then uses (get_node_data
  also LISTs the cluster's pods over HTTP; this driver follows them through the store instead,
  a simplification);
- safe_to_scale: while a pod named in a group's `scaleStrategy.workersToDelete` is still there
  (not terminating), the update is skipped; once they are all gone, a json-patch
  `replace .../scaleStrategy {"workersToDelete": []}` clears the lists (the operator never does);
- submit_scale_request: one `PATCH` with `application/json-patch+json`, `replace
  /spec/workerGroupSpecs/i/replicas` for each group whose target differs from the object's
  (capped at maxReplicas), plus `replace .../scaleStrategy {"workersToDelete": [...]}` naming
  the workers idle past the group's idleTimeoutSeconds (never below minReplicas).
The target is the object's `replicas` plus the workers queued tasks need beyond the room of the
workers there and of those asked for but not yet created (as autoscaler v2's instance manager
counts requested instances). Given a seed, decisions are reproducible. A timeline of tasks,
worker pod phases and the object's replicas is kept for reports.

Tasks and workers are kept in books (`ray_books`) updated as they change, so that a tick and an
update cost the tasks and workers concerned rather than a scan of all of them (10,000 of each at
burst-10k, on the event loop the agent shares in dev mode); what they compute is what the scans
computed (tests/sim/test_ray_books.py).

With the cluster's `autoscaler` "external" (scenario `ray.autoscaler: external`, `sim serve
--ray-autoscaler external`) it only installs the RayCluster and follows its pods: no task is
submitted and no request of the autoscaler is sent, so that something outside the simulator
(Ray's own KubeRay node provider, tests/peer/test_ray_kuberay_provider.py) is alone in writing
`replicas` and `workersToDelete`, as Ray's autoscaler is alone in a real cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import astuple, dataclass, field
from typing import Any

import aiohttp

from agent.sim.kube.apiserver import WORLD_USER_AGENT
from agent.sim.kube.in_cluster import InClusterAccess
from agent.sim.kube.store import ObjectStore, Subscription
from agent.sim.world.clock import SimClock
from agent.sim.world.ray_books import Task as _Task
from agent.sim.world.ray_books import TaskBook, WorkerBook, first
from agent.sim.world.ray_books import Worker as _Worker
from agent.sim.world.raycluster_spec import (
    GPU_RESOURCE,
    MILLI,
    RAY_IMAGE,
    HeadSpec,
    RayClusterSpec,
    WorkerGroupSpec,
    manifest,
)

__all__ = [
    "GPU_RESOURCE",
    "MILLI",
    "RAY_IMAGE",
    "HeadSpec",
    "JobSpec",
    "JobSummary",
    "RayClusterSpec",
    "RayDriver",
    "TaskGroup",
    "TimelinePoint",
    "WorkerGroupSpec",
]

ENDED_PHASES = ("Succeeded", "Failed")
JSON_PATCH = "application/json-patch+json"

log = logging.getLogger(__name__)


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
    pods_created: int  # worker pods the operator created for this cluster
    pods_deleted: int  # worker pods the autoscaler named in workersToDelete


def _counts(point: TimelinePoint) -> tuple[Any, ...]:
    return (*astuple(point)[1:-1], tuple(sorted(point.replicas.items())))


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


def _preferences(demand: Mapping[str, int]) -> Callable[[Mapping[str, int]], tuple[int, int, int]]:
    """`_preference` for one demand, computed once per capacity: workers of a group share
    their capacity mapping, so thousands of workers cost a few computations."""
    known: dict[int, tuple[int, int, int]] = {}

    def rank(capacity: Mapping[str, int]) -> tuple[int, int, int]:
        key = id(capacity)
        if key not in known:
            known[key] = _preference(capacity, demand)
        return known[key]

    return rank


def _avoids_gpu(capacity: Mapping[str, int], demand: Mapping[str, int]) -> bool:
    """Whether the autoscaler keeps this demand off a worker with GPUs (it needs none)."""
    return capacity.get("GPU", 0) > 0 and not demand.get("GPU")


def _fits(room: Mapping[str, int], demand: Mapping[str, int]) -> bool:
    return all(room.get(name, 0) >= amount for name, amount in demand.items())


def _how_many(room: Mapping[str, int], demand: Mapping[str, int]) -> int:
    """How many copies of `demand` fit in `room`."""
    return min(room.get(name, 0) // amount for name, amount in demand.items() if amount > 0)


@dataclass
class _Free:
    """`count` workers (or replicas still to be created) of one capacity with the same room."""

    capacity: Mapping[str, int]
    room: Mapping[str, int]
    count: int


def _append_free(
    free: list[_Free], capacity: Mapping[str, int], room: Mapping[str, int], count: int
) -> None:
    """Add workers after the last run, joining it when they have its capacity and room."""
    last = free[-1] if free else None
    if last is not None and last.capacity is capacity and last.room == room:
        last.count += count
    else:
        free.append(_Free(capacity, dict(room), count))


def _minus(room: Mapping[str, int], demand: Mapping[str, int], copies: int) -> dict[str, int]:
    """`room` after `copies` copies of `demand` took their share (a new dict)."""
    left = dict(room)
    for name, amount in demand.items():
        left[name] = left.get(name, 0) - amount * copies
    return left


def _take(room: dict[str, int], demand: Mapping[str, int]) -> None:
    for name, amount in demand.items():
        room[name] = room.get(name, 0) - amount


class RayDriver:
    """A SimCluster component driving one RayCluster and its job; `api()` says how to
    reach the API server once it listens (SimCluster starts its components after that)."""

    def __init__(
        self,
        store: ObjectStore,
        clock: SimClock,
        *,
        cluster: RayClusterSpec,
        job: JobSpec,
        api: Callable[[], InClusterAccess],
        tick_seconds: float = 1.0,
    ) -> None:
        self.cluster = cluster
        self.job = job
        self._store = store
        self._clock = clock
        self._api = api
        self._tick = tick_seconds
        self._groups = {g.name: g for g in cluster.worker_groups}
        self._logical = {g.name: g.logical() for g in cluster.worker_groups}
        # the RayCluster's spec.workerGroupSpecs[].replicas, as last read or written
        self._replicas = {g.name: max(g.replicas, g.min_replicas) for g in cluster.worker_groups}
        # each group's (minReplicas, maxReplicas, idleTimeoutSeconds), as the RayCluster last
        # read says: Ray's autoscaler reads its node types' bounds from the object each update
        self._bounds = {
            g.name: (g.min_replicas, g.max_replicas, g.idle_timeout_seconds)
            for g in cluster.worker_groups
        }
        # tasks and workers, indexed as they change (ray_books): a tick reads counts and the few
        # workers and tasks concerned, not all 10,000 of them
        self._task_book = TaskBook()
        self._worker_book = WorkerBook(self._groups)
        self._tasks = self._task_book.tasks  # by id: read, never written, outside the book
        self._workers = self._worker_book.workers
        # the books' versions after the last scheduling pass (see _schedule_tasks)
        self._scheduled: tuple[int, int] | None = None
        self._head_name = ""
        self._timeline: list[TimelinePoint] = []
        self._ending: list[tuple[float, int, int]] = []  # (end time, task id, attempt)
        self._started_at: float | None = None
        self._next_autoscale = 0.0
        self._finished_upto = 0  # tasks (in id order) known to be done or failed
        self._subscription: Subscription | None = None
        self._session: aiohttp.ClientSession | None = None
        self._loops: list[asyncio.Task[None]] = []
        self.pods_created = 0
        self.pods_deleted = 0
        # Running tasks sent back to the queue because their worker died or was evicted: what a
        # node autoscaler must never cause when it gives a node back.
        self.tasks_requeued = 0
        self.scale_patches = 0  # PATCHes of the RayCluster that changed replicas or named workers
        # simulated times of the PATCHes that raised a group's replicas: when Ray asked for workers
        self.replicas_raised_at: list[float] = []
        self._job_held = False

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        now = self._clock.now()
        self._started_at = now
        self._next_autoscale = now
        if not self._job_held:
            self.release_job()
        self._subscription = self._store.subscribe(resources=("pods",))
        # The world's own client, named so request logs can tell it from clients under test.
        self._session = aiohttp.ClientSession(headers={"User-Agent": WORLD_USER_AGENT})
        try:
            await self._install()
        except BaseException:
            await self.stop()
            raise
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
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def _install(self) -> None:
        """`helm install --create-namespace`: the namespace (if missing), then the RayCluster,
        POSTed to the API server."""
        namespace = self.cluster.namespace
        await self._request(
            "POST", "/api/v1/namespaces", body={"metadata": {"name": namespace}}, ok=(201, 409)
        )
        await self._request(
            "POST",
            f"/apis/ray.io/v1/namespaces/{namespace}/rayclusters",
            body=manifest(self.cluster),
            ok=(201,),
        )

    def hold_job(self) -> None:
        """Before `start`: keep the scenario's job back until `release_job`, so that a dev run
        submits it once the agent watches, as a user starts a job on a cluster whose
        autoscaler is already running (not before the agent has even listed the pods)."""
        self._job_held = True

    def release_job(self) -> None:
        """Submit the scenario's job now (each task group after its `submitAtSeconds`); with an
        external Ray autoscaler there is no job to run."""
        self._job_held = False
        for group in self.job.task_groups if self.simulated else ():
            self.submit(group)

    def submit(self, group: TaskGroup) -> None:
        """Submit `group`'s tasks now (plus its `submit_at_seconds`): a new job arriving while
        the cluster is busy, or while it is shrinking."""
        now = self._clock.now()
        start = len(self._tasks)
        for task_id in range(start, start + group.count):
            self._task_book.add(
                _Task(
                    task_id=task_id,
                    group=group.name,
                    demand=group.demand(),
                    duration=group.duration_seconds,
                    submit_at=now + group.submit_at_seconds,
                )
            )

    # -- what reports and tests read ----------------------------------------------------------

    @property
    def simulated(self) -> bool:
        """Whether this driver is Ray's autoscaler and job (else it only installs the CR)."""
        return self.cluster.autoscaler == "simulated"

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
        # done and failed are final and task ids count up from 0 (start, submit): the tasks
        # before the first unfinished one stay finished, so each call looks again only from
        # there (a dev run's end check calls this on every sample)
        tasks = self._tasks
        while self._finished_upto < len(tasks):
            task = tasks.get(self._finished_upto)
            if task is None:  # ids not from start() or submit(): look at them all
                return all(t.state in ("done", "failed") for t in tasks.values())
            if task.state not in ("done", "failed"):
                return False
            self._finished_upto += 1
        return True

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
            now = self._clock.now()
            try:
                period = self.step(now)
                if period and self.simulated:
                    await self._autoscale(now)
                self._record(now, period=period)
            except Exception:  # a bug or a refused request in one tick must not freeze the workload
                log.exception("Ray driver step failed")
            await self._clock.sleep(self._tick)

    async def _follow(self) -> None:
        assert self._subscription is not None
        async for event in self._subscription:
            if event.resource == "pods":
                self._observe(event.object, deleted=event.type == "DELETED")

    def step(self, now: float) -> bool:
        """One tick of Ray's scheduler: finish and start tasks. Returns whether an autoscaler
        period is due."""
        self._finish_tasks(now)
        self._task_book.due(now)
        self._schedule_tasks(now)
        period = now >= self._next_autoscale
        if period:
            self._next_autoscale = now + self.cluster.autoscaler_period_seconds
        return period

    def _record(self, now: float, *, period: bool) -> None:
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
            self._task_book.set_state(task, "done")
            task.finished = end
            worker = self._workers.get(task.worker or "")
            if worker is not None:
                self._release(worker, task)
                if not worker.tasks:
                    worker.idle_since = end
                self._worker_book.changed(worker)

    def _schedule_tasks(self, now: float) -> None:
        # A pass ends with no ready worker able to take any task left queued (each shape tried
        # every ready worker, and rooms only shrink in a pass). Until a task is queued, a worker
        # becomes ready or a ready worker's room changes, another pass would assign nothing.
        versions = (self._task_book.queued_version, self._worker_book.ready_version)
        if versions == self._scheduled:
            return
        self._pass(now)
        self._scheduled = (self._task_book.queued_version, self._worker_book.ready_version)

    def _pass(self, now: float) -> None:
        queued = self._task_book.queued()
        if not queued:
            return
        # full workers can take nothing (rooms only shrink here): the book keeps the Running,
        # non-deleting workers with room, so a tick costs the few of them, not all workers
        ready = self._worker_book.ready_workers()
        if not ready:
            return
        for demand, tasks in queued:
            rank = _preferences(demand)
            # best homes first, so CPU-only work leaves GPU and special workers alone
            for worker in sorted(ready, key=lambda w: (rank(w.capacity), w.name)):
                if not tasks:
                    break
                count = min(len(tasks), _how_many(worker.room, demand))
                # assigning takes the task out of `tasks` (the book's queue of this shape)
                for task in first(tasks, count) if count else ():
                    self._assign(worker, task, now)

    def _assign(self, worker: _Worker, task: _Task, now: float) -> None:
        self._task_book.set_state(task, "running")
        task.worker = worker.name
        task.started = now
        if task.first_started is None:
            task.first_started = now
        task.attempts += 1
        _take(worker.room, task.demand)
        worker.tasks.add(task.task_id)
        worker.idle_since = None
        self._worker_book.changed(worker)
        heapq.heappush(self._ending, (now + task.duration, task.task_id, task.attempts))

    @staticmethod
    def _release(worker: _Worker, task: _Task) -> None:
        worker.tasks.discard(task.task_id)
        for name, amount in task.demand.items():
            worker.room[name] = worker.room.get(name, 0) + amount

    def _requeue_tasks_of(self, worker: _Worker) -> None:
        for task_id in sorted(worker.tasks):
            task = self._tasks[task_id]
            self.tasks_requeued += 1
            task.worker = None
            task.started = None
            state = "queued" if task.attempts <= self.job.max_retries else "failed"
            self._task_book.set_state(task, state)
        worker.tasks.clear()
        worker.room = dict(worker.capacity)
        self._worker_book.changed(worker)

    # -- Ray autoscaler: KubeRayNodeProvider's requests --------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        ok: tuple[int, ...] = (200,),
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """One request to the API server; a status not in `ok` raises (requests'
        raise_for_status in the provider's client)."""
        assert self._session is not None
        data = None if body is None else json.dumps(body)
        access = self._api()
        headers = access.headers()
        if data is not None:
            headers["Content-Type"] = content_type
        async with self._session.request(
            method, access.url + path, data=data, headers=headers, ssl=access.ssl or True
        ) as response:
            answer = await response.json(content_type=None)
            if response.status not in ok:
                raise RuntimeError(f"{method} {path}: {response.status} {answer}")
            result: dict[str, Any] = answer
            return result

    def _cluster_path(self) -> str:
        return (
            f"/apis/ray.io/v1/namespaces/{self.cluster.namespace}/rayclusters/{self.cluster.name}"
        )

    async def _patch(self, payload: list[dict[str, Any]]) -> dict[str, Any]:
        """KubeRayNodeProvider._submit_raycluster_patch: a json-patch of the RayCluster."""
        return await self._request(
            "PATCH", self._cluster_path(), body=payload, content_type=JSON_PATCH
        )

    def _read_replicas(self, raycluster: Mapping[str, Any]) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = list(raycluster["spec"].get("workerGroupSpecs") or ())
        for group in groups:
            name = group.get("groupName")
            if name not in self._replicas:
                continue
            # node_provider._worker_group_replicas: 1 when absent
            self._replicas[name] = int(group.get("replicas", 1))
            low, high, idle = self._bounds[name]
            self._bounds[name] = (
                int(group.get("minReplicas", low)),
                int(group.get("maxReplicas", high)),
                float(group.get("idleTimeoutSeconds", idle)),
            )
        return groups

    async def _autoscale(self, now: float) -> None:
        """One autoscaler update: read the RayCluster, wait for the operator to delete the
        workers named before (clearing the lists once it has), then patch replicas for queued
        demand and name the workers idle past their group's timeout."""
        groups = self._read_replicas(await self._request("GET", self._cluster_path()))
        named = [
            (index, (group.get("scaleStrategy") or {}).get("workersToDelete") or [])
            for index, group in enumerate(groups)
        ]
        for _, names in named:
            for name in names:
                worker = self._workers.get(name)
                if worker is not None and not worker.terminating:
                    return  # safe_to_scale: "Waiting for operator to remove worker"
        cleanup = [
            _replace(f"/spec/workerGroupSpecs/{index}/scaleStrategy", {"workersToDelete": []})
            for index, names in named
            if names
        ]
        if cleanup:
            self._read_replicas(await self._patch(cleanup))
        targets, idle = self._targets(now)
        payload: list[dict[str, Any]] = []
        raised = False
        for index, group in enumerate(groups):
            name = group.get("groupName")
            if name not in targets:
                continue
            target = targets[name]
            if group.get("maxReplicas") is not None:
                target = min(target, int(group["maxReplicas"]))
            if target != int(group.get("replicas", 1)):
                payload.append(_replace(f"/spec/workerGroupSpecs/{index}/replicas", target))
                raised = raised or target > int(group.get("replicas", 1))
            if idle.get(name):
                payload.append(
                    _replace(
                        f"/spec/workerGroupSpecs/{index}/scaleStrategy",
                        {"workersToDelete": idle[name]},
                    )
                )
        if not payload:
            return
        self._read_replicas(await self._patch(payload))
        self.scale_patches += 1
        if raised:
            self.replicas_raised_at.append(now)
        self._drain([name for names in idle.values() for name in names])

    def _drain(self, names: list[str]) -> None:
        """The workers just named in workersToDelete take no more tasks."""
        for name in names:
            worker = self._workers.get(name)
            if worker is not None and not worker.deleting:
                # Ray drains the node before asking for its removal: it takes no more tasks
                worker.deleting = True
                self._requeue_tasks_of(worker)  # tells the book
                self.pods_deleted += 1

    def _targets(self, now: float) -> tuple[dict[str, int], dict[str, list[str]]]:
        """Each group's wanted replicas for the queued demand, and the workers to remove."""
        # Capacity already asked for absorbs demand first: the workers there (Pending ones
        # included) and the replicas the operator has not created pods for yet. Workers with the
        # same capacity and room that follow one another in name order are one run (`_Free`):
        # thousands of Pending workers of a group are a handful of entries, and packing a run
        # gives what packing its workers one by one gives.
        # The book keeps the non-deleting workers with room in name order (a full worker
        # absorbs nothing) and the non-deleting workers per group.
        free = [_Free(*run) for run in self._worker_book.free_runs()]
        live = self._worker_book.live
        for name, replicas in self._replicas.items():
            capacity = self._logical[name]
            if replicas > live[name]:
                free.append(_Free(capacity, dict(capacity), replicas - live[name]))
        added = dict.fromkeys(self._replicas, 0)
        for demand, tasks in self._task_book.queued():
            free, left = self._place_on(free, demand, len(tasks))
            while left > 0:
                group = self._group_for(demand, added)
                if group is None:
                    break  # infeasible or at maxReplicas: the rest stays queued
                capacity = self._logical[group]
                per_worker = _how_many(capacity, demand)
                room_for = self._bounds[group][1] - self._replicas[group] - added[group]
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
                        _append_free(free, capacity, spare, 1)
        targets = {}
        for group, count in added.items():
            low, high, _ = self._bounds[group]
            targets[group] = min(high, max(low, self._replicas[group] + count))
        return targets, self._idle(now, targets)

    @staticmethod
    def _place_on(
        free: list[_Free], demand: Mapping[str, int], count: int
    ) -> tuple[list[_Free], int]:
        """Pack `count` copies of `demand` into `free`, best homes first (ties in `free`'s
        order); returns the rooms left, in `free`'s order, and how many copies are left."""
        rank = _preferences(demand)
        taken: dict[int, list[_Free]] = {}  # id of a run -> the runs it splits into
        for entry in sorted(free, key=lambda entry: rank(entry.capacity)):
            if count == 0:
                break
            if _avoids_gpu(entry.capacity, demand):
                continue
            each = _how_many(entry.room, demand)
            if not each:
                continue
            # one by one, the run's first workers would take `each` copies, the next one what
            # is left, and the rest nothing
            full = min(entry.count, count // each)
            count -= full * each
            pieces = []
            if full:
                pieces.append(_Free(entry.capacity, _minus(entry.room, demand, each), full))
            rest = entry.count - full
            if rest and count:
                pieces.append(_Free(entry.capacity, _minus(entry.room, demand, count), 1))
                count, rest = 0, rest - 1
            if rest:
                pieces.append(_Free(entry.capacity, entry.room, rest))
            taken[id(entry)] = pieces
        if not taken:
            return free, count
        return [piece for entry in free for piece in taken.get(id(entry), (entry,))], count

    def _group_for(self, demand: Mapping[str, int], added: Mapping[str, int]) -> str | None:
        """The worker group to grow for `demand`: the best home by `_preference`, ties by order."""
        best: tuple[tuple[int, int, int, int], str] | None = None
        for order, spec in enumerate(self.cluster.worker_groups):
            capacity = self._logical[spec.name]
            if not _fits(capacity, demand):
                continue
            if self._replicas[spec.name] + added[spec.name] >= self._bounds[spec.name][1]:
                continue
            key = (*_preference(capacity, demand), order)
            if best is None or key < best[0]:
                best = (key, spec.name)
        return None if best is None else best[1]

    def _idle(self, now: float, targets: dict[str, int]) -> dict[str, list[str]]:
        """Workers idle past their group's idleTimeoutSeconds, never below minReplicas; each
        lowers its group's target by one (terminate_node in BatchingNodeProvider)."""
        idle: dict[str, list[str]] = {}
        # the book keeps the non-deleting Running workers without tasks; only those past their
        # timeout are sorted
        candidates = []
        for name in self._worker_book.idle:
            worker = self._workers[name]
            idle_timeout = self._bounds[worker.group][2]
            assert worker.idle_since is not None
            if now - worker.idle_since < idle_timeout:
                continue
            candidates.append((name, worker))
        for _, worker in sorted(candidates):
            low = self._bounds[worker.group][0]
            if targets[worker.group] <= low:
                continue
            targets[worker.group] -= 1
            idle.setdefault(worker.group, []).append(worker.name)
        return idle

    # -- pod events ---------------------------------------------------------------------------

    def _observe(self, pod: Mapping[str, Any], *, deleted: bool) -> None:
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        if meta.get("namespace") != self.cluster.namespace:
            return
        if labels.get("ray.io/cluster") != self.cluster.name:
            return
        name = str(meta.get("name"))
        phase = (pod.get("status") or {}).get("phase") or "Pending"
        ended = deleted or phase in ENDED_PHASES
        if labels.get("ray.io/node-type") == "head":
            if not ended and not meta.get("deletionTimestamp"):
                self._head_name = name
            return
        worker = self._workers.get(name)
        if worker is None:
            group = labels.get("ray.io/group")
            if ended or meta.get("deletionTimestamp") or group not in self._groups:
                return
            # a worker pod the operator created: Ray sees a new node of its group
            worker = _Worker(
                name=name,
                group=str(group),
                capacity=self._logical[str(group)],
                created=self._clock.now(),
            )
            self._worker_book.add(worker)
            self.pods_created += 1
        if ended:
            # Evicted (a drained node) or dead: Ray retries its tasks elsewhere; the operator
            # deletes a dead pod and replaces it while the replica count still wants it.
            self._requeue_tasks_of(worker)
            self._worker_book.remove(worker)
            return
        if meta.get("deletionTimestamp"):
            worker.terminating = True
            if not worker.deleting:
                worker.deleting = True
                self._requeue_tasks_of(worker)  # tells the book
            return
        if phase == "Running" and worker.phase != "Running":
            worker.idle_since = self._clock.now()
        worker.phase = phase
        worker.node = str((pod.get("spec") or {}).get("nodeName") or "")
        self._worker_book.changed(worker)

    # -- timeline -----------------------------------------------------------------------------

    def _point(self, now: float) -> TimelinePoint:
        # counts kept by the books as tasks and workers change (ray_books), not counted here
        tasks = self._task_book.counts
        workers = self._worker_book
        return TimelinePoint(
            t=now - (self._started_at or now),
            tasks_waiting=tasks["waiting"],
            tasks_queued=tasks["queued"],
            tasks_running=tasks["running"],
            tasks_done=tasks["done"],
            tasks_failed=tasks["failed"],
            pods_unscheduled=workers.unscheduled,
            pods_starting=workers.starting,
            pods_running=workers.running,
            pods_terminating=workers.terminating,
            replicas=dict(self._replicas),
        )


def _replace(path: str, value: Any) -> dict[str, Any]:
    """node_provider.replace_patch."""
    return {"op": "replace", "path": path, "value": value}
