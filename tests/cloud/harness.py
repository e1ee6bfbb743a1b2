"""Building blocks for the cloud emulator tests: SDK clients pointed at 127.0.0.1 and the CS harness."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web
from alibabacloud_cs20151215.client import Client as CsClient
from alibabacloud_fc_open20210406.client import Client as FcClient
from alibabacloud_tea_openapi.utils_models import Config

from agent.sim.cloud.cloud_model import PoolView
from agent.sim.cloud.credentials import (
    TEST_ACCESS_KEY_ID,
    TEST_ACCESS_KEY_SECRET,
    KeyRing,
    static_test_keys,
)
from agent.sim.cloud.fc_api import FcSettings, Handler, build_fc_app
from agent.sim.faults import FaultPlan

from .memory_pools import InMemoryPools
from .serving import TestClock, serve

CLUSTER_ID = "c-test"
REGION_ID = "cn-hangzhou"
FC_SERVICE = "ray-ack-scaler"
FC_FUNCTION = "decide"


def sdk_config(
    endpoint: str, *, key_id: str = TEST_ACCESS_KEY_ID, secret: str = TEST_ACCESS_KEY_SECRET
) -> Config:
    # Short timeouts (ms) so a bug fails fast instead of waiting out the SDK's 10 s default.
    return Config(
        access_key_id=key_id,
        access_key_secret=secret,
        endpoint=endpoint,
        protocol="http",
        region_id=REGION_ID,
        connect_timeout=2000,
        read_timeout=5000,
    )


def cs_client(endpoint: str, **kwargs: str) -> CsClient:
    return CsClient(sdk_config(endpoint, **kwargs))


def fc_client(endpoint: str, **kwargs: str) -> FcClient:
    return FcClient(sdk_config(endpoint, **kwargs))


@dataclass
class CsHarness:
    app: web.Application
    endpoint: str
    pools: InMemoryPools
    faults: FaultPlan
    keys: KeyRing
    clock: TestClock

    def client(self, **kwargs: str) -> CsClient:
        return cs_client(self.endpoint, **kwargs)


def default_pools() -> list[PoolView]:
    return [
        PoolView(
            pool_id="np-cpu",
            name="cpu",
            instance_types=("ecs.g7.xlarge",),
            desired=1,
            min_size=0,
            max_size=20,
            labels={"alibabacloud.com/nodepool-id": "np-cpu", "team": "ray"},
            taints=({"key": "dedicated", "value": "ray", "effect": "NoSchedule"},),
            vswitch_ids=("vsw-a",),
        ),
        PoolView(
            pool_id="np-gpu",
            name="gpu",
            instance_types=("ecs.gn7i-c8g1.2xlarge",),
            desired=0,
            min_size=0,
            max_size=4,
        ),
    ]


@dataclass
class FcHarness:
    app: web.Application
    endpoint: str
    faults: FaultPlan
    keys: KeyRing
    clock: TestClock

    def client(self, **kwargs: str) -> FcClient:
        return fc_client(self.endpoint, **kwargs)


@asynccontextmanager
async def fc_emulator(
    handler: Handler,
    *,
    clock: TestClock,
    keys: KeyRing | None = None,
    http_handler: Handler | None = None,
    settings: FcSettings | None = None,
) -> AsyncIterator[FcHarness]:
    """Serve `handler` as FC function `svc/decide` on 127.0.0.1."""
    faults = FaultPlan(seed=1)
    ring = keys or KeyRing(static_test_keys())
    app = build_fc_app(
        handler,
        keys=ring,
        service=FC_SERVICE,
        function=FC_FUNCTION,
        faults=faults,
        http_handler=http_handler,
        now=clock,
        settings=settings,
        wall_clock=clock,
    )
    async with serve(app) as endpoint:
        yield FcHarness(app, endpoint, faults, ring, clock)
