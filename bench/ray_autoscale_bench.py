"""The simulated Ray autoscaler's replica computation at scale: CPU time of one autoscaler update's
target computation (`RayDriver._targets`: queued demand packed on the workers there, the rest
turned into replicas, idle workers picked) and of one scheduler tick (`RayDriver.step`), with N
worker pods mostly busy, a queue of waiting tasks in a few shapes, over three worker groups;
and of one reconcile of the KubeRay operator stand-in with N worker pods in the store and
nothing to change (its steady-state cost, paid at most once per `operatorDelaySeconds`).

The driver's state is built directly (no API server, no pods): this measures the workload
model's own cost, which shares the event loop with the agent in dev mode.

Usage: python bench/ray_autoscale_bench.py [--workers 10000] [--queued 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

from agent.sim.kube.in_cluster import InClusterAccess
from agent.sim.kube.store import ObjectStore
from agent.sim.world.clock import SimClock
from agent.sim.world.kuberay_operator import KubeRayOperator
from agent.sim.world.ray import (
    JobSpec,
    RayClusterSpec,
    RayDriver,
    TaskGroup,
    WorkerGroupSpec,
    _Task,
    _Worker,
)
from agent.sim.world.raycluster_pods import PodIndex
from agent.sim.world.raycluster_spec import manifest

GROUPS = (
    WorkerGroupSpec(name="small", requests={"cpu": "2", "memory": "4Gi"}, max_replicas=100_000),
    WorkerGroupSpec(name="large", requests={"cpu": "8", "memory": "32Gi"}, max_replicas=100_000),
    WorkerGroupSpec(
        name="gpu",
        requests={"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "1"},
        max_replicas=100_000,
    ),
)
SHAPES = (
    TaskGroup("one", count=0, num_cpus=1),
    TaskGroup("two", count=0, num_cpus=2),
    TaskGroup("eight", count=0, num_cpus=8),
    TaskGroup("gpu", count=0, num_cpus=4, num_gpus=1),
)


def build(workers: int, queued: int) -> RayDriver:
    clock = SimClock(speed=1, start=0.0)
    driver = RayDriver(
        ObjectStore(now=clock.iso),
        clock,
        cluster=RayClusterSpec(name="bench", worker_groups=GROUPS),
        job=JobSpec(),
        api=lambda: InClusterAccess("http://unused"),
    )
    task_id = 0
    for index in range(workers):
        group = GROUPS[index % len(GROUPS)]
        worker = _Worker(
            name=f"bench-{group.name}-worker-{index:06d}",
            group=group.name,
            capacity=driver._logical[group.name],  # shared per group, as _observe does
            created=0.0,
            phase="Running",
            node=f"n{index // 4}",
        )
        driver._worker_book.add(worker)
        driver._replicas[group.name] += 1
        if index % 10:  # nine in ten busy: one task filling the worker's CPUs
            demand = {"CPU": worker.capacity["CPU"]}
            task = _Task(task_id, "busy", demand, 600.0, 0.0, state="running", worker=worker.name)
            driver._task_book.add(task)
            driver._assign(worker, task, 0.0)
            task_id += 1
        else:
            worker.idle_since = 0.0
            driver._worker_book.changed(worker)
    for index in range(queued):
        shape = SHAPES[index % len(SHAPES)]
        driver._task_book.add(_Task(task_id, shape.name, shape.demand(), 60.0, 0.0, "queued"))
        task_id += 1
    return driver


def operator_world(workers: int) -> KubeRayOperator:
    """A stored RayCluster whose groups want exactly the N worker pods (and the head) there."""
    clock = SimClock(speed=1, start=0.0)
    store = ObjectStore(now=clock.iso)
    spec = RayClusterSpec(name="bench", worker_groups=GROUPS)
    body = manifest(spec)
    for index, group in enumerate(body["spec"]["workerGroupSpecs"]):
        group["replicas"] = workers // len(GROUPS) + (index < workers % len(GROUPS))
    store.create("rayclusters", body, namespace="default")
    operator = KubeRayOperator(store, clock)
    operator.reconcile("default", "bench")  # creates the pods
    # a started operator keeps its clusters' pods indexed from its watch (raycluster_pods)
    operator._index = PodIndex(store)
    return operator


def timed(call, repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        started = time.process_time()
        call()
        times.append((time.process_time() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=10_000)
    parser.add_argument("--queued", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    driver = build(args.workers, args.queued)
    targets = timed(lambda: driver._targets(30.0), args.repeat)
    # step at t=30: idle workers take queued tasks, so each repeat gets a fresh driver
    steps = []
    for _ in range(args.repeat):
        fresh = build(args.workers, args.queued)
        steps += timed(lambda d=fresh: d.step(30.0), 1)
    operator = operator_world(args.workers)
    reconciles = timed(lambda: operator.reconcile("default", "bench"), args.repeat)
    print(
        f"workers={args.workers} queued={args.queued}: "
        f"_targets median {statistics.median(targets):.1f} ms (min {min(targets):.1f}), "
        f"step median {statistics.median(steps):.1f} ms (min {min(steps):.1f}), "
        f"operator reconcile median {statistics.median(reconciles):.1f} ms "
        f"(min {min(reconciles):.1f})"
    )


if __name__ == "__main__":
    main()
