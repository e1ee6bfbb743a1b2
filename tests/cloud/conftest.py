"""Fixtures shared by the cloud emulator tests: emulators served on 127.0.0.1 and real SDK clients."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agent.sim.cloud.credentials import KeyRing, static_test_keys
from agent.sim.cloud.cs_api import build_cs_app
from agent.sim.faults import FaultPlan
from tests.support.clocks import TestClock
from tests.support.cloud.cloud_apis import CLUSTER_ID, REGION_ID, CsHarness, default_pools
from tests.support.cloud.memory_pools import InMemoryPools
from tests.support.cloud.serving import serve


@pytest.fixture
def clock() -> TestClock:
    return TestClock()


@pytest.fixture
async def cs(clock: TestClock) -> AsyncIterator[CsHarness]:
    pools = InMemoryPools(default_pools(), now=clock, cluster_id=CLUSTER_ID, region_id=REGION_ID)
    faults = FaultPlan(seed=1)
    keys = KeyRing(static_test_keys())
    app = build_cs_app(pools, keys=keys, faults=faults, now=clock, wall_clock=clock)
    async with serve(app) as endpoint:
        yield CsHarness(app, endpoint, faults, keys, clock, pools=pools)
