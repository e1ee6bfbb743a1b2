"""Scale-in under the pool Lease, and what recovery may and may not take off: the real Kubernetes
client and CS SDK against the embedded ACK (three booted pool nodes, no job).

Cordon and RemoveNodePoolNodes happen under the pool's Lease; the pool's nodes are read from CS
(DescribeClusterNodes) under it, and a removal refused because a node left the pool meanwhile is
sent again without it. Recovery clears marks left behind by a stopped agent — ours at once,
another agent's after MARK_GRACE_SECONDS — only under the pool's Lease and only when CS is not
removing the node; a cordon that is not ours stays."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent.actuate.pool_lock import LockSettings, PoolLock
from agent.clients.cs import NodePoolClient
from agent.clients.kube import KubeClient
from agent.ingest.node_pods import TO_BE_DELETED_TAINT, node_facts
from agent.scale_in import marks
from agent.scale_in.actuation import ScaleInActuator
from agent.scale_in.marks import MARK_ANNOTATIONS, MARKED_BY_ANNOTATION
from agent.scale_in.removals import MARK_GRACE_SECONDS, Removals
from agent.sim.embedded import EmbeddedAck
from agent.sim.scenario import load_scenario
from agent.sim.world.nodepools import POOL_LABEL
from agent.sim.world.ray import JobSpec
from tests.support.builders import build_test_pod
from tests.support.clocks import ManualClock
from tests.support.waiting import until

POOL = "np-cpu"
NOW = "2026-11-29T05:00:00Z"
NAMESPACE = "kube-system"
RETRY_AFTER = 180.0
OWNER = [
    {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs", "controller": True}
]


@pytest.fixture
async def ack(no_proxies: None) -> AsyncIterator[EmbeddedAck]:
    """The seed cluster with three booted, empty pool nodes and no job."""
    scenario = load_scenario("seed")
    pool = dataclasses.replace(scenario.pools[0], desired=3, drain_timeout_seconds=600)
    scenario = dataclasses.replace(scenario, pools=(pool,), job=JobSpec())
    async with EmbeddedAck(scenario, speed=50, faults=False) as embedded:
        yield embedded


def lock_of(kube: KubeClient, identity: str, now: Any, *, attempts: int = 2) -> PoolLock:
    settings = LockSettings(
        namespace=NAMESPACE, identity=identity, attempts=attempts, retry_seconds=0.01
    )
    return PoolLock(kube, settings, now=now)


def names(ack: EmbeddedAck) -> list[str]:
    nodes, _ = ack.cluster.store.list("nodes")
    return sorted(
        n["metadata"]["name"] for n in nodes if n["metadata"]["labels"].get(POOL_LABEL) == POOL
    )


def node(ack: EmbeddedAck, name: str) -> dict[str, Any]:
    return ack.cluster.store.get("nodes", name)


def marked(ack: EmbeddedAck, name: str) -> bool:
    return marks.mark_of(node(ack, name)) is not None


def clean(ack: EmbeddedAck, name: str) -> bool:
    """Neither our taint nor any of our annotations."""
    found = node(ack, name)
    taints = [t["key"] for t in found["spec"].get("taints") or ()]
    notes = found["metadata"].get("annotations") or {}
    return TO_BE_DELETED_TAINT not in taints and not set(MARK_ANNOTATIONS) & set(notes)


def decision(ack: EmbeddedAck, chosen: list[str], *, desired: int = 3) -> tuple[dict, dict]:
    ids = [str(ack.world.pools.instance_id_of(n)) for n in chosen]
    reply = {
        "decisionId": "d-1",
        "remove": [
            {"node": n, "poolId": POOL, "instanceId": i, "reason": "empty", "evicts": []}
            for n, i in zip(chosen, ids, strict=True)
        ],
        "pools": [{"poolId": POOL, "nodes": chosen, "instanceIds": ids}],
    }
    request = {"pools": [{"id": POOL, "size": {"min": 0, "desired": desired}}], "nodes": []}
    return reply, request


def removal_writes(ack: EmbeddedAck) -> list[Any]:
    return [w for w in ack.cs_writes() if w.action == "RemoveNodePoolNodes"]


async def recover(ack: EmbeddedAck, removals: Removals, *, now: float | None = None) -> None:
    facts = {name: node_facts(node(ack, name)) for name in names(ack)}
    await removals.recover(
        facts,
        pools=dict.fromkeys(facts, POOL),
        now=ack.cluster.clock.now() if now is None else now,
        retry_after=RETRY_AFTER,
    )


async def protected_pod_on(ack: EmbeddedAck, name: str) -> None:
    """A Running web pod on `name` under a budget allowing no disruption: a drain of the node
    waits (the pool's drain timeout is 600 s)."""
    store = ack.cluster.store
    store.create(
        "pods",
        build_test_pod("web-1", labels={"app": "web"}, owners=OWNER, node=name),
        namespace="default",
    )
    store.create(
        "poddisruptionbudgets",
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "minAvailable": 1},
        },
        namespace="default",
    )

    def running() -> bool:
        status = store.get("pods", "web-1", namespace="default").get("status") or {}
        return status.get("phase") == "Running"

    await until(running, timeout=5, what="the protected pod running")


