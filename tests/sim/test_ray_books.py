"""The Ray stand-in's books (agent/sim/world/ray_books.py) say what a full scan of its tasks and
workers says: random pod events, ticks, submissions and drains on a RayDriver, and after each
one the books' counts, sets and queues are compared with those computed from every task and
worker, as the driver computed them before it kept books."""

from __future__ import annotations

import random
from typing import Any

import pytest

from agent.sim.kube.in_cluster import InClusterAccess
from agent.sim.kube.store import ObjectStore
from agent.sim.world.clock import SimClock
from agent.sim.world.ray import (
    JobSpec,
    RayClusterSpec,
    RayDriver,
    TaskGroup,
    WorkerGroupSpec,
    _append_free,
    _Free,
)

GROUPS = (
    WorkerGroupSpec(
        name="small",
        requests={"cpu": "2", "memory": "4Gi"},
        max_replicas=40,
        idle_timeout_seconds=3,
    ),
    WorkerGroupSpec(
        name="gpu",
        requests={"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"},
        max_replicas=8,
        idle_timeout_seconds=5,
    ),
)
NAMESPACE = "ray"
CLUSTER = "books"


class HandClock(SimClock):
    """Simulated time that moves only when the test says (`at`): runs are reproducible."""

    at = 0.0

    def now(self) -> float:
        return self.at


def new_driver() -> RayDriver:
    clock = HandClock(speed=1, start=0.0)
    return RayDriver(
        ObjectStore(now=clock.iso),
        clock,
        cluster=RayClusterSpec(name=CLUSTER, namespace=NAMESPACE, worker_groups=GROUPS),
        job=JobSpec(max_retries=1),
        api=lambda: InClusterAccess("http://unused"),
    )


def worker_pod(name: str, group: str, phase: str, node: str, deleting: bool) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": NAMESPACE,
        "labels": {"ray.io/cluster": CLUSTER, "ray.io/node-type": "worker", "ray.io/group": group},
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"nodeName": node}, "status": {"phase": phase}}


def random_step(driver: Any, rng: random.Random, now: float) -> None:
    """One random thing that happens to a driver: a pod event, a submission, a drain or a tick.
    `driver` may be a RayDriver of another version of ray.py (same private interface)."""
    driver._clock.at = now
    roll = rng.random()
    if roll < 0.45:
        name = f"w{rng.randrange(30):02d}"
        group = rng.choice(GROUPS).name
        phase = rng.choice(("Pending", "Pending", "Running", "Running", "Running", "Failed"))
        pod = worker_pod(name, group, phase, rng.choice(("", "n1", "n2")), rng.random() < 0.1)
        driver._observe(pod, deleted=rng.random() < 0.05)
    elif roll < 0.5:
        driver.submit(
            TaskGroup(
                name=f"g{rng.randrange(100)}",
                count=rng.randrange(0, 12),
                num_cpus=rng.choice((0.5, 1.0, 2.0)),
                num_gpus=rng.choice((0, 0, 1)),
                duration_seconds=rng.choice((1.0, 3.0, 8.0)),
                submit_at_seconds=rng.choice((0.0, 0.0, 2.0, 5.0)),
            )
        )
    elif roll < 0.57:
        # the RayCluster as an update reads it (`_read_replicas`)
        driver._replicas[rng.choice(GROUPS).name] = rng.randrange(12)
    elif roll < 0.62:
        names = sorted(driver._workers)
        driver._drain(rng.sample(names, min(len(names), rng.randrange(3))))
    else:
        driver.step(now)


def full_scan(driver: RayDriver, now: float) -> dict[str, Any]:
    """What the books should say, computed from every task and worker."""
    states = [t.state for t in driver._tasks.values()]
    workers = list(driver._workers.values())
    queued: dict[tuple[tuple[str, int], ...], list[int]] = {}
    for task in driver._tasks.values():
        if task.state == "queued":
            queued.setdefault(tuple(sorted(task.demand.items())), []).append(task.task_id)
    live = dict.fromkeys(driver._groups, 0)
    for w in workers:
        live[w.group] += not w.deleting
    room = {w.name: max(w.room.values(), default=0) > 0 for w in workers}
    return {
        "states": {s: states.count(s) for s in ("waiting", "queued", "running", "done", "failed")},
        "unscheduled": sum(1 for w in workers if not w.deleting and not w.node),
        "starting": sum(1 for w in workers if not w.deleting and w.node and w.phase != "Running"),
        "running": sum(1 for w in workers if not w.deleting and w.phase == "Running"),
        "terminating": sum(1 for w in workers if w.deleting),
        "live": live,
        "queued": list(queued.values()),
        "ready": sorted(
            w.name for w in workers if w.phase == "Running" and not w.deleting and room[w.name]
        ),
        "free": sorted(w.name for w in workers if not w.deleting and room[w.name]),
        "runs": runs_one_by_one(driver),
        "idle": sorted(
            w.name
            for w in workers
            if not w.deleting and w.phase == "Running" and not w.tasks and w.idle_since is not None
        ),
    }


def runs_one_by_one(driver: RayDriver) -> list[tuple[int, dict[str, int], int]]:
    """The replica computation's runs of workers with room, as it made them before the books:
    every worker with room, in name order, appended one by one (`_append_free`)."""
    free: list[_Free] = []
    for _, worker in sorted(driver._workers.items()):
        if not worker.deleting and max(worker.room.values(), default=0) > 0:
            _append_free(free, worker.capacity, worker.room, 1)
    return [(id(run.capacity), dict(run.room), run.count) for run in free]


def books(driver: RayDriver) -> dict[str, Any]:
    workers = driver._worker_book
    return {
        "states": dict(driver._task_book.counts),
        "unscheduled": workers.unscheduled,
        "starting": workers.starting,
        "running": workers.running,
        "terminating": workers.terminating,
        "live": dict(workers.live),
        "queued": [list(tasks) for _, tasks in driver._task_book.queued()],
        "ready": sorted(workers.ready),
        "free": workers.free_names(),
        "runs": [(id(capacity), room, count) for capacity, room, count in workers.free_runs()],
        "idle": sorted(workers.idle),
    }


@pytest.mark.parametrize("seed", range(40))
def test_the_books_say_what_a_full_scan_says(seed: int) -> None:
    rng = random.Random(seed)
    driver = new_driver()
    now = 0.0
    for _ in range(300):
        now += rng.choice((0.0, 0.5, 1.0))
        random_step(driver, rng, now)
        assert books(driver) == full_scan(driver, now)


def state(driver: RayDriver) -> tuple[Any, ...]:
    tasks = [
        (t.task_id, t.state, t.worker, t.started, t.finished, t.attempts)
        for t in driver._tasks.values()
    ]
    workers = [
        (w.name, w.phase, w.node, w.deleting, dict(w.room), sorted(w.tasks), w.idle_since)
        for w in driver._workers.values()
    ]
    return tasks, workers, driver.tasks_requeued, driver.pods_deleted


@pytest.mark.parametrize("seed", range(20))
def test_a_skipped_scheduling_pass_is_one_that_would_have_assigned_nothing(seed: int) -> None:
    skipping, passing = new_driver(), new_driver()
    for driver in (skipping, passing):
        rng = random.Random(seed)
        now = 0.0
        for _ in range(300):
            now += rng.choice((0.0, 0.5, 1.0))
            if driver is passing:
                driver._scheduled = None  # forget the last pass: every tick makes one
            random_step(driver, rng, now)
    assert state(skipping) == state(passing)
