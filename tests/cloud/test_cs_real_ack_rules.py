"""The CS emulator keeps ACK's documented rules, and the agent's CS client meets them.

- With ACK's auto scaling off (the pools this agent manages) `auto_scaling.min/max_instances`
  read 0 and bound nothing; with it on they do (CS API reference, ModifyClusterNodePool).
- At most 500 nodes are added per call; the cluster's `node_quota` (DescribeUserQuota) caps the
  nodes it may have. ACK documents no error code for either, so both are InvalidParameter.
- The agent sends ModifyClusterNodePool's documented body and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from alibabacloud_cs20151215 import models as csm
from alibabacloud_tea_openapi.exceptions import ClientException

from agent.clients.cs import CloudCallError, NodePoolClient, RetryPolicy
from agent.model import PoolBounds
from agent.sim.cloud.cloud_model import PoolView
from agent.sim.cloud.credentials import KeyRing, static_test_keys
from agent.sim.cloud.cs_api import build_cs_app, scale_requests_of, writes_of
from agent.sim.faults import FaultPlan
from tests.support.clocks import TestClock
from tests.support.cloud.cloud_apis import (
    CLUSTER_ID,
    REGION_ID,
    CsHarness,
    agent_cs_sdk,
    desired_size_request,
)
from tests.support.cloud.memory_pools import InMemoryPools
from tests.support.cloud.serving import serve

MANUAL = PoolView(
    pool_id="np-manual",
    name="manual",
    instance_types=("ecs.g7.xlarge",),
    desired=2,
    min_size=0,
    max_size=0,  # as ACK reports a pool whose auto scaling was never on
)
AUTOSCALED = PoolView(
    pool_id="np-auto",
    name="auto",
    instance_types=("ecs.g7.xlarge",),
    desired=1,
    min_size=1,
    max_size=3,
    auto_scaling_enabled=True,
)
FAST = RetryPolicy(attempts=1, call_timeout_seconds=5)


@pytest.fixture
async def ack() -> AsyncIterator[CsHarness]:
    """Two pools in a cluster whose node quota is 12 (3 nodes exist)."""
    clock = TestClock()
    pools = InMemoryPools(
        [MANUAL, AUTOSCALED], now=clock, cluster_id=CLUSTER_ID, region_id=REGION_ID, node_quota=12
    )
    app = build_cs_app(
        pools, keys=KeyRing(static_test_keys()), faults=FaultPlan(), now=clock, wall_clock=clock
    )
    async with serve(app) as endpoint:
        yield CsHarness(app, endpoint, FaultPlan(), KeyRing(static_test_keys()), clock, pools=pools)


def agent_client(ack: CsHarness, **bounds: PoolBounds) -> NodePoolClient:
    return NodePoolClient(
        agent_cs_sdk(ack.endpoint),
        CLUSTER_ID,
        retry=FAST,
        bounds={b.pool_id: b for b in bounds.values()},
    )


async def test_bounds_come_from_the_agent_unless_ack_autoscales_the_pool(ack: CsHarness) -> None:
    """A managed pool carries the configured bounds; an unlisted one with ACK's auto scaling off
    has none (0/0, not the 0 max_instances read as a ceiling); an autoscaled one has ACK's."""
    client = agent_client(ack, manual=PoolBounds("np-manual", 1, 30))
    pools = {p.pool_id: p for p in await client.describe_pools()}
    assert (pools["np-manual"].min_size, pools["np-manual"].max_size) == (1, 30)
    assert not pools["np-manual"].ack_autoscaling
    assert (pools["np-auto"].min_size, pools["np-auto"].max_size) == (1, 3)
    assert pools["np-auto"].ack_autoscaling
    unlisted = await agent_client(ack).describe_pool("np-manual")
    assert (unlisted.min_size, unlisted.max_size) == (0, 0)


async def test_a_pool_without_ack_autoscaling_is_not_held_to_max_instances(ack: CsHarness) -> None:
    """max_instances 0 is no ceiling while auto scaling is off: raising to 9 is accepted."""
    client = agent_client(ack, manual=PoolBounds("np-manual", 0, 20))
    assert await client.set_desired("np-manual", 9)
    assert ack.pools.describe_pool("np-manual").desired == 9


async def test_an_autoscaled_pool_refuses_a_size_outside_its_bounds(ack: CsHarness) -> None:
    with pytest.raises(CloudCallError) as caught:
        await agent_client(ack).set_desired("np-auto", 4)
    assert (caught.value.status, caught.value.code) == (400, "InvalidParameter")
    assert "max_instances 3" in caught.value.message


async def test_the_node_quota_caps_the_cluster(ack: CsHarness) -> None:
    """3 nodes and a quota of 12: 9 more fit, the tenth is refused and nothing changes."""
    client = agent_client(ack)
    assert await client.describe_node_quota() == 12
    with pytest.raises(CloudCallError) as caught:
        await client.set_desired("np-manual", 12)
    assert (caught.value.status, caught.value.code) == (400, "InvalidParameter")
    assert "node_quota 12" in caught.value.message
    assert ack.pools.describe_pool("np-manual").desired == 2
    await client.set_desired("np-manual", 11)
    assert ack.pools.describe_pool("np-manual").desired == 11


async def test_at_most_500_nodes_are_added_per_call(ack: CsHarness) -> None:
    ack.pools.node_quota = 5000
    client = agent_client(ack)
    with pytest.raises(CloudCallError) as caught:
        await client.set_desired("np-manual", 503)
    assert "at most 500 nodes" in caught.value.message
    await client.set_desired("np-manual", 502)
    assert ack.pools.describe_pool("np-manual").desired == 502


async def test_the_agent_sends_exactly_the_documented_modify_body(ack: CsHarness) -> None:
    """`{"scaling_group": {"desired_size": N}}` and nothing else: the SDK's request model, used
    as is, also sends empty lists whose meaning to ACK is undocumented."""
    await agent_client(ack).set_desired("np-manual", 4)
    await ack.client().modify_cluster_node_pool_async(
        CLUSTER_ID, "np-manual", desired_size_request(5)
    )
    ours, sdk_model = (w.body for w in scale_requests_of(ack.app))
    assert json.dumps(ours, sort_keys=True) == '{"scaling_group": {"desired_size": 4}}'
    assert sdk_model["scaling_group"]["desired_size"] == 5
    assert set(sdk_model["scaling_group"]) > {"desired_size"}  # the extra empty lists


async def test_describe_user_quota_reads_through_the_sdk_model(ack: CsHarness) -> None:
    response = await ack.client().describe_user_quota_async()
    assert response.body.node_quota == 12
    assert [w.action for w in writes_of(ack.app)] == []  # a read is not journaled


async def test_a_scale_by_count_is_held_to_the_quota_too(ack: CsHarness) -> None:
    with pytest.raises(ClientException) as caught:
        await ack.client().scale_cluster_node_pool_async(
            CLUSTER_ID, "np-manual", csm.ScaleClusterNodePoolRequest(count=10)
        )
    assert caught.value.code == "InvalidParameter"