# --- CS: the pool's nodes ----------------------------------------------------------------------


async def test_the_pools_nodes_are_read_from_cs_page_by_page(ack, pools):
    """DescribeClusterNodes of the pool, every page: each instance with its state."""
    found = await pools.describe_nodes(POOL, page_size=2)
    assert sorted(n.node_name for n in found) == names(ack)
    assert {n.instance_id for n in found} == {
        ack.world.pools.instance_id_of(name) for name in names(ack)
    }
    assert {n.state for n in found} == {"running"}


# --- actuation under the Lease -----------------------------------------------------------------


async def test_a_lease_held_by_another_live_agent_keeps_the_nodes(ack, kube, pools):
    """Another agent holds the pool's Lease: nothing is cordoned or removed, the nodes are kept
    naming the holder; once it is released the same reply goes through."""
    clock = ack.cluster.clock.now
    other = lock_of(kube, "head-b", clock)
    held = await other.acquire(POOL)
    assert held.acquired
    actuator = ScaleInActuator(pools, kube, lock=lock_of(kube, "head-a", clock))
    chosen = names(ack)[:2]
    reply, request = decision(ack, chosen)

    result = await actuator.apply(reply, request, dry_run=False, now=NOW)
    assert not result.removed and {k.node for k in result.kept} == set(chosen)
    assert all("pool lock held by head-b" in k.reason for k in result.kept)
    assert removal_writes(ack) == [] and not any(marked(ack, n) for n in chosen)

    await other.release(held)
    result = await actuator.apply(reply, request, dry_run=False, now=NOW)
    assert sorted(r.node for r in result.removed) == chosen and not result.failed


class Vanishing:
    """The CS client, but right before the first RemoveNodePoolNodes someone else removes the
    first instance of the call (undrained: it is gone at once)."""

    def __init__(self, inner: NodePoolClient, ack: EmbeddedAck) -> None:
        self._inner = inner
        self._ack = ack
        self.vanished: str | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def remove_nodes(self, pool_id: str, instance_ids: list[str], **kwargs: Any) -> Any:
        if self.vanished is None:
            self.vanished = instance_ids[0]
            self._ack.world.pools.remove_nodes(
                pool_id, [instance_ids[0]], drain=False, release=True
            )
        return await self._inner.remove_nodes(pool_id, instance_ids, **kwargs)


async def test_a_node_that_left_the_pool_meanwhile_does_not_fail_the_others(ack, kube, pools):
    """CS refuses the call (one instance is no longer in the pool): the pool's nodes are read
    again and the call goes out without it; nothing failed, nothing stays marked."""
    vanishing = Vanishing(pools, ack)
    actuator = ScaleInActuator(vanishing, kube, lock=lock_of(kube, "head-a", ack.cluster.clock.now))  # type: ignore[arg-type]
    chosen = names(ack)
    reply, request = decision(ack, chosen)
    result = await actuator.apply(reply, request, dry_run=False, now=NOW)

    gone = next(n for n in chosen if ack.world.pools.instance_id_of(n) is None)
    assert not result.failed
    assert sorted(r.node for r in result.removed) == sorted(set(chosen) - {gone})
    assert [(k.node, k.reason) for k in result.kept] == [(gone, f"no longer a node of pool {POOL}")]
    refused, accepted = removal_writes(ack)
    assert (
        refused.code == "InvalidParameter" and vanishing.vanished in refused.summary["instance_ids"]
    )
    assert accepted.code is None and vanishing.vanished not in accepted.summary["instance_ids"]
    assert len(accepted.summary["instance_ids"]) == len(chosen) - 1
    events, _ = ack.cluster.store.list("events", namespace="default")
    assert not [e for e in events if e.get("reason") == "ScaleDownFailed"]


async def test_a_lease_lost_before_the_removal_takes_the_marks_off(ack, kube, pools):
    """The Lease expires while the nodes are marked and another agent takes it: the renewal
    before RemoveNodePoolNodes fails, the marks come off and nothing is removed."""
    clock = ManualClock(ack.cluster.clock.now())
    other = lock_of(kube, "head-b", clock)
    taken: list[bool] = []

    class Slow(KubeClient):
        """The pod check of the last node takes 20 s, and head-b takes the Lease meanwhile."""

        async def list_page(self, resource: str, **kwargs: Any) -> dict[str, Any]:
            page = await super().list_page(resource, **kwargs)
            if resource == "pods" and not taken:
                clock.advance(20)
                taken.append((await other.acquire(POOL)).acquired)
            return page

    slow = Slow(kube._api_client)
    actuator = ScaleInActuator(pools, slow, lock=lock_of(slow, "head-a", clock))
    chosen = names(ack)[:1]
    reply, request = decision(ack, chosen)
    result = await actuator.apply(reply, request, dry_run=False, now=NOW)

    assert taken == [True]
    assert not result.removed and not result.failed
    assert [k.reason for k in result.kept] == ["pool lock lost before the removal"]
    assert removal_writes(ack) == []
    assert clean(ack, chosen[0]) and not node(ack, chosen[0])["spec"].get("unschedulable")


