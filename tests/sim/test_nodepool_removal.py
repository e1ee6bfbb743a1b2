"""RemoveNodePoolNodes as strict as ACK's ("remove a node"): the drain respects
PodDisruptionBudgets (and, modelled strictly, safe-to-evict "false"), retries refused evictions,
and at the pool's drain timeout fails the task without removing the node; subscription (PrePaid)
instances, and any removed with release_node=false, are not released and stay billed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent.sim.world.nodepools import NodePools
from tests.support.builders import build_test_pod
from tests.support.sim_pools import node_pools, nodes_in_pool, pool_spec, started

DRAIN_TIMEOUT = 30.0
RS = [
    {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs", "controller": True}
]
DS = [
    {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "logs", "uid": "ds", "controller": True}
]


@pytest.fixture
async def pools(sim: Any) -> AsyncIterator[NodePools]:
    """np-cpu with two booted nodes (drain timeout 30 s), np-sub likewise but PrePaid."""
    service = node_pools(
        sim.store,
        sim.clock,
        pool_spec("np-cpu", desired=2, drain_timeout_seconds=DRAIN_TIMEOUT),
        pool_spec("np-sub", desired=1, instance_charge_type="PrePaid"),
    )
    async with started(service):
        yield service


def node_names(sim: Any, pool: str = "np-cpu") -> list[str]:
    return sorted(n["metadata"]["name"] for n in nodes_in_pool(sim.store, pool))


async def running_pod(sim: Any, name: str, node: str, **fields: Any) -> None:
    """A web pod bound to `node`, once the kubelet reports it Running and Ready."""
    fields.setdefault("owners", RS)
    pod = build_test_pod(name, labels={"app": "web"}, node=node, **fields)
    sim.store.create("pods", pod, namespace="default")

    def ready() -> bool:
        status = sim.store.get("pods", name, namespace="default").get("status") or {}
        conditions = status.get("conditions") or ()
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    await sim.until(ready)


def protect(sim: Any, *, min_available: int = 1) -> None:
    sim.store.create(
        "poddisruptionbudgets",
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "minAvailable": min_available},
        },
        namespace="default",
    )


async def ended(sim: Any, pools: NodePools, task_id: str) -> Any:
    """The task once it is no longer running (bounded by the drain timeout, in simulated time)."""
    deadline = sim.clock.now() + DRAIN_TIMEOUT + 30
    while (task := pools.describe_task(task_id)).state == "running":
        assert sim.clock.now() < deadline, "the removal task never ended"
        await sim.clock.sleep(1)
    return task


def instance_of(pools: NodePools, node: str) -> str:
    instance = pools.instance_id_of(node)
    assert instance is not None
    return instance


async def test_a_drain_a_budget_blocks_fails_and_the_node_stays(sim, pools):
    """The only pod a budget protects is never evicted: at the drain timeout the task fails
    naming the node and the pod, the node stays (cordoned) and the pool keeps its size."""
    node = node_names(sim)[0]
    await running_pod(sim, "web-1", node)
    protect(sim)
    started_at = sim.clock.now()
    task = pools.remove_nodes("np-cpu", [instance_of(pools, node)], drain=True, release=True)
    assert task.state == "running"
    failed = await ended(sim, pools, task.task_id)
    assert failed.state == "fail"
    assert sim.clock.now() - started_at >= DRAIN_TIMEOUT
    assert node in failed.error and "default/web-1" in failed.error
    assert "The disruption budget web needs 1 healthy pods and has 1 currently" in failed.error
    assert "the node was not removed" in failed.error
    pod = sim.store.get("pods", "web-1", namespace="default")
    assert not pod["metadata"].get("deletionTimestamp")
    assert node in node_names(sim)
    assert sim.store.get("nodes", node)["spec"]["unschedulable"]  # ACK is not known to uncordon
    assert pools.describe_pool("np-cpu").desired == 2
    (view,) = [n for n in pools.describe_nodes("np-cpu") if n.node_name == node]
    assert view.state == "running"


async def test_a_refused_eviction_is_retried_until_the_budget_allows_it(sim, pools):
    """The drain retries: once a second healthy pod runs elsewhere the budget allows one
    disruption, the pod is evicted, the node removed and the task succeeds."""
    node, other = node_names(sim)
    await running_pod(sim, "web-1", node)
    protect(sim)
    task = pools.remove_nodes("np-cpu", [instance_of(pools, node)], drain=True, release=True)
    await sim.clock.sleep(DRAIN_TIMEOUT / 3)
    assert pools.describe_task(task.task_id).state == "running"
    await running_pod(sim, "web-2", other)
    done = await ended(sim, pools, task.task_id)
    assert done.state == "success" and done.error is None
    assert node_names(sim) == [other]
    assert pools.describe_pool("np-cpu").desired == 1


async def test_a_pod_annotated_not_safe_to_evict_holds_the_drain(sim, pools):
    """safe-to-evict "false" (no budget at all): never evicted, so the drain fails."""
    node = node_names(sim)[0]
    annotations = {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}
    await running_pod(sim, "web-1", node, annotations=annotations)
    task = pools.remove_nodes("np-cpu", [instance_of(pools, node)], drain=True, release=True)
    failed = await ended(sim, pools, task.task_id)
    assert failed.state == "fail" and "safe-to-evict" in failed.error
    assert node in node_names(sim)


async def test_daemonset_pods_do_not_hold_a_drain(sim, pools):
    """A DaemonSet pod is left alone: the node goes at once."""
    node = node_names(sim)[0]
    await running_pod(sim, "logs-1", node, owners=DS)
    task = pools.remove_nodes("np-cpu", [instance_of(pools, node)], drain=True, release=True)
    assert pools.describe_task(task.task_id).state == "success"
    assert node not in node_names(sim)


async def test_one_failed_node_fails_the_task_the_others_go(sim, pools):
    """Two nodes in one call: the empty one is removed, the blocked one stays; the task fails."""
    blocked, empty = node_names(sim)
    await running_pod(sim, "web-1", blocked)
    protect(sim)
    ids = [instance_of(pools, blocked), instance_of(pools, empty)]
    task = pools.remove_nodes("np-cpu", ids, drain=True, release=True)
    failed = await ended(sim, pools, task.task_id)
    assert failed.state == "fail" and blocked in failed.error and empty not in failed.error
    assert node_names(sim) == [blocked]
    assert pools.describe_pool("np-cpu").desired == 1


def billed(pools: NodePools, node: str) -> float:
    (usage,) = [u for u in pools.usage() if u.node_name == node]
    return usage.billed_seconds


async def test_a_prepaid_node_leaves_the_cluster_but_is_billed_on(sim, pools):
    """release_node=true does not release a subscription instance: the node is gone, its
    instance is billed to the end of the run."""
    (node,) = node_names(sim, "np-sub")
    task = pools.remove_nodes("np-sub", [instance_of(pools, node)], drain=True, release=True)
    assert pools.describe_task(task.task_id).state == "success"
    assert node_names(sim, "np-sub") == []
    before = billed(pools, node)
    await sim.clock.sleep(10)
    assert billed(pools, node) >= before + 10


@pytest.mark.parametrize(("release", "billed_on"), [(True, False), (False, True)])
async def test_release_node_decides_whether_a_postpaid_instance_is_billed_on(
    sim, pools, release, billed_on
):
    """Pay-as-you-go: released with release_node=true (billing stops), kept without."""
    node = node_names(sim)[0]
    pools.remove_nodes("np-cpu", [instance_of(pools, node)], drain=True, release=release)
    assert node not in node_names(sim)
    before = billed(pools, node)
    await sim.clock.sleep(10)
    assert (billed(pools, node) > before) is billed_on
