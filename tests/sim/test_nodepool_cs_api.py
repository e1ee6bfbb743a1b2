"""The simulated node pools behind the CS emulator, driven by the real CS SDK over 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent.clients.cs import NodePoolClient
from agent.model import PoolBounds
from agent.sim.cloud.credentials import static_test_keys
from agent.sim.cloud.cs_api import build_cs_app
from agent.sim.world.nodepools import NO_STOCK_ERROR, POOL_LABEL, BootLatency
from tests.support.cloud.cloud_apis import agent_cs_sdk
from tests.support.cloud.serving import serve
from tests.support.sim_pools import node_pools, pool_spec, started


@pytest.fixture
async def client(sim: Any) -> AsyncIterator[NodePoolClient]:
    """A NodePoolClient (real SDK) against the CS emulator serving simulated pools."""
    pools = node_pools(
        sim.store,
        sim.clock,
        pool_spec(max_size=5, boot=BootLatency(20, 30)),
        pool_spec(
            "np-dry",
            instance_type="ecs.c7.xlarge",
            max_size=5,
            failure="stockout",
            stockout_fail_after_seconds=20,
        ),
        cluster_id="c-sim",
    )
    app = build_cs_app(pools, keys=static_test_keys(), now=sim.clock.now, wall_clock=time.time)
    async with started(pools), serve(app) as endpoint:
        # the agent's configured bounds for its managed pools (ACK's auto scaling is off)
        bounds = {p: PoolBounds(p, 0, 5) for p in ("np-cpu", "np-dry")}
        yield NodePoolClient(agent_cs_sdk(endpoint, timeout_seconds=5), "c-sim", bounds=bounds)


async def settle(client: NodePoolClient, task_id: str, sim: Any) -> str:
    """Poll DescribeTaskInfo every 5 simulated seconds (at most 60 polls) until it settles."""
    for _ in range(60):
        state = await client.describe_task(task_id)
        if state.state != "running":
            return state.state
        await sim.clock.sleep(5)
    raise AssertionError(f"task {task_id} still running")


async def test_modify_desired_via_the_sdk_boots_ready_nodes(sim, client):
    """ModifyClusterNodePool → nodes in the API that turn Ready; the task ends in success."""
    (before,) = [p for p in await client.describe_pools() if p.pool_id == "np-cpu"]
    assert (before.desired, before.max_size, before.instance_types) == (0, 5, ("ecs.g7.xlarge",))
    task_id = await client.set_desired("np-cpu", 2)
    assert task_id
    assert (await client.describe_task(task_id)).state == "running"
    assert await settle(client, task_id, sim) == "success"
    after = await client.describe_pool("np-cpu")
    assert (after.desired, after.total_nodes, after.ready_nodes) == (2, 2, 2)
    nodes, _ = sim.store.list("nodes")
    assert sum(1 for n in nodes if n["metadata"]["labels"].get(POOL_LABEL) == "np-cpu") == 2


async def test_stocked_out_pool_task_fails_through_the_sdk(sim, client):
    """A scale-out of a stocked-out pool is accepted, then DescribeTaskInfo reports fail."""
    task_id = await client.set_desired("np-dry", 3)
    assert await settle(client, task_id, sim) == "fail"
    state = await client.describe_task(task_id)
    assert state.error and "NoStock" in state.error
    assert NO_STOCK_ERROR.split(":")[0] in state.error
