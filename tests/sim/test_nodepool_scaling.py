"""Simulated node pools: desired size up launches ACK-like nodes that boot; down drains them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent.sim.cloud.cloud_model import CloudError
from agent.sim.world.nodepools import (
    POOL_LABEL,
    BootLatency,
    NodePools,
    PoolSpec,
)
from agent.sim.world.nodes import READY_AT_ANNOTATION
from tests.support.builders import build_test_pod
from tests.support.sim_pools import node_pools, nodes_in_pool, pool_spec, started

NODE_NAME = re.compile(r"^cn-hangzhou\.172\.16\.\d{1,3}\.\d{1,3}$")
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}


def pools_of(sim: Any, *specs: PoolSpec) -> NodePools:
    return node_pools(sim.store, sim.clock, *specs, seed=4)


@pytest.fixture
async def pools(sim: Any) -> AsyncIterator[NodePools]:
    """A CPU pool (boot 20–30 s) and a tainted GPU pool, started over the sim core."""
    service = pools_of(
        sim,
        pool_spec(max_size=5, labels={"team": "ray"}, boot=BootLatency(20, 30)),
        pool_spec(
            "np-gpu",
            instance_type="ecs.gn7i-c8g1.2xlarge",
            max_size=2,
            taints=(GPU_TAINT,),
            boot=BootLatency(20, 30),
        ),
    )
    async with started(service):
        yield service


def is_ready(node: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])


def worker_pod(name: str, *, node: str | None = None, daemonset: bool = False) -> dict[str, Any]:
    owners = [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds", "uid": "u"}]
    spec: dict[str, Any] = {"terminationGracePeriodSeconds": 5}
    if node:
        spec["nodeSelector"] = {"kubernetes.io/hostname": node}
    return build_test_pod(
        name,
        namespace="default",
        owners=owners if daemonset else None,
        container="c",
        cpu="1",
        **spec,
    )


async def test_raising_desired_creates_ack_named_labelled_nodes(sim, pools):
    """Each new node is named <region>.<ip>, carries ACK's labels, the pool's labels and taints."""
    pools.set_desired("np-gpu", 2)
    nodes = nodes_in_pool(sim.store, "np-gpu")
    assert len(nodes) == 2
    assert len({n["metadata"]["name"] for n in nodes}) == 2
    for node in nodes:
        name = node["metadata"]["name"]
        labels = node["metadata"]["labels"]
        assert NODE_NAME.match(name), name
        assert labels[POOL_LABEL] == "np-gpu"
        assert labels["node.kubernetes.io/instance-type"] == "ecs.gn7i-c8g1.2xlarge"
        assert labels["topology.kubernetes.io/zone"] == "cn-hangzhou-k"
        assert labels["topology.kubernetes.io/region"] == "cn-hangzhou"
        assert labels["kubernetes.io/hostname"] == name
        assert GPU_TAINT in node["spec"]["taints"]
        assert node["status"]["capacity"]["nvidia.com/gpu"] == "1"
        assert node["status"]["allocatable"]["cpu"] == "7800m"
        assert node["spec"]["providerID"].startswith("cn-hangzhou.i-")


async def test_new_nodes_are_not_ready_until_booted(sim, pools):
    """Nodes start NotReady with the not-ready taint and a ready-at within the boot latency."""
    launched_at = sim.clock.now()
    pools.set_desired("np-cpu", 2)
    for node in nodes_in_pool(sim.store, "np-cpu"):
        assert not is_ready(node)
        assert {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"} in node["spec"][
            "taints"
        ]
        ready_at = float(node["metadata"]["annotations"][READY_AT_ANNOTATION])
        assert launched_at + 20 <= ready_at <= sim.clock.now() + 30
        assert node["metadata"]["labels"]["team"] == "ray"
    await sim.until(lambda: all(is_ready(n) for n in nodes_in_pool(sim.store, "np-cpu")))
    assert all(
        t["key"] != "node.kubernetes.io/not-ready"
        for n in nodes_in_pool(sim.store, "np-cpu")
        for t in n["spec"].get("taints", [])
    )


async def test_scale_out_task_runs_until_the_nodes_are_ready(sim, pools):
    """DescribeTaskInfo: running while the nodes boot, success once they are Ready."""
    task = pools.set_desired("np-cpu", 3)
    assert task.state == "running"
    view = pools.describe_pool("np-cpu")
    assert (view.desired, view.total_nodes, view.initial_nodes, view.healthy_nodes) == (3, 3, 3, 0)
    await sim.until(lambda: pools.describe_task(task.task_id).state != "running")
    assert pools.describe_task(task.task_id).state == "success"
    view = pools.describe_pool("np-cpu")
    assert (view.healthy_nodes, view.initial_nodes) == (3, 0)
    states = {n.state for n in pools.describe_nodes("np-cpu")}
    assert states <= {"initial", "running"}
    assert all(n.node_status == "Ready" for n in pools.describe_nodes("np-cpu"))


async def test_setting_the_same_desired_twice_launches_nothing_more(sim, pools):
    """ModifyClusterNodePool with an unchanged desired size is idempotent."""
    pools.set_desired("np-cpu", 2)
    again = pools.set_desired("np-cpu", 2)
    assert again.state == "success"
    assert len(nodes_in_pool(sim.store, "np-cpu")) == 2


async def test_scale_by_adds_count_nodes(sim, pools):
    """ScaleClusterNodePool adds `count` to the desired size."""
    pools.set_desired("np-cpu", 1)
    pools.scale_by("np-cpu", 2)
    assert pools.describe_pool("np-cpu").desired == 3
    assert len(nodes_in_pool(sim.store, "np-cpu")) == 3


async def test_ack_reports_no_bounds_while_its_auto_scaling_is_off(sim, pools):
    """auto_scaling.min/max_instances read 0 with ACK's auto scaling off (the API default; they
    take effect only when it is on), and the scenario's bounds once it is switched on. The
    bounds are enforced in front of the pools, by the CS emulator (cloud_model.check_desired)."""
    view = pools.describe_pool("np-cpu")
    assert (view.auto_scaling_enabled, view.min_size, view.max_size) == (False, 0, 0)
    pools.set_ack_autoscaling("np-cpu", True)
    view = pools.describe_pool("np-cpu")
    assert (view.auto_scaling_enabled, view.max_size) == (True, 5)


async def test_unknown_pool_is_not_found(sim, pools):
    """A pool id the cluster does not have is a 404."""
    with pytest.raises(CloudError) as refused:
        pools.describe_pool("np-nope")
    assert refused.value.status == 404


async def test_lowering_desired_drains_pods_and_deletes_nodes(sim, pools):
    """Scale-in cordons the node, evicts workload pods (DaemonSet pods stay), then deletes it."""
    pools.set_desired("np-cpu", 1)
    await sim.until(lambda: all(is_ready(n) for n in nodes_in_pool(sim.store, "np-cpu")))
    node = nodes_in_pool(sim.store, "np-cpu")[0]["metadata"]["name"]
    sim.store.create("pods", worker_pod("work", node=node))
    sim.store.create("pods", worker_pod("agent", node=node, daemonset=True))
    await sim.until(
        lambda: all(
            sim.store.get("pods", p, namespace="default")["status"].get("phase") == "Running"
            for p in ("work", "agent")
        )
    )
    task = pools.set_desired("np-cpu", 0)
    assert pools.describe_pool("np-cpu").removing_nodes == 1
    cordoned = sim.store.get("nodes", node)
    assert cordoned["spec"]["unschedulable"] is True
    evicted = sim.store.get("pods", "work", namespace="default")
    assert evicted["metadata"].get("deletionTimestamp")
    assert not sim.store.get("pods", "agent", namespace="default")["metadata"].get(
        "deletionTimestamp"
    )
    await sim.until(lambda: pools.describe_task(task.task_id).state == "success")
    assert nodes_in_pool(sim.store, "np-cpu") == []
    view = pools.describe_pool("np-cpu")
    assert (view.desired, view.total_nodes, view.removing_nodes) == (0, 0, 0)


async def test_remove_nodes_lowers_desired_and_removes_that_instance(sim, pools):
    """RemoveNodePoolNodes deletes exactly the named instance and lowers desired by one."""
    pools.set_desired("np-cpu", 3)
    await sim.until(lambda: all(is_ready(n) for n in nodes_in_pool(sim.store, "np-cpu")))
    victim = pools.describe_nodes("np-cpu")[1]
    task = pools.remove_nodes("np-cpu", [victim.instance_id], drain=True, release=True)
    await sim.until(lambda: pools.describe_task(task.task_id).state == "success")
    names = {n["metadata"]["name"] for n in nodes_in_pool(sim.store, "np-cpu")}
    assert victim.node_name not in names
    assert len(names) == 2
    assert pools.describe_pool("np-cpu").desired == 2


async def test_remove_nodes_refuses_an_instance_of_another_pool(sim, pools):
    """An instance id not in the pool is a 400, and nothing is removed."""
    pools.set_desired("np-gpu", 1)
    other = pools.describe_nodes("np-gpu")[0]
    with pytest.raises(CloudError) as refused:
        pools.remove_nodes("np-cpu", [other.instance_id], drain=True, release=True)
    assert refused.value.status == 400
    assert len(nodes_in_pool(sim.store, "np-gpu")) == 1


async def test_initial_desired_nodes_exist_ready_at_start(sim):
    """A pool with desired > 0 in the scenario starts with that many Ready nodes."""
    service = pools_of(
        sim, PoolSpec(pool_id="np-warm", name="warm", instance_type="ecs.c7.2xlarge", desired=2)
    )
    await service.start()
    try:
        await sim.until(lambda: len(nodes_in_pool(sim.store, "np-warm")) == 2)
        await sim.until(lambda: all(is_ready(n) for n in nodes_in_pool(sim.store, "np-warm")))
        assert service.describe_pool("np-warm").healthy_nodes == 2
    finally:
        await service.stop()


async def test_scale_in_removes_empty_nodes_before_busy_ones(sim, pools):
    """Lowering desired keeps the node that runs a workload pod and removes the empty ones."""
    pools.set_desired("np-cpu", 3)
    await sim.until(lambda: all(is_ready(n) for n in nodes_in_pool(sim.store, "np-cpu")))
    busy = nodes_in_pool(sim.store, "np-cpu")[1]["metadata"]["name"]
    sim.store.create("pods", worker_pod("keeper", node=busy))
    await sim.until(
        lambda: (
            sim.store.get("pods", "keeper", namespace="default")["status"].get("phase") == "Running"
        )
    )
    task = pools.set_desired("np-cpu", 1)
    await sim.until(lambda: pools.describe_task(task.task_id).state == "success")
    assert [n["metadata"]["name"] for n in nodes_in_pool(sim.store, "np-cpu")] == [busy]
    assert not sim.store.get("pods", "keeper", namespace="default")["metadata"].get(
        "deletionTimestamp"
    )


async def test_scale_in_prefers_nodes_still_booting(sim, pools):
    """A node not Ready yet is given up before a Ready one."""
    pools.set_desired("np-cpu", 1)
    await sim.until(lambda: all(is_ready(n) for n in nodes_in_pool(sim.store, "np-cpu")))
    (ready,) = [n["metadata"]["name"] for n in nodes_in_pool(sim.store, "np-cpu")]
    pools.set_desired("np-cpu", 2)
    pools.set_desired("np-cpu", 1)
    await sim.until(lambda: len(nodes_in_pool(sim.store, "np-cpu")) == 1)
    assert [n["metadata"]["name"] for n in nodes_in_pool(sim.store, "np-cpu")] == [ready]
