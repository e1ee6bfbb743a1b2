"""Applying scale-in replies over the wire: the real Kubernetes client and CS SDK against the
embedded ACK (three booted, empty pool nodes, no workload)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent.clients.cs import CloudCallError, NodePoolClient
from agent.clients.kube import KubeClient
from agent.ingest.node_pods import TO_BE_DELETED_TAINT
from agent.scale_in.actuation import ScaleInActuator
from agent.scale_in.marks import MARK_ANNOTATIONS
from agent.sim.embedded import EmbeddedAck
from agent.sim.scenario import load_scenario
from agent.sim.world.nodepools import POOL_LABEL
from agent.sim.world.ray import JobSpec
from tests.support.cluster import pool_client

POOL = "np-cpu"
NOW = "2026-11-29T05:00:00Z"


@pytest.fixture(params=[0])
async def ack(request: pytest.FixtureRequest, no_proxies: None) -> AsyncIterator[EmbeddedAck]:
    """The seed cluster with three booted, empty pool nodes (min: the param) and no job."""
    scenario = load_scenario("seed")
    pool = dataclasses.replace(scenario.pools[0], desired=3, min_size=request.param)
    scenario = dataclasses.replace(scenario, pools=(pool,), job=JobSpec())
    async with EmbeddedAck(scenario, speed=50, faults=False) as embedded:
        yield embedded


@pytest.fixture
async def actuator(ack: EmbeddedAck) -> AsyncIterator[ScaleInActuator]:
    kube = await KubeClient.connect(api_url=ack.kubernetes_url)
    try:
        pools = pool_client(ack)
        yield ScaleInActuator(pools, kube)
    finally:
        await kube.close()


def pool_nodes(ack: EmbeddedAck) -> dict[str, dict[str, Any]]:
    nodes, _ = ack.cluster.store.list("nodes")
    return {
        n["metadata"]["name"]: n for n in nodes if n["metadata"]["labels"].get(POOL_LABEL) == POOL
    }


def decision(
    ack: EmbeddedAck, names: list[str], *, desired: int = 3, instance_ids: list[str] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A scale-in/v1 reply removing `names`, and the request it answers (only what apply reads)."""
    ids = instance_ids or [str(ack.world.pools.instance_id_of(n)) for n in names]
    reply = {
        "schema": "scale-in/v1",
        "decisionId": "d-1",
        "remove": [
            {"node": n, "poolId": POOL, "instanceId": i, "reason": "empty for 61s", "evicts": []}
            for n, i in zip(names, ids, strict=True)
        ],
        "pools": [
            {
                "poolId": POOL,
                "fromDesired": desired,
                "toDesired": desired - len(names),
                "nodes": names,
                "instanceIds": ids,
            }
        ],
        "keep": [],
    }
    request = {
        "schema": "scale-in/v1",
        "pools": [{"id": POOL, "size": {"min": 0, "desired": desired}}],
    }
    return reply, request


def events(ack: EmbeddedAck, reason: str) -> set[str]:
    items, _ = ack.cluster.store.list("events", namespace="default")
    return {e["involvedObject"]["name"] for e in items if e.get("reason") == reason}


def removal_writes(ack: EmbeddedAck) -> list[Any]:
    return [w for w in ack.cs_writes() if w.action == "RemoveNodePoolNodes"]


async def test_chosen_nodes_are_cordoned_and_removed_with_drain_and_release(ack, actuator):
    """One RemoveNodePoolNodes for the pool; ScaleDown Events; desired lowered by as many."""
    names = sorted(pool_nodes(ack))[:2]
    reply, request = decision(ack, names)
    result = await actuator.apply(reply, request, dry_run=False, now=NOW)
    assert sorted(r.node for r in result.removed) == names and not result.failed
    (write,) = removal_writes(ack)
    assert write.summary["drain_node"] and write.summary["release_node"]
    assert ack.world.pools.describe_pool(POOL).desired == 1
    assert events(ack, "ScaleDown") == set(names)


