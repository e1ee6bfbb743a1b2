"""The CS emulator through the real alibabacloud-cs20151215 SDK: reads round-trip into the SDK's
models, writes move the pools, tasks report progress, and every write is journaled."""

from __future__ import annotations

import contextlib

from alibabacloud_cs20151215 import models as csm
from alibabacloud_tea_openapi.exceptions import ClientException

from agent.sim.cloud.cs_api import scale_requests_of, writes_of
from tests.support.cloud.cloud_apis import CLUSTER_ID, CsHarness, desired_size_request
from tests.support.cloud.sdk_wire import missing_from, raw_cs_json


async def test_describe_pools_round_trips_into_the_sdk_model(cs: CsHarness) -> None:
    """Every field the emulator sends for DescribeClusterNodePools survives the SDK's model."""
    client = cs.client()
    raw = await raw_cs_json(
        client, action="DescribeClusterNodePools", pathname=f"/clusters/{CLUSTER_ID}/nodepools"
    )
    model = csm.DescribeClusterNodePoolsResponseBody().from_map(raw)
    assert missing_from(raw, model.to_map()) == []
    assert [p["nodepool_info"]["nodepool_id"] for p in raw["nodepools"]] == ["np-cpu", "np-gpu"]


async def test_pool_fields_arrive_typed(cs: CsHarness) -> None:
    """The fields the agent reads arrive in the typed SDK response."""
    reply = await cs.client().describe_cluster_node_pools_async(
        CLUSTER_ID, csm.DescribeClusterNodePoolsRequest()
    )
    cpu = reply.body.nodepools[0]
    assert reply.status_code == 200
    assert (cpu.nodepool_info.nodepool_id, cpu.nodepool_info.name) == ("np-cpu", "cpu")
    assert cpu.scaling_group.instance_types == ["ecs.g7.xlarge"]
    assert cpu.scaling_group.desired_size == 1
    assert (cpu.auto_scaling.min_instances, cpu.auto_scaling.max_instances) == (0, 20)
    assert (cpu.status.total_nodes, cpu.status.healthy_nodes, cpu.status.initial_nodes) == (1, 1, 0)
    assert {(t.key, t.value) for t in cpu.kubernetes_config.labels} == {
        ("alibabacloud.com/nodepool-id", "np-cpu"),
        ("team", "ray"),
    }
    assert [(t.key, t.value, t.effect) for t in cpu.kubernetes_config.taints] == [
        ("dedicated", "ray", "NoSchedule")
    ]


async def test_detail_nodes_and_task_round_trip_into_sdk_models(cs: CsHarness) -> None:
    """DescribeClusterNodePoolDetail, DescribeClusterNodes and DescribeTaskInfo lose nothing in the SDK."""
    client = cs.client()
    task = (
        await client.modify_cluster_node_pool_async(
            CLUSTER_ID,
            "np-cpu",
            desired_size_request(2),
        )
    ).body.task_id
    checks = [
        (
            "DescribeClusterNodePoolDetail",
            f"/clusters/{CLUSTER_ID}/nodepools/np-cpu",
            None,
            csm.DescribeClusterNodePoolDetailResponseBody,
        ),
        (
            "DescribeClusterNodes",
            f"/clusters/{CLUSTER_ID}/nodes",
            {"nodepool_id": "np-cpu"},
            csm.DescribeClusterNodesResponseBody,
        ),
        ("DescribeTaskInfo", f"/tasks/{task}", None, csm.DescribeTaskInfoResponseBody),
    ]
    for action, path, query, model_cls in checks:
        raw = await raw_cs_json(client, action=action, pathname=path, query=query)
        assert missing_from(raw, model_cls().from_map(raw).to_map()) == [], action
    nodes = (
        await client.describe_cluster_nodes_async(
            CLUSTER_ID, csm.DescribeClusterNodesRequest(nodepool_id="np-cpu")
        )
    ).body
    assert [(n.state, n.node_status) for n in nodes.nodes] == [
        ("running", "Ready"),
        ("initial", "NotReady"),
    ]
    assert nodes.nodes[0].ip_address and nodes.nodes[0].instance_id.startswith("i-")


async def test_modify_sets_an_absolute_target_and_ignores_empty_arrays(cs: CsHarness) -> None:
    """ModifyClusterNodePool applies desired_size, is idempotent, and empty arrays clear nothing."""
    client = cs.client()
    request = csm.ModifyClusterNodePoolRequest(
        scaling_group=csm.ModifyClusterNodePoolRequestScalingGroup(
            desired_size=3, instance_types=[], vswitch_ids=[], data_disks=[], tags=[]
        ),
        kubernetes_config=csm.ModifyClusterNodePoolRequestKubernetesConfig(labels=[], taints=[]),
    )
    for _ in range(2):
        reply = await client.modify_cluster_node_pool_async(CLUSTER_ID, "np-cpu", request)
        assert reply.body.nodepool_id == "np-cpu" and reply.body.task_id and reply.body.request_id
    pool = cs.pools.describe_pool("np-cpu")
    assert (pool.desired, pool.total_nodes) == (3, 3)
    detail = (await client.describe_cluster_node_pool_detail_async(CLUSTER_ID, "np-cpu")).body
    assert detail.scaling_group.instance_types == ["ecs.g7.xlarge"]
    assert len(detail.kubernetes_config.labels) == 2 and len(detail.kubernetes_config.taints) == 1
    assert detail.status.state == "scaling"


