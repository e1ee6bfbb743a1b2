"""Node pool failure behaviours: out of stock (NoStock) and slow boots."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent.sim.world.nodepools import NO_STOCK_ERROR, BootLatency, NodePools
from agent.sim.world.nodes import READY_AT_ANNOTATION
from tests.support.sim_pools import node_pools, nodes_in_pool, pool_spec, started


@pytest.fixture
async def pools(sim: Any) -> AsyncIterator[NodePools]:
    """A stocked-out pool (fails after 20 s) and a slow pool (boot 10 s × 4)."""
    service = node_pools(
        sim.store,
        sim.clock,
        pool_spec(
            "np-empty",
            instance_type="ecs.c7.2xlarge",
            failure="stockout",
            stockout_fail_after_seconds=20,
        ),
        pool_spec("np-slow", boot=BootLatency(10, 10), failure="slow", slow_factor=4),
    )
    async with started(service):
        yield service


async def test_stockout_accepts_desired_but_never_creates_a_node(sim, pools):
    """The desired size is accepted (the task starts running) yet no Node appears."""
    task = pools.set_desired("np-empty", 3)
    assert task.state == "running"
    assert pools.describe_pool("np-empty").desired == 3
    assert nodes_in_pool(sim.store, "np-empty") == []
    assert pools.describe_nodes("np-empty") == []


async def test_stockout_task_fails_with_no_stock(sim, pools):
    """After a while the scale-out task fails with ECS's OperationDenied.NoStock error."""
    task = pools.set_desired("np-empty", 3)
    deadline = sim.clock.now() + 20
    while pools.describe_task(task.task_id).state == "running":
        assert sim.clock.now() < deadline + 30, "stocked-out task never failed"
        await sim.clock.sleep(2)
    failed = pools.describe_task(task.task_id)
    assert failed.state == "fail"
    assert failed.error == NO_STOCK_ERROR
    assert "NoStock" in failed.error
    view = pools.describe_pool("np-empty")
    assert view.failed_nodes == 3
    assert view.total_nodes == 0


async def test_slow_pool_multiplies_the_boot_latency(sim, pools):
    """A slow pool's nodes become Ready only after boot × slow factor."""
    launched = sim.clock.now()
    pools.set_desired("np-slow", 1)
    node = nodes_in_pool(sim.store, "np-slow")[0]
    ready_at = float(node["metadata"]["annotations"][READY_AT_ANNOTATION])
    assert ready_at - launched == pytest.approx(40, abs=1)
