"""When a removal does not happen: the real Kubernetes client and CS SDK against the embedded
ACK, whose RemoveNodePoolNodes drain respects PodDisruptionBudgets and fails after the pool's
drain timeout. The agent follows the task, takes its marks off the node (cordon, the
`ray-ack-scaler/to-be-deleted` taint, the task annotation), records a Warning ScaleDownFailed
Event naming the task's error and backs off; a restarted agent finds its marks and follows or
clears them."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent.clients.kube import KubeClient
from agent.ingest.node_pods import REMOVAL_TASK_ANNOTATION, TO_BE_DELETED_TAINT, node_facts
from agent.scale_in import marks
from agent.scale_in.actuation import ScaleInActuator
from agent.scale_in.removals import MARK_GRACE_SECONDS, Removals
from agent.sim.embedded import EmbeddedAck
from agent.sim.scenario import load_scenario
from agent.sim.world.nodepools import POOL_LABEL
from agent.sim.world.ray import JobSpec
from tests.support.builders import build_test_pod
from tests.support.waiting import until

POOL = "np-cpu"
DRAIN_TIMEOUT = 30.0
RETRY_AFTER = 180.0
OWNER = [
    {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs", "controller": True}
]


@pytest.fixture
async def ack(no_proxies: None) -> AsyncIterator[EmbeddedAck]:
    """The seed cluster with two booted pool nodes (drain timeout 30 s) and no job."""
    scenario = load_scenario("seed")
    pool = dataclasses.replace(scenario.pools[0], desired=2, drain_timeout_seconds=DRAIN_TIMEOUT)
    scenario = dataclasses.replace(scenario, pools=(pool,), job=JobSpec())
    async with EmbeddedAck(scenario, speed=50, faults=False) as embedded:
        yield embedded


def pool_nodes(ack: EmbeddedAck) -> list[str]:
    nodes, _ = ack.cluster.store.list("nodes")
    return sorted(
        n["metadata"]["name"] for n in nodes if n["metadata"]["labels"].get(POOL_LABEL) == POOL
    )


def node(ack: EmbeddedAck, name: str) -> dict[str, Any]:
    return ack.cluster.store.get("nodes", name)


def now_of(ack: EmbeddedAck) -> str:
    return ack.cluster.clock.iso(ack.cluster.clock.now())


async def protected_pod_on(ack: EmbeddedAck, name: str) -> None:
    """A Running web pod on `name`, under a budget that allows no disruption of it."""
    store = ack.cluster.store
    pod = build_test_pod("web-1", labels={"app": "web"}, owners=OWNER, node=name)
    store.create("pods", pod, namespace="default")
    selector = {"matchLabels": {"app": "web"}}
    store.create(
        "poddisruptionbudgets",
        {"metadata": {"name": "web"}, "spec": {"selector": selector, "minAvailable": 1}},
        namespace="default",
    )

    def ready() -> bool:
        status = store.get("pods", "web-1", namespace="default").get("status") or {}
        conditions = status.get("conditions") or ()
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    await until(ready, timeout=5, what="the protected pod running")


def decision(ack: EmbeddedAck, name: str, *, unschedulable: bool = False) -> tuple[dict, dict]:
    """A reply removing `name` (draining its pod) and the request it answers."""
    instance = ack.world.pools.instance_id_of(name)
    uid = ack.cluster.store.get("pods", "web-1", namespace="default")["metadata"]["uid"]
    reply = {
        "decisionId": "d-1",
        "remove": [
            {"node": name, "poolId": POOL, "instanceId": instance, "reason": "r", "evicts": [uid]}
        ],
        "pools": [{"poolId": POOL, "nodes": [name], "instanceIds": [instance]}],
    }
    request = {
        "pools": [{"id": POOL, "size": {"min": 0, "desired": 2}}],
        "nodes": [{"name": name, "unschedulable": unschedulable, "taints": []}],
    }
    return reply, request


def warnings(ack: EmbeddedAck, name: str) -> list[dict[str, Any]]:
    items, _ = ack.cluster.store.list("events", namespace="default")
    return [
        e
        for e in items
        if e.get("reason") == "ScaleDownFailed" and e["involvedObject"]["name"] == name
    ]


async def failed_removal(ack: EmbeddedAck, removals: Removals) -> list[Any]:
    """Follow the removals (as each scale-in round does, every few seconds) until one has
    failed; bounded by the drain timeout in simulated time."""
    clock = ack.cluster.clock
    deadline = clock.now() + DRAIN_TIMEOUT + 60
    while True:
        found = await removals.follow(
            now=clock.now(), present=lambda name: name in pool_nodes(ack), retry_after=RETRY_AFTER
        )
        if found:
            return found
        assert clock.now() < deadline, "the removal never failed"
        await clock.sleep(5)


async def test_a_failed_drain_leaves_the_node_unmarked_with_a_warning(ack, kube, pools):
    """The budget blocks the drain: the task fails, and the agent uncordons and untaints the
    node, drops the task annotation, records ScaleDownFailed with the error and backs off."""
    name = pool_nodes(ack)[0]
    await protected_pod_on(ack, name)
    actuator = ScaleInActuator(pools, kube)
    reply, request = decision(ack, name)
    result = await actuator.apply(reply, request, dry_run=False, now=now_of(ack))
    (task_id,) = result.task_ids
    marked = node(ack, name)
    assert marked["spec"]["unschedulable"]
    assert [t["key"] for t in marked["spec"]["taints"]].count(TO_BE_DELETED_TAINT) == 1
    assert marked["metadata"]["annotations"][REMOVAL_TASK_ANNOTATION] == task_id
    assert actuator.removals.leaving() == {name}

    (failure,) = await failed_removal(ack, actuator.removals)
    assert failure.nodes_back == (name,) and "disruption budget" in failure.error
    back = node(ack, name)
    assert not back["spec"].get("unschedulable")
    assert TO_BE_DELETED_TAINT not in [t["key"] for t in back["spec"].get("taints") or ()]
    assert REMOVAL_TASK_ANNOTATION not in back["metadata"].get("annotations", {})
    (event,) = warnings(ack, name)
    assert event["type"] == "Warning" and task_id in event["message"]
    assert "The disruption budget web needs 1 healthy pods" in event["message"]
    assert f"{RETRY_AFTER:g}s" in event["message"]
    assert actuator.removals.leaving() == set() and name in actuator.removals.failed_at
    pod = ack.cluster.store.get("pods", "web-1", namespace="default")
    assert pod["status"]["phase"] == "Running" and not pod["metadata"].get("deletionTimestamp")


async def test_a_node_someone_else_cordoned_stays_cordoned(ack, kube, pools):
    """Cordoned before the decision (no mark of ours): after the failure only our marks go."""
    name = pool_nodes(ack)[0]
    await protected_pod_on(ack, name)
    await kube.set_unschedulable(name, True)
    actuator = ScaleInActuator(pools, kube)
    reply, request = decision(ack, name, unschedulable=True)
    await actuator.apply(reply, request, dry_run=False, now=now_of(ack))
    await failed_removal(ack, actuator.removals)
    back = node(ack, name)
    assert back["spec"]["unschedulable"]
    assert TO_BE_DELETED_TAINT not in [t["key"] for t in back["spec"].get("taints") or ()]


async def test_the_mark_never_drops_a_taint_added_meanwhile(ack, kube):
    """A taint another writer adds between our read and our patch survives: the patch carries
    the resourceVersion, the API server answers 409 and the node is read again."""
    name = pool_nodes(ack)[0]
    store = ack.cluster.store
    writes = 0

    class Racing(KubeClient):
        async def patch_node(self, node_name: str, patch: dict[str, Any]) -> dict[str, Any]:
            nonlocal writes
            writes += 1
            if writes == 1:
                store.mutate(
                    "nodes",
                    node_name,
                    lambda n: (
                        n["spec"]
                        .setdefault("taints", [])
                        .append({"key": "example.com/maintenance", "effect": "NoSchedule"})
                    ),
                )
            return await super().patch_node(node_name, patch)

    racing = Racing(kube._api_client)
    await marks.mark(racing, name, now=ack.cluster.clock.now())
    keys = [t["key"] for t in node(ack, name)["spec"]["taints"]]
    assert writes == 2
    assert "example.com/maintenance" in keys and TO_BE_DELETED_TAINT in keys
    await marks.unmark(racing, name)
    keys = [t["key"] for t in node(ack, name)["spec"]["taints"]]
    assert keys == ["example.com/maintenance"]


async def test_a_restarted_agent_clears_a_mark_left_without_a_task(ack, kube, pools):
    """Marked but never removed (the agent stopped in between): left alone while another agent
    might be mid-removal, unmarked once MARK_GRACE_SECONDS old."""
    name = pool_nodes(ack)[0]
    clock = ack.cluster.clock
    await marks.mark(kube, name, now=clock.now())
    removals = Removals(pools, kube)

    async def recover() -> None:
        facts = {name: node_facts(node(ack, name))}
        await removals.recover(facts, pools={name: POOL}, now=clock.now(), retry_after=RETRY_AFTER)

    await recover()
    assert node(ack, name)["spec"]["unschedulable"]
    await clock.sleep(MARK_GRACE_SECONDS)
    await recover()
    back = node(ack, name)
    assert not back["spec"].get("unschedulable")
    assert TO_BE_DELETED_TAINT not in [t["key"] for t in back["spec"].get("taints") or ()]


async def test_a_restarted_agent_follows_the_task_it_finds_on_the_node(ack, kube, pools):
    """The task annotation survives a restart: a fresh agent adopts the running task, and when
    it fails, unmarks the node and records the Event as the first agent would have."""
    name = pool_nodes(ack)[0]
    await protected_pod_on(ack, name)
    first = ScaleInActuator(pools, kube)
    reply, request = decision(ack, name)
    (task_id,) = (await first.apply(reply, request, dry_run=False, now=now_of(ack))).task_ids

    restarted = Removals(pools, kube)
    facts = {name: node_facts(node(ack, name))}
    await restarted.recover(
        facts, pools={name: POOL}, now=ack.cluster.clock.now(), retry_after=RETRY_AFTER
    )
    assert [r.task_id for r in restarted.in_flight.values()] == [task_id]
    await failed_removal(ack, restarted)
    assert not node(ack, name)["spec"].get("unschedulable")
    assert len(warnings(ack, name)) == 1
