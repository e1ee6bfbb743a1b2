"""The agent scales a pool within the bounds it is configured with (ACK's auto scaling is off on
it, so ACK reports max_instances 0), stops at the cluster's node quota with an Event naming it,
and, with companion_pools off, refuses a listed pool whose ACK auto scaling is on. Real HTTP: kubernetes-asyncio against the
simulated API server, the CS SDK against the emulator."""

from __future__ import annotations

import pytest

from agent.app.managed_pools import PoolsRefused
from agent.model import PoolBounds
from agent.sim.cloud.cs_api import scale_requests_of, writes_of
from tests.support.agent_world import World, config_for
from tests.support.cluster import running
from tests.support.waiting import until


def events(world: World, reason: str) -> list[dict]:
    items, _ = world.cluster.store.list("events", namespace="ray")
    return [e for e in items if e.get("reason") == reason]


async def test_a_pool_reporting_max_instances_0_grows_to_the_configured_bound(
    world: World,
) -> None:
    """ACK reports auto_scaling off and max_instances 0; the configured np-cpu:0:10 counts."""
    (raw,) = [p for p in world.sim_pools.describe_pools() if p.pool_id == "np-cpu"]
    assert (raw.auto_scaling_enabled, raw.max_size) == (False, 0)
    agent = world.agent(config_for(world))
    async with running(agent):
        world.add_workers(6)
        await until(lambda: world.phases() == ["Running"] * 6)
    assert [w.summary.get("desired_size") for w in scale_requests_of(world.cs_app)] == [2]


async def test_the_configured_max_caps_the_raise(world: World) -> None:
    """np-cpu:0:1 holds three 1-vCPU workers at most; the rest wait, and the pods say why."""
    config = config_for(world, managed_pools=(PoolBounds("np-cpu", 0, 1),))
    agent = world.agent(config)
    async with running(agent):
        world.add_workers(6)
        await until(lambda: len(events(world, "NotTriggerScaleUp")) >= 3)
    assert [w.summary.get("desired_size") for w in scale_requests_of(world.cs_app)] == [1]
    assert "np-cpu at max size 1" in events(world, "NotTriggerScaleUp")[0]["message"]


async def test_the_node_quota_stops_a_scale_out_with_an_event_naming_it(world: World) -> None:
    """A quota of 1 node (DescribeUserQuota): one node is added, the pods left over carry a
    NotTriggerScaleUp Event naming the quota, and CS never refuses a write."""
    world.sim_pools.node_quota = 1
    agent = world.agent(config_for(world))
    async with running(agent):
        world.add_workers(6)
        await until(lambda: len(events(world, "NotTriggerScaleUp")) >= 3)
        assert agent.node_quota == 1
    assert [w.summary.get("desired_size") for w in scale_requests_of(world.cs_app)] == [1]
    assert all(w.code is None for w in writes_of(world.cs_app))
    message = events(world, "NotTriggerScaleUp")[0]["message"]
    assert "cluster node quota 1 reached" in message


async def test_an_unreadable_quota_falls_back_to_the_configured_one(world: World) -> None:
    """DescribeUserQuota throttled at start-up: the agent assumes node_quota_fallback."""
    world.cs_faults.cs_throttle_ratio = 1.0
    agent = world.agent(config_for(world, node_quota_fallback=7))
    await agent.check_pools()
    assert agent.node_quota == 7
    world.cs_faults.cs_throttle_ratio = 0.0
    await agent.check_pools()
    assert agent.node_quota == 100  # read once CS answers


async def test_without_companion_pools_a_listed_pool_ack_autoscales_is_refused_at_start(
    world: World,
) -> None:
    """companion_pools off: two autoscalers on one pool would fight, so the start stops with
    what to change (as before companion mode); allow_ack_autoscaled_pools manages it anyway."""
    world.sim_pools.set_ack_autoscaling("np-cpu", True)
    agent = world.agent(config_for(world, companion_pools=False))
    with pytest.raises(PoolsRefused, match=r"np-cpu \(cpu\) has ACK node autoscaling enabled"):
        await agent.check_pools()
    allowed = world.agent(config_for(world, companion_pools=False, allow_ack_autoscaled_pools=True))
    await allowed.check_pools()
    assert [(p.pool_id, p.companion) for p in allowed.pool_infos] == [("np-cpu", False)]


async def test_a_missing_pool_is_refused_naming_the_pools_there_are(world: World) -> None:
    agent = world.agent(config_for(world, managed_pools=(PoolBounds("np-typo", 0, 3),)))
    with pytest.raises(PoolsRefused, match=r"np-typo is not in the cluster \(its pools: np-cpu"):
        await agent.check_pools()
