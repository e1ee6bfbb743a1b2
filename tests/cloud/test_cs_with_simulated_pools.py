"""The CS emulator over the simulator's real node pools (agent.sim.world.nodepools) and kubelet: a
desired-size change made through the CS SDK produces Node objects that turn Ready, and the task
reports running, then success."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from alibabacloud_cs20151215 import models as csm

from agent.sim.cloud.credentials import static_test_keys
from agent.sim.cloud.cs_api import build_cs_app
from agent.sim.kube.store import ObjectStore
from agent.sim.world.clock import SimClock
from agent.sim.world.kubelet import Kubelet
from agent.sim.world.nodepools import BootLatency, NodePools, PoolSpec
from tests.support.cloud.cloud_apis import CLUSTER_ID, REGION_ID, cs_client, desired_size_request
from tests.support.cloud.sdk_wire import missing_from, raw_cs_json
from tests.support.cloud.serving import serve

SPEED = 200.0  # simulated seconds per real second
# Boots of 5-7 simulated minutes last 1.5-2 s real: ample margin to see the nodes NotReady first.
BOOT = BootLatency(300.0, 420.0)


@pytest.fixture
async def sim_cs() -> AsyncIterator[tuple[str, SimClock, ObjectStore]]:
    clock = SimClock(speed=SPEED)
    store = ObjectStore(now=clock.iso)
    pools = NodePools(
        store,
        clock,
        cluster_id=CLUSTER_ID,
        region_id=REGION_ID,
        zone=f"{REGION_ID}-h",
        pools=[
            PoolSpec(
                pool_id="np-cpu",
                name="cpu",
                instance_type="ecs.g7.xlarge",
                max_size=10,
                desired=1,
                boot=BOOT,
            )
        ],
    )
    kubelet = Kubelet(store, clock)
    await pools.start()
    await kubelet.start()
    try:
        async with serve(build_cs_app(pools, keys=static_test_keys(), now=clock.now)) as endpoint:
            yield endpoint, clock, store
    finally:
        await kubelet.stop()
        await pools.stop()


async def test_raised_desired_size_boots_nodes_that_turn_ready(
    sim_cs: tuple[str, SimClock, ObjectStore],
) -> None:
    """ModifyClusterNodePool → NotReady nodes → Ready nodes, with the task going running → success."""
    endpoint, clock, store = sim_cs
    client = cs_client(endpoint)
    task_id = (
        await client.modify_cluster_node_pool_async(
            CLUSTER_ID,
            "np-cpu",
            desired_size_request(3),
        )
    ).body.task_id
    assert (await client.describe_task_info_async(task_id)).body.state == "running"
    booting = (
        await client.describe_cluster_nodes_async(
            CLUSTER_ID, csm.DescribeClusterNodesRequest(nodepool_id="np-cpu")
        )
    ).body
    assert sorted(n.node_status for n in booting.nodes) == ["NotReady", "NotReady", "Ready"]
    state = "running"
    for _ in range(100):  # at most 1,000 simulated seconds (~5 s real)
        state = (await client.describe_task_info_async(task_id)).body.state
        if state != "running":
            break
        await clock.sleep(10)
    assert state == "success"
    nodes = (
        await client.describe_cluster_nodes_async(
            CLUSTER_ID, csm.DescribeClusterNodesRequest(nodepool_id="np-cpu")
        )
    ).body
    assert [(n.state, n.node_status) for n in nodes.nodes] == [("running", "Ready")] * 3
    assert {n.node_name for n in nodes.nodes} == {
        o["metadata"]["name"] for o in store.list("nodes")[0]
    }
    raw = await raw_cs_json(
        client, action="DescribeClusterNodePools", pathname=f"/clusters/{CLUSTER_ID}/nodepools"
    )
    assert (
        missing_from(raw, csm.DescribeClusterNodePoolsResponseBody().from_map(raw).to_map()) == []
    )
    status = raw["nodepools"][0]["status"]
    assert (status["total_nodes"], status["healthy_nodes"]) == (3, 3)
