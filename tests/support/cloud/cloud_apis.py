"""The cloud emulators as tests reach them: SDK clients (raw and the agent's own; FC 2.0 and
FC 3.0) pointed at 127.0.0.1 with the static test keys, the CS harness and the FC emulator with
its FC 3.0 HTTP trigger on a port of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from alibabacloud_cs20151215 import models as csm
from alibabacloud_cs20151215.client import Client as CsClient
from alibabacloud_fc20230330.client import Client as Fc3Client
from alibabacloud_fc_open20210406.client import Client as FcClient
from alibabacloud_tea_openapi.utils_models import Config

from agent.sim.cloud.cloud_model import PoolView
from agent.sim.cloud.credentials import (
    TEST_ACCESS_KEY_ID,
    TEST_ACCESS_KEY_SECRET,
    KeyRing,
    static_test_keys,
)
from agent.sim.cloud.fc_api import (
    FcSettings,
    Handler,
    WsgiApp,
    build_fc3_trigger_app,
    build_fc_app,
)
from agent.sim.faults import FaultPlan
from tests.support.clocks import TestClock
from tests.support.cloud.memory_pools import InMemoryPools
from tests.support.cloud.serving import serve

CLUSTER_ID = "c-test"
REGION_ID = "cn-hangzhou"
FC_SERVICE = "ray-ack-scaler"
FC_FUNCTION = "decide"


def sdk_config(
    endpoint: str,
    *,
    key_id: str | None = TEST_ACCESS_KEY_ID,
    secret: str | None = TEST_ACCESS_KEY_SECRET,
    **extra: Any,
) -> Config:
    """An SDK Config for an emulator on 127.0.0.1; `extra` adds Config fields (a security token,
    a credential client)."""
    # Short timeouts (ms) so a bug fails fast instead of waiting out the SDK's 10 s default.
    return Config(
        access_key_id=key_id,
        access_key_secret=secret,
        endpoint=endpoint,
        protocol="http",
        region_id=REGION_ID,
        connect_timeout=2000,
        read_timeout=5000,
        **extra,
    )


def cs_client(endpoint: str, **kwargs: str) -> CsClient:
    return CsClient(sdk_config(endpoint, **kwargs))


def fc_client(endpoint: str, **kwargs: str) -> FcClient:
    return FcClient(sdk_config(endpoint, **kwargs))


def fc3_client(endpoint: str, **kwargs: str) -> Fc3Client:
    return Fc3Client(sdk_config(endpoint, **kwargs))


@dataclass
class Emulator:
    """An emulator app served on 127.0.0.1, with its fault plan, the keys it verifies, its clock."""

    app: web.Application
    endpoint: str
    faults: FaultPlan
    keys: KeyRing
    clock: TestClock


@dataclass
class CsHarness(Emulator):
    pools: InMemoryPools

    def client(self, **kwargs: str) -> CsClient:
        return cs_client(self.endpoint, **kwargs)


def default_pools() -> list[PoolView]:
    """Two pools with ACK's auto scaling on, so their min/max_instances are in force and the
    emulator's bound refusals can be exercised."""
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
            auto_scaling_enabled=True,
            vswitch_ids=("vsw-a",),
        ),
        PoolView(
            pool_id="np-gpu",
            name="gpu",
            instance_types=("ecs.gn7i-c8g1.2xlarge",),
            desired=0,
            min_size=0,
            max_size=4,
            auto_scaling_enabled=True,
        ),
    ]


@dataclass
class FcHarness(Emulator):
    trigger_endpoint: str  # the FC 3.0 HTTP trigger's own 127.0.0.1:PORT

    def client(self, **kwargs: str) -> FcClient:
        """The FC 2.0 SDK (alibabacloud-fc-open20210406)."""
        return fc_client(self.endpoint, **kwargs)

    def client3(self, **kwargs: str) -> Fc3Client:
        """The FC 3.0 SDK (alibabacloud-fc20230330)."""
        return fc3_client(self.endpoint, **kwargs)

    @property
    def trigger_url(self) -> str:
        """The FC 3.0 HTTP trigger's URL (its domain's root)."""
        return f"http://{self.trigger_endpoint}/"


@asynccontextmanager
async def fc_emulator(
    handler: Handler,
    *,
    clock: Callable[[], float],
    keys: KeyRing | None = None,
    http_handler: Handler | None = None,
    wsgi_handler: WsgiApp | None = None,
    settings: FcSettings | None = None,
    faults: FaultPlan | None = None,
) -> AsyncIterator[FcHarness]:
    """Serve `handler` as FC function `decide` (FC 3.0) and `ray-ack-scaler/decide` (FC 2.0) on
    127.0.0.1; `http_handler` behind the FC 3.0 trigger, `wsgi_handler` behind FC 2.0's."""
    faults = faults or FaultPlan(seed=1)
    ring = keys or KeyRing(static_test_keys())
    app = build_fc_app(
        handler,
        keys=ring,
        service=FC_SERVICE,
        function=FC_FUNCTION,
        faults=faults,
        http_handler=http_handler,
        wsgi_handler=wsgi_handler,
        now=clock,
        settings=settings,
        wall_clock=clock,
    )
    async with serve(app) as endpoint, serve(build_fc3_trigger_app(app)) as trigger:
        yield FcHarness(app, endpoint, faults, ring, clock, trigger)  # type: ignore[arg-type]


def agent_cs_sdk(endpoint: str, **kwargs: Any) -> CsClient:
    """The agent's own CS SDK client (agent.clients.cs) for an emulator on 127.0.0.1."""
    from agent.clients.cs import build_sdk_client

    return build_sdk_client(**_agent_sdk_arguments(endpoint), **kwargs)


def agent_fc_sdk(endpoint: str, **kwargs: Any) -> FcClient:
    """The agent's own FC 2.0 SDK client (agent.clients.fc) for an emulator on 127.0.0.1."""
    from agent.clients.fc import build_sdk_client

    return build_sdk_client(**_agent_sdk_arguments(endpoint), **kwargs)


def agent_fc3_sdk(endpoint: str, **kwargs: Any) -> Fc3Client:
    """The agent's own FC 3.0 SDK client (agent.clients.fc3) for an emulator on 127.0.0.1."""
    from agent.clients.fc3 import build_sdk_client

    return build_sdk_client(**_agent_sdk_arguments(endpoint), **kwargs)


def _agent_sdk_arguments(endpoint: str) -> dict[str, Any]:
    return {
        "region_id": REGION_ID,
        "endpoint": endpoint,
        "protocol": "http",
        "access_key_id": TEST_ACCESS_KEY_ID,
        "access_key_secret": TEST_ACCESS_KEY_SECRET,
    }


def desired_size_request(desired: int) -> csm.ModifyClusterNodePoolRequest:
    """ModifyClusterNodePool's body setting the pool's desired size, as the agent sends it."""
    return csm.ModifyClusterNodePoolRequest(
        scaling_group=csm.ModifyClusterNodePoolRequestScalingGroup(desired_size=desired)
    )