async def test_an_instance_cs_does_not_list_in_the_pool_is_not_sent(ack, actuator):
    """The pool's nodes are read from CS under the Lease: an instance it does not list is kept
    (nothing cordoned, no call), the others go."""
    first, second = sorted(pool_nodes(ack))[:2]
    ids = ["i-not-in-the-pool", str(ack.world.pools.instance_id_of(second))]
    reply, request = decision(ack, [first, second], instance_ids=ids)
    result = await actuator.apply(reply, request, dry_run=False, now=NOW)
    assert not result.failed and [r.node for r in result.removed] == [second]
    assert [(k.node, k.reason) for k in result.kept] == [
        (first, f"no longer a node of pool {POOL}")
    ]
    (write,) = removal_writes(ack)
    assert write.code is None and write.summary["instance_ids"] == [ids[1]]
    assert not pool_nodes(ack)[first]["spec"].get("unschedulable")


class Refusing:
    """The CS client, but RemoveNodePoolNodes is refused for a reason that has nothing to do
    with the nodes (a missing RAM grant)."""

    def __init__(self, inner: NodePoolClient) -> None:
        self._inner = inner
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def remove_nodes(self, *args: Any, **kwargs: Any) -> str | None:
        self.calls += 1
        raise CloudCallError("Forbidden.RAM", 403, "not authorized", retryable=False)


async def test_a_refused_removal_uncordons_and_says_so(ack, actuator):
    """CS refuses with every node still in the pool: one call, no retry, the node is uncordoned
    and untainted, ScaleDownFailed is recorded."""
    refusing = Refusing(actuator._pools)
    actuator = ScaleInActuator(refusing, actuator._kube)  # type: ignore[arg-type]
    name = sorted(pool_nodes(ack))[0]
    reply, request = decision(ack, [name])
    result = await actuator.apply(reply, request, dry_run=False, now=NOW)
    assert [f.code for f in result.failed] == ["Forbidden.RAM"] and not result.removed
    assert refusing.calls == 1
    back = pool_nodes(ack)[name]
    assert not back["spec"].get("unschedulable")
    assert TO_BE_DELETED_TAINT not in [t["key"] for t in back["spec"].get("taints") or ()]
    assert not set(MARK_ANNOTATIONS) & set(back["metadata"].get("annotations") or {})
    assert events(ack, "ScaleDownFailed") == {name}
    assert ack.world.pools.describe_pool(POOL).desired == 3


async def test_a_pool_raised_since_the_decision_keeps_its_nodes(ack, actuator):
    """desired 3 → 4 after the request said 3: nothing is cordoned or removed."""
    name = sorted(pool_nodes(ack))[0]
    reply, request = decision(ack, [name])
    ack.world.pools.set_desired(POOL, 4)
    result = await actuator.apply(reply, request, dry_run=False, now=NOW)
    assert [k.node for k in result.kept] == [name] and "rose" in result.kept[0].reason
    assert removal_writes(ack) == []
    assert not pool_nodes(ack)[name]["spec"].get("unschedulable")


@pytest.mark.parametrize("ack", [1], indirect=True)
async def test_no_removal_takes_the_pool_below_its_min(ack, actuator):
    """The pool is re-read before removing: a min raised to 1 meanwhile keeps the third node."""
    names = sorted(pool_nodes(ack))
    reply, request = decision(ack, names)
    result = await actuator.apply(reply, request, dry_run=False, now=NOW)
    assert len(result.removed) == 2 and [k.node for k in result.kept] == [names[2]]
    assert "below min" in result.kept[0].reason


async def test_dry_run_writes_nothing(ack, actuator):
    """The would-be removals are reported; no cordon, no CS write, no Event."""
    names = sorted(pool_nodes(ack))
    reply, request = decision(ack, names)
    result = await actuator.apply(reply, request, dry_run=True, now=NOW)
    assert result.dry_run and sorted(r.node for r in result.removed) == names
    assert removal_writes(ack) == [] and events(ack, "ScaleDown") == set()
    assert not any(n["spec"].get("unschedulable") for n in pool_nodes(ack).values())