async def test_scale_adds_count_nodes(cs: CsHarness) -> None:
    """ScaleClusterNodePool adds `count` to the current target."""
    reply = await cs.client().scale_cluster_node_pool_async(
        CLUSTER_ID, "np-cpu", csm.ScaleClusterNodePoolRequest(count=2)
    )
    assert reply.body.task_id
    assert cs.pools.describe_pool("np-cpu").desired == 3


async def test_remove_nodes_reads_instance_ids_the_way_the_sdk_encodes_them(cs: CsHarness) -> None:
    """RemoveNodePoolNodes gets the JSON-list query value and the drain/release flags."""
    client = cs.client()
    await client.modify_cluster_node_pool_async(
        CLUSTER_ID,
        "np-cpu",
        desired_size_request(3),
    )
    ids = [n.instance_id for n in cs.pools.describe_nodes("np-cpu")]
    reply = await client.remove_node_pool_nodes_async(
        CLUSTER_ID,
        "np-cpu",
        csm.RemoveNodePoolNodesRequest(instance_ids=ids[1:], drain_node=True, release_node=True),
    )
    assert reply.body.task_id and reply.body.request_id
    assert [n.instance_id for n in cs.pools.describe_nodes("np-cpu")] == ids[:1]
    removal = writes_of(cs.app)[-1]
    assert removal.action == "RemoveNodePoolNodes"
    assert removal.summary["instance_ids"] == ids[1:]
    assert (removal.summary["drain_node"], removal.summary["release_node"]) == (True, True)


async def test_describe_nodes_filters_by_pool_and_pages(cs: CsHarness) -> None:
    """DescribeClusterNodes honours nodepool_id and pages 10 at a time by default."""
    client = cs.client()
    await client.modify_cluster_node_pool_async(
        CLUSTER_ID,
        "np-cpu",
        desired_size_request(12),
    )
    await client.scale_cluster_node_pool_async(
        CLUSTER_ID, "np-gpu", csm.ScaleClusterNodePoolRequest(count=1)
    )
    first = (
        await client.describe_cluster_nodes_async(
            CLUSTER_ID, csm.DescribeClusterNodesRequest(nodepool_id="np-cpu")
        )
    ).body
    second = (
        await client.describe_cluster_nodes_async(
            CLUSTER_ID, csm.DescribeClusterNodesRequest(nodepool_id="np-cpu", page_number="2")
        )
    ).body
    everything = (
        await client.describe_cluster_nodes_async(
            CLUSTER_ID, csm.DescribeClusterNodesRequest(page_size="100")
        )
    ).body
    assert (len(first.nodes), len(second.nodes), first.page.total_count) == (10, 2, 12)
    assert {n.nodepool_id for n in first.nodes + second.nodes} == {"np-cpu"}
    assert len({n.instance_id for n in first.nodes + second.nodes}) == 12
    assert everything.page.total_count == 13


async def test_task_reports_running_then_success(cs: CsHarness) -> None:
    """DescribeTaskInfo says running while nodes boot and success once they are Ready."""
    client = cs.client()
    task_id = (
        await client.modify_cluster_node_pool_async(
            CLUSTER_ID,
            "np-cpu",
            desired_size_request(4),
        )
    ).body.task_id
    running = (await client.describe_task_info_async(task_id)).body
    assert (running.task_id, running.state, running.cluster_id) == (task_id, "running", CLUSTER_ID)
    cs.clock.advance(61)
    done = (await client.describe_task_info_async(task_id)).body
    assert done.state == "success"
    assert cs.pools.describe_pool("np-cpu").healthy_nodes == 4


async def test_failed_task_reports_its_error_code_and_message(cs: CsHarness) -> None:
    """A task that failed says fail, with the service's "Code: message" split into error fields."""
    client = cs.client()
    task_id = (
        await client.scale_cluster_node_pool_async(
            CLUSTER_ID, "np-gpu", csm.ScaleClusterNodePoolRequest(count=1)
        )
    ).body.task_id
    cs.pools.fail_task(
        task_id,
        "OperationDenied.NoStock: The requested resource is sold out in the specified zone.",
    )
    failed = (await client.describe_task_info_async(task_id)).body
    assert failed.state == "fail"
    assert (failed.error.code, failed.error.message) == (
        "OperationDenied.NoStock",
        "The requested resource is sold out in the specified zone.",
    )


async def test_every_write_is_journaled_with_its_outcome(cs: CsHarness) -> None:
    """Accepted and refused writes are recorded; scale requests count only accepted size changes."""
    client = cs.client()
    await client.modify_cluster_node_pool_async(
        CLUSTER_ID,
        "np-cpu",
        desired_size_request(5),
    )
    await client.scale_cluster_node_pool_async(
        CLUSTER_ID, "np-gpu", csm.ScaleClusterNodePoolRequest(count=1)
    )
    with contextlib.suppress(ClientException):  # the refusal itself is asserted in test_cs_refusals
        await client.modify_cluster_node_pool_async(
            CLUSTER_ID,
            "np-gpu",
            desired_size_request(9),
        )
    await client.describe_cluster_node_pools_async(
        CLUSTER_ID, csm.DescribeClusterNodePoolsRequest()
    )
    journal = writes_of(cs.app)
    assert [(w.action, w.status, w.code) for w in journal] == [
        ("ModifyClusterNodePool", 200, None),
        ("ScaleClusterNodePool", 200, None),
        ("ModifyClusterNodePool", 400, "InvalidParameter"),
    ]
    assert journal[0].summary == {"nodepool_id": "np-cpu", "desired_size": 5}
    assert journal[1].summary == {"nodepool_id": "np-gpu", "count": 1}
    assert len(scale_requests_of(cs.app)) == 2
    assert all(w.time > 0 for w in journal) and journal[0].task_id
