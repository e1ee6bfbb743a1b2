"""Node pool failure behaviours: out of stock (NoStock) and slow boots."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent.sim.world.nodepools import (
    NO_STOCK_ERROR,
    POOL_LABEL,
    READY_AT_ANNOTATION,
    BootLatency,
    NodePools,
    PoolSpec,
)


@pytest.fixture
async def pools(sim: Any) -> AsyncIterator[NodePools]:
    """A stocked-out pool (fails after 20 s) and a slow pool (boot 10 s × 4)."""
    service = NodePools(
        sim.store,
        sim.clock,
        cluster_id="c-test",
        region_id="cn-hangzhou",
        zone="cn-hangzhou-k",
        pools=[
            PoolSpec(
                pool_id="np-empty",
                name="empty",
                instance_type="ecs.c7.2xlarge",
                max_size=10,
                failure="stockout",
                stockout_fail_after_seconds=20,
            ),
            PoolSpec(
                pool_id="np-slow",
                name="slow",
                instance_type="ecs.g7.xlarge",
                max_size=10,
                boot=BootLatency(10, 10),
                failure="slow",
                slow_factor=4,
            ),
        ],
    )
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


def pool_nodes(sim: Any, pool_id: str) -> list[dict[str, Any]]:
    nodes, _ = sim.store.list("nodes")
    return [n for n in nodes if n["metadata"]["labels"].get(POOL_LABEL) == pool_id]


async def test_stockout_accepts_desired_but_never_creates_a_node(sim, pools):
    """The desired size is accepted (the task starts running) yet no Node appears."""
    task = pools.set_desired("np-empty", 3)
    assert task.state == "running"
    assert pools.describe_pool("np-empty").desired == 3
    assert pool_nodes(sim, "np-empty") == []
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
    node = pool_nodes(sim, "np-slow")[0]
    ready_at = float(node["metadata"]["annotations"][READY_AT_ANNOTATION])
    assert ready_at - launched == pytest.approx(40, abs=1)
