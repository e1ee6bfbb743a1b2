"""The simulated node pools behind the CS emulator, driven by the real CS SDK over 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

from agent.clients.cs import NodePoolClient, build_sdk_client
from agent.sim.cloud.credentials import TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET, static_test_keys
from agent.sim.cloud.cs_api import build_cs_app
from agent.sim.world.nodepools import NO_STOCK_ERROR, POOL_LABEL, BootLatency, NodePools, PoolSpec

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's transport reads proxy variables on every call: keep test traffic local."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def client(sim: Any) -> AsyncIterator[NodePoolClient]:
    """A NodePoolClient (real SDK) against the CS emulator serving simulated pools."""
    pools = NodePools(
        sim.store,
        sim.clock,
        cluster_id="c-sim",
        region_id="cn-hangzhou",
        zone="cn-hangzhou-k",
        pools=[
            PoolSpec(
                pool_id="np-cpu",
                name="cpu",
                instance_type="ecs.g7.xlarge",
                max_size=5,
                boot=BootLatency(20, 30),
            ),
            PoolSpec(
                pool_id="np-dry",
                name="dry",
                instance_type="ecs.c7.xlarge",
                max_size=5,
                failure="stockout",
                stockout_fail_after_seconds=20,
            ),
        ],
    )
    await pools.start()
    app = build_cs_app(pools, keys=static_test_keys(), now=sim.clock.now, wall_clock=time.time)
    try:
        async with serve(app) as endpoint:
            sdk = build_sdk_client(
                region_id="cn-hangzhou",
                endpoint=endpoint,
                protocol="http",
                access_key_id=TEST_ACCESS_KEY_ID,
                access_key_secret=TEST_ACCESS_KEY_SECRET,
                timeout_seconds=5,
            )
            yield NodePoolClient(sdk, "c-sim")
    finally:
        await pools.stop()


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
