"""The Ray stand-in's tasks and workers, kept indexed as they change.

`RayDriver` (ray.py) ticks every simulated second and runs an autoscaler update every period;
at burst-10k each of those used to scan all 10,000 tasks and workers (tens of ms that the
agent, sharing the event loop, waits for). These books keep what the ticks ask for: tasks
counted by state, waiting ones by submission time, queued ones by shape in id order; workers
counted by what the timeline reports, and the sets a tick or an update reads (ready for tasks,
with room for queued demand, idle). Every change of a task's state goes through
`TaskBook.set_state`, and every change of a worker through `WorkerBook.changed` after it, so
the books say what a full scan would (tests/sim/test_ray_books.py checks that they do).
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import groupby, islice

Shape = tuple[tuple[str, int], ...]

TASK_STATES = ("waiting", "queued", "running", "done", "failed")


@dataclass
class Task:
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
class Worker:
    name: str
    group: str
    capacity: Mapping[str, int]
    created: float
    phase: str = "Pending"
    node: str = ""
    deleting: bool = False  # takes no tasks: asked to be deleted, terminating or gone
    terminating: bool = False  # its pod has a deletionTimestamp
    tasks: set[int] = field(default_factory=set)
    idle_since: float | None = None
    room: dict[str, int] = field(default_factory=dict)  # capacity minus running tasks

    def __post_init__(self) -> None:
        self.room = dict(self.capacity)


def shape_of(demand: Mapping[str, int]) -> Shape:
    return tuple(sorted(demand.items()))


def has_room(room: Mapping[str, int]) -> bool:
    # max() runs in C
    return max(room.values(), default=0) > 0


class _Queue:
    """The queued tasks of one shape, in id order (a dict keeps insertion order; a task
    requeued behind later ids marks it for one re-sort at the next read)."""

    def __init__(self) -> None:
        self.tasks: dict[int, Task] = {}
        self.in_order = True

    def add(self, task: Task) -> None:
        if self.tasks and self.in_order and task.task_id < next(reversed(self.tasks)):
            self.in_order = False
        self.tasks[task.task_id] = task

    def ordered(self) -> dict[int, Task]:
        if not self.in_order:
            self.tasks = dict(sorted(self.tasks.items()))
            self.in_order = True
        return self.tasks


class TaskBook:
    """Tasks by id (submission order), counted by state; waiting ones in a heap by submission
    time; queued ones by shape, each shape in id order."""

    def __init__(self) -> None:
        self.tasks: dict[int, Task] = {}
        self.counts = dict.fromkeys(TASK_STATES, 0)
        self._waiting: list[tuple[float, int]] = []  # (submit_at, task id)
        self._queued: dict[Shape, _Queue] = {}
        self._queue_of: dict[int, _Queue] = {}  # queued task id -> its shape's queue
        self.queued_version = 0  # counts tasks that became queued

    def add(self, task: Task) -> None:
        self.tasks[task.task_id] = task
        self._enter(task)

    def set_state(self, task: Task, state: str) -> None:
        if task.state == state:
            return
        self._leave(task)
        task.state = state
        self._enter(task)

    def due(self, now: float) -> None:
        """Waiting tasks whose submission time has come are queued (in id order)."""
        due: list[Task] = []
        while self._waiting and self._waiting[0][0] <= now:
            _, task_id = heapq.heappop(self._waiting)
            task = self.tasks[task_id]
            if task.state == "waiting":
                due.append(task)
        for task in sorted(due, key=lambda task: task.task_id):
            self.set_state(task, "queued")

    def queued(self) -> list[tuple[Mapping[str, int], dict[int, Task]]]:
        """Queued tasks grouped by demand: (demand, tasks by id in id order) per shape, shapes
        in the order of their first queued task (a scan of the tasks in id order)."""
        shapes = [queue.ordered() for queue in self._queued.values() if queue.tasks]
        shapes.sort(key=lambda tasks: next(iter(tasks)))
        return [(next(iter(tasks.values())).demand, tasks) for tasks in shapes]

    def _enter(self, task: Task) -> None:
        self.counts[task.state] += 1
        if task.state == "waiting":
            heapq.heappush(self._waiting, (task.submit_at, task.task_id))
        elif task.state == "queued":
            queue = self._queued.setdefault(shape_of(task.demand), _Queue())
            queue.add(task)
            self._queue_of[task.task_id] = queue
            self.queued_version += 1

    def _leave(self, task: Task) -> None:
        self.counts[task.state] -= 1
        # a waiting task's heap entry stays: `due` skips entries of tasks no longer waiting
        if task.state == "queued":
            del self._queue_of.pop(task.task_id).tasks[task.task_id]


def first(tasks: dict[int, Task], count: int) -> list[Task]:
    """The first `count` of a shape's queued tasks, in id order."""
    return list(islice(tasks.values(), count))


