"""The seed world end to end: a test-local controller raises desired, and the walkthrough completes."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from agent.sim.cluster import SimCluster
from agent.sim.scenario import World, attach_world, load_scenario
from agent.sim.world.nodepools import POOL_LABEL, NodePools
from tests.support.waiting import store_until

WORKERS_PER_NODE = 3  # ecs.g7.xlarge keeps 3900m allocatable: three 1-CPU workers


def unschedulable_workers(store: Any) -> list[dict[str, Any]]:
    pods, _ = store.list("pods")
    return [
        p
        for p in pods
        if p["metadata"]["labels"].get("ray.io/node-type") == "worker"
        and not p["spec"].get("nodeName")
        and any(c.get("reason") == "Unschedulable" for c in p["status"].get("conditions", []))
    ]


async def naive_controller(pools: NodePools, store: Any, clock: Any) -> None:
    """Not the real agent: every 5 s, ask for enough nodes for the unschedulable workers that
    the nodes already on their way will not take, within the scenario's bounds (ACK reports
    none: its auto scaling is off on the pool)."""
    ceilings = {spec.pool_id: spec.max_size for spec in pools.specs()}
    while True:
        waiting = len(unschedulable_workers(store))
        for pool in pools.describe_pools():
            upcoming = pool.desired - pool.healthy_nodes
            needed = math.ceil(waiting / WORKERS_PER_NODE) - upcoming
            if needed > 0:
                ceiling = ceilings[pool.pool_id]
                pools.set_desired(pool.pool_id, min(ceiling, pool.desired + needed))
        await clock.sleep(5)


@dataclass
class SeedCluster:
    """The seed world on a served SimCluster (its Ray autoscaler talks HTTP), 100× real time."""

    cluster: SimCluster
    world: World

    @property
    def store(self) -> Any:
        return self.cluster.store

    @property
    def clock(self) -> Any:
        return self.cluster.clock

    async def until(self, predicate: Any, *, timeout: float = 5.0) -> None:
        await store_until(self.cluster.store, predicate, timeout=timeout)


@pytest.fixture
async def sim() -> AsyncIterator[SeedCluster]:
    cluster = SimCluster(speed=100)
    world = attach_world(load_scenario("seed"), cluster)
    async with cluster:
        yield SeedCluster(cluster, world)


@pytest.fixture
async def seed_world(sim: SeedCluster) -> AsyncIterator[World]:
    """The seed scenario's components and the naive controller."""
    world = sim.world
    controller = asyncio.create_task(naive_controller(world.pools, sim.store, sim.clock))
    try:
        yield world
    finally:
        controller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await controller


def worker_phases(sim: Any) -> list[str]:
    pods, _ = sim.store.list("pods", namespace="default")
    return [
        p["status"].get("phase", "")
        for p in pods
        if p["metadata"]["labels"].get("ray.io/node-type") == "worker"
        and not p["metadata"].get("deletionTimestamp")
    ]


async def test_all_fifteen_workers_reach_running(sim, seed_world):
    """Pending workers make the controller grow the pool; the new nodes boot; all 15 run."""
    await sim.until(lambda: worker_phases(sim).count("Running") == 15, timeout=10)
    nodes, _ = sim.store.list("nodes")
    pool_nodes = [n for n in nodes if n["metadata"]["labels"].get(POOL_LABEL) == "np-cpu"]
    assert 4 <= len(pool_nodes) <= 10
    head = sim.store.get("pods", seed_world.ray.head_name, namespace="default")
    assert head["spec"]["nodeName"] in seed_world.system.names


async def test_the_job_finishes_and_idle_workers_go_away(sim, seed_world):
    """All 15 tasks complete; a minute later the idle workers are deleted; nodes cost money."""
    ray = seed_world.ray
    for _ in range(1000):
        if ray.finished():
            break
        await asyncio.sleep(0.01)
    assert ray.finished()
    assert ray.snapshot().tasks_done == 15
    await sim.until(lambda: worker_phases(sim) == [], timeout=10)
    report = seed_world.cost_report()
    (pool,) = report.pools
    assert pool.pool_id == "np-cpu"
    assert pool.busy_seconds > 0 and pool.idle_seconds > 0
    assert report.total_cost > 0