async def test_a_node_marked_by_another_agent_is_not_marked_again(ack, kube, pools):
    """A node carrying another agent's mark is kept as it is: not removed, its mark untouched."""
    name = names(ack)[0]
    await marks.mark(kube, name, now=ack.cluster.clock.now(), holder="head-b")
    before = node(ack, name)["metadata"]["annotations"]
    actuator = ScaleInActuator(pools, kube, lock=lock_of(kube, "head-a", ack.cluster.clock.now))
    reply, request = decision(ack, [name])
    result = await actuator.apply(reply, request, dry_run=False, now=NOW)
    assert not result.removed and "marked for removal by head-b" in result.kept[0].reason
    assert removal_writes(ack) == []
    assert node(ack, name)["metadata"]["annotations"] == before


# --- recovery ----------------------------------------------------------------------------------


async def test_our_own_mark_left_behind_is_cleared_at_once(ack, kube, pools):
    """Marked by our identity with no task (we stopped between cordon and remove): nothing of
    ours is mid-removal while recovery runs, so no grace is needed; the Lease is free after."""
    clock = ack.cluster.clock.now
    name = names(ack)[0]
    await marks.mark(kube, name, now=clock(), holder="head-a")
    removals = Removals(pools, kube, lock=lock_of(kube, "head-a", clock), identity="head-a")
    await recover(ack, removals)
    assert clean(ack, name) and not node(ack, name)["spec"].get("unschedulable")
    assert (await lock_of(kube, "head-b", clock).acquire(POOL)).acquired, "released"


async def test_another_agents_mark_waits_for_the_grace_and_a_free_lease(ack, kube, pools):
    """Another agent's mark: left while younger than MARK_GRACE_SECONDS, and while that agent
    (or anyone else) holds the pool's Lease; cleared once both have passed."""
    clock = ack.cluster.clock.now
    name = names(ack)[0]
    await marks.mark(kube, name, now=clock(), holder="head-b")
    removals = Removals(pools, kube, lock=lock_of(kube, "head-a", clock), identity="head-a")
    await recover(ack, removals)
    assert marked(ack, name), "young: head-b may be between its cordon and its CS call"

    later = clock() + MARK_GRACE_SECONDS
    busy = lock_of(kube, "head-b", lambda: later)
    held = await busy.acquire(POOL)
    await recover(ack, removals, now=later)
    assert marked(ack, name), "head-b holds the pool's Lease: it may be removing the node"

    await busy.release(held)
    await recover(ack, removals, now=later)
    assert clean(ack, name) and not node(ack, name)["spec"].get("unschedulable")


async def test_a_mark_on_a_node_cs_is_removing_stays(ack, kube, pools):
    """Stopped after RemoveNodePoolNodes, before the task annotation: CS reports the instance
    `removing` (its drain waits on a budget), so the marks and the cordon stay."""
    clock = ack.cluster.clock.now
    name = names(ack)[0]
    await protected_pod_on(ack, name)
    await marks.mark(kube, name, now=clock(), holder="head-a")
    instance = str(ack.world.pools.instance_id_of(name))
    await pools.remove_nodes(POOL, [instance], drain=True, release=True)
    assert [n.instance_id for n in await pools.describe_nodes(POOL, state="removing")] == [instance]
    removals = Removals(pools, kube, lock=lock_of(kube, "head-a", clock), identity="head-a")
    await recover(ack, removals)
    assert marked(ack, name) and node(ack, name)["spec"]["unschedulable"]
    assert node(ack, name)["metadata"]["annotations"][MARKED_BY_ANNOTATION] == "head-a"


async def test_a_cordon_that_is_not_ours_stays(ack, kube, pools):
    """A node cordoned by someone else without our taint is never touched; a node someone else
    had cordoned before we marked it loses our marks but keeps its cordon."""
    clock = ack.cluster.clock.now
    theirs, before = names(ack)[:2]
    await kube.set_unschedulable(theirs, True)
    await kube.set_unschedulable(before, True)
    await marks.mark(kube, before, now=clock(), holder="head-a")
    untouched = node(ack, theirs)["metadata"]["resourceVersion"]
    removals = Removals(pools, kube, lock=lock_of(kube, "head-a", clock), identity="head-a")
    await recover(ack, removals, now=clock() + 10 * MARK_GRACE_SECONDS)
    assert node(ack, theirs)["metadata"]["resourceVersion"] == untouched
    assert clean(ack, before) and node(ack, before)["spec"]["unschedulable"]