# a worker's standing in the books: the timeline's four counts, then the sets and the live count
_UNSCHEDULED, _STARTING, _RUNNING, _TERMINATING, _LIVE, _READY, _FREE, _IDLE = range(8)
_Flags = tuple[bool, bool, bool, bool, bool, bool, bool, bool]
_NOWHERE: _Flags = (False,) * 8
# what makes workers with room one run in the replica computation: the same capacity mapping
# (by identity, as `_append_free` compares it) and the same room
RunKey = tuple[int, tuple[tuple[str, int], ...]]


def _flags(worker: Worker) -> _Flags:
    live = not worker.deleting
    running = worker.phase == "Running"
    room = has_room(worker.room)
    return (
        live and not worker.node,
        live and bool(worker.node) and not running,
        live and running,
        worker.deleting,
        live,
        live and running and room,
        live and room,
        live and running and not worker.tasks and worker.idle_since is not None,
    )


def _run_key(worker: Worker) -> RunKey:
    return id(worker.capacity), tuple(sorted(worker.room.items()))


class WorkerBook:
    """Workers by pod name, with what the driver's ticks read kept current: the timeline's
    counts, non-deleting workers per group, the names of the workers that can take tasks
    (`ready`) and of the idle ones, and the non-deleting workers with room (for queued
    demand) in name order, with what each has to spare."""

    def __init__(self, groups: Mapping[str, object]) -> None:
        self.workers: dict[str, Worker] = {}
        self.unscheduled = self.starting = self.running = self.terminating = 0
        self.live = dict.fromkeys(groups, 0)
        self.ready: set[str] = set()
        self.idle: set[str] = set()
        # non-deleting workers with room: names sorted, and each one's run key at its index
        self._free_names: list[str] = []
        self._free_keys: list[RunKey] = []
        self._capacities: dict[int, Mapping[str, int]] = {}
        self._standing: dict[str, tuple[_Flags, RunKey | None]] = {}
        self.ready_version = 0  # counts workers that became ready and ready workers' room changes

    def add(self, worker: Worker) -> None:
        self.workers[worker.name] = worker
        self._capacities.setdefault(id(worker.capacity), worker.capacity)
        self._standing[worker.name] = (_NOWHERE, None)
        self.changed(worker)

    def remove(self, worker: Worker) -> None:
        old, key = self._standing.pop(worker.name)
        del self.workers[worker.name]
        self._move(worker, old, _NOWHERE, key, None)

    def changed(self, worker: Worker) -> None:
        """After any change of `worker`'s phase, node, deleting, tasks, idle_since or room."""
        new = _flags(worker)
        key = _run_key(worker) if new[_FREE] else None
        old, old_key = self._standing[worker.name]
        if new != old or key != old_key:
            self._standing[worker.name] = (new, key)
            self._move(worker, old, new, old_key, key)

    def ready_workers(self) -> list[Worker]:
        return [self.workers[name] for name in self.ready]

    def free_names(self) -> list[str]:
        """Non-deleting workers with room, in name order."""
        return list(self._free_names)

    def free_runs(self) -> list[tuple[Mapping[str, int], dict[str, int], int]]:
        """The non-deleting workers with room in name order, consecutive ones with the same
        capacity and room as one (capacity, room, count): what `_append_free` makes of them
        one by one, in C-speed passes over the keys instead of a Python call per worker."""
        capacities = self._capacities
        return [
            (capacities[capacity], dict(room), len(list(run)))
            for (capacity, room), run in groupby(self._free_keys)
        ]

    def _move(
        self, worker: Worker, old: _Flags, new: _Flags, old_key: RunKey | None, key: RunKey | None
    ) -> None:
        name = worker.name
        self.unscheduled += new[_UNSCHEDULED] - old[_UNSCHEDULED]
        self.starting += new[_STARTING] - old[_STARTING]
        self.running += new[_RUNNING] - old[_RUNNING]
        self.terminating += new[_TERMINATING] - old[_TERMINATING]
        self.live[worker.group] += new[_LIVE] - old[_LIVE]
        for index, members in ((_READY, self.ready), (_IDLE, self.idle)):
            if new[index] and not old[index]:
                members.add(name)
            elif old[index] and not new[index]:
                members.discard(name)
        if new[_READY] and (not old[_READY] or key != old_key):
            self.ready_version += 1
        if key == old_key:
            return
        at = bisect.bisect_left(self._free_names, name)
        if old_key is None:
            assert key is not None
            self._free_names.insert(at, name)
            self._free_keys.insert(at, key)
        elif key is None:
            del self._free_names[at]
            del self._free_keys[at]
        else:
            self._free_keys[at] = key
