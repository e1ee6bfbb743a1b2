"""What the agent-level benches share: the simulated node pools behind the CS emulator, served on
127.0.0.1, noting when each raise of desired arrives, and the agent's CS client pointed at it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from agent.clients.cs import NodePoolClient, RetryPolicy
from agent.clients.cs import build_sdk_client as build_cs_sdk
from agent.model import PoolBounds
from agent.sim.cloud.cloud_model import TaskView
from agent.sim.cloud.credentials import (
    TEST_ACCESS_KEY_ID,
    TEST_ACCESS_KEY_SECRET,
    static_test_keys,
)
from agent.sim.cloud.cs_api import build_cs_app
from agent.sim.cluster import SimCluster
from agent.sim.world.nodepools import NodePools, PoolSpec

CLUSTER_ID = "c-bench"
REGION = "cn-hangzhou"


class TimedPools:
    """The simulated node pools, noting when each raise of desired arrives: (perf_counter,
    desired), and `raised` set on each."""

    def __init__(self, inner: NodePools) -> None:
        self._inner = inner
        self.cluster_id = inner.cluster_id
        self.region_id = inner.region_id
        self.raised_at: list[tuple[float, int]] = []
        self.raised = asyncio.Event()

    def set_desired(self, pool_id: str, desired: int) -> TaskView:
        self.raised_at.append((time.perf_counter(), desired))
        self.raised.set()
        return self._inner.set_desired(pool_id, desired)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """An aiohttp app on a free 127.0.0.1 port, as host:port."""
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def timed_pool_behind_cs(
    stack: contextlib.AsyncExitStack, sim: SimCluster, pool: str, *, max_size: int
) -> tuple[TimedPools, NodePoolClient]:
    """One ecs.g7.xlarge pool `pool` (0..max_size) in `sim`, served by the CS emulator, and the
    agent's CS client for it (the official SDK, signed requests); stopped with `stack`."""
    pools = NodePools(
        sim.store,
        sim.clock,
        cluster_id=CLUSTER_ID,
        region_id=REGION,
        zone=f"{REGION}-k",
        pools=[PoolSpec(pool, "cpu", "ecs.g7.xlarge", max_size=max_size)],
    )
    await pools.start()
    stack.push_async_callback(pools.stop)
    timed = TimedPools(pools)
    endpoint = await stack.enter_async_context(
        serve(build_cs_app(timed, keys=static_test_keys(), now=time.time))
    )
    client = NodePoolClient(
        build_cs_sdk(
            region_id=REGION,
            endpoint=endpoint,
            protocol="http",
            access_key_id=TEST_ACCESS_KEY_ID,
            access_key_secret=TEST_ACCESS_KEY_SECRET,
        ),
        CLUSTER_ID,
        retry=RetryPolicy(attempts=3),
        bounds={pool: PoolBounds(pool, 0, max_size)},
    )
    return timed, client
