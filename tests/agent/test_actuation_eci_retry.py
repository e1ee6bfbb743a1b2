"""ECI placement when the pod changes between the snapshot and the patch, over real HTTP against the
simulated API server: the scheduler rewriting the PodScheduled condition does not cost the round
(the pod is re-read and patched again), a pod bound meanwhile is never patched, a pod whose
decision inputs changed is left to the next round, and the re-reads are bounded."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from agent.actuate.actuation import PLACED_LABEL, Actuator, follow_up_reason
from agent.actuate.eci_placement import ECI_PATCH_RETRIES
from agent.clients.kube import KubeClient
from agent.sim.world.nodes import ready_node
from tests.agent.test_actuation_eci import (
    NS,
    VIRTUAL,
    World,
    eci_tolerations,
    open_eci_world,
    unreachable_cs,
)

SYSTEM_NODE = "cn-hangzhou.172.16.0.10"
STRATEGIC_MERGE = "application/strategic-merge-patch+json"


class CountingPods:
    """The agent's KubeClient, counting the pod calls actuation makes (and how many are in flight
    at once); `before_patch(name)` / `before_get(name)` run before each PATCH / GET is sent."""

    def __init__(
        self,
        kube: KubeClient,
        *,
        before_patch: Callable[[str], Awaitable[None]] | None = None,
        before_get: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._kube = kube
        self._before_patch = before_patch
        self._before_get = before_get
        self.patches = 0
        self.gets = 0
        self.in_flight = 0
        self.most_in_flight = 0

    async def _call(self, call: Awaitable[Any]) -> Any:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.005)  # long enough for the calls of several pods to overlap
            return await call
        finally:
            self.in_flight -= 1

    async def get_pod(self, namespace: str, name: str) -> dict[str, Any]:
        if self._before_get is not None:
            await self._before_get(name)
        self.gets += 1
        pod: dict[str, Any] = await self._call(self._kube.get_pod(namespace, name))
        return pod

    async def patch_pod_json(
        self, namespace: str, name: str, ops: list[dict[str, Any]]
    ) -> dict[str, Any]:
        if self._before_patch is not None:
            await self._before_patch(name)
        self.patches += 1
        pod: dict[str, Any] = await self._call(self._kube.patch_pod_json(namespace, name, ops))
        return pod

    async def create_event(self, namespace: str, body: dict[str, Any]) -> None:
        await self._kube.create_event(namespace, body)

    async def patch_event(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        await self._kube.patch_event(namespace, name, patch)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with open_eci_world() as opened:
        yield opened


@pytest.fixture
async def http(world: World) -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP client of the simulated API server, for the other writers: the scheduler's
    status patch and binding, a node registering."""
    async with aiohttp.ClientSession(base_url=world.sim.url) as session:
        yield session


async def rewrite_condition(http: aiohttp.ClientSession, name: str, message: str) -> None:
    """What kube-scheduler's updatePod sends when an unschedulable pod's message changed: a
    strategic merge patch of the PodScheduled condition through pods/status."""
    body = {
        "status": {
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                }
            ]
        }
    }
    async with http.patch(
        f"/api/v1/namespaces/{NS}/pods/{name}/status",
        json=body,
        headers={"Content-Type": STRATEGIC_MERGE},
    ) as response:
        assert response.status == 200, await response.text()


async def bind(http: aiohttp.ClientSession, name: str, node: str) -> None:
    """What kube-scheduler's binder sends: a Binding through pods/binding."""
    body = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name, "namespace": NS},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    }
    async with http.post(f"/api/v1/namespaces/{NS}/pods/{name}/binding", json=body) as response:
        assert response.status == 201, await response.text()


def condition_message(world: World, name: str) -> str:
    for condition in world.pod(name)["status"].get("conditions") or ():
        if condition.get("type") == "PodScheduled":
            return str(condition.get("message", ""))
    return ""


async def pending_workers(world: World, *names: str) -> None:
    for name in names:
        world.create_worker(name)
    await world.until(lambda: all(world.unschedulable(n) for n in names))


class TestStatusRewrittenAfterTheSnapshot:
    """The scheduler writes the pod's status after the decision's snapshot: placed that round."""

    async def test_scheduler_rewrite_on_a_new_node_is_placed_in_the_same_round(
        self, world: World, http: aiohttp.ClientSession
    ) -> None:
        """A node registers after the snapshot; the sim scheduler rewrites the pod's message
        ("0/3 nodes"); the refused patch is followed by a re-read and lands on that version."""
        await pending_workers(world, "w-1")
        reply, request = await world.decide()
        before = condition_message(world, "w-1")
        node = ready_node("cn-hangzhou.172.16.0.11", cpu="1")
        async with http.post("/api/v1/nodes", json=node) as response:
            assert response.status == 201, await response.text()
        await world.until(lambda: condition_message(world, "w-1") != before)
        assert "0/3 nodes are available" in condition_message(world, "w-1")
        assert (
            world.pod("w-1")["metadata"]["resourceVersion"] != request["pods"][0]["resourceVersion"]
        ), "the snapshot is stale"

        result = await world.actuator.apply(reply, request, dry_run=False)
        await world.actuator.events.flush()

        assert [p.name for p in result.eci_placed] == ["w-1"]
        assert not result.eci_skipped and not result.eci_failed
        assert (result.eci_refused, result.eci_retries, result.eci_gave_up) == (1, 1, 0)
        await world.until(lambda: world.pod("w-1")["spec"].get("nodeName") == VIRTUAL)
        assert len(eci_tolerations(world.pod("w-1"))) == 1
        assert world.pod("w-1")["metadata"]["labels"][PLACED_LABEL] == "eci"
        assert len(world.events("PlacedOnECI")) == 1
        counters = world.actuator.counters
        assert (
            counters["eci_placed"],
            counters["eci_patches_refused"],
            counters["eci_retries"],
        ) == (
            1,
            1,
            1,
        )
        assert follow_up_reason(result) == ""

    async def test_status_patch_between_snapshot_and_patch_costs_one_get_and_one_patch(
        self, world: World, http: aiohttp.ClientSession
    ) -> None:
        """The scheduler's status patch over HTTP after the snapshot: two PATCHes and one GET."""
        await pending_workers(world, "w-1")
        reply, request = await world.decide()
        await rewrite_condition(http, "w-1", "0/2 nodes are available: 2 Insufficient cpu.")
        pods = CountingPods(world.kube)
        actuator = Actuator(unreachable_cs(), pods)

        result = await actuator.apply(reply, request, dry_run=False)
        await actuator.events.flush()

        assert [p.name for p in result.eci_placed] == ["w-1"]
        assert (pods.patches, pods.gets) == (2, 1)
        await world.until(lambda: world.pod("w-1")["spec"].get("nodeName") == VIRTUAL)

    async def test_many_rewritten_pods_are_placed_in_parallel_under_the_bound(
        self, world: World, http: aiohttp.ClientSession
    ) -> None:
        """Twelve pods all rewritten after the snapshot: all placed in the round, their re-reads
        and patches overlapping but never more than max_concurrent_pod_writes at once."""
        names = [f"w-{i}" for i in range(12)]
        await pending_workers(world, *names)
        reply, request = await world.decide()
        assert len(reply["actions"][0]["pods"]) == 12
        for name in names:
            await rewrite_condition(http, name, f"0/2 nodes are available ({name}).")
        pods = CountingPods(world.kube)
        actuator = Actuator(unreachable_cs(), pods, max_concurrent_pod_writes=3)

        result = await actuator.apply(reply, request, dry_run=False)
        await actuator.events.flush()

        assert sorted(p.name for p in result.eci_placed) == sorted(names)
        assert (result.eci_refused, result.eci_retries) == (12, 12)
        assert (pods.patches, pods.gets) == (24, 12)
        assert 1 < pods.most_in_flight <= 3
        await world.until(
            lambda: all(world.pod(n)["spec"].get("nodeName") == VIRTUAL for n in names),
            timeout=10,
        )


class TestDecisionNoLongerHolds:
    """The re-read shows a pod the decision was not about: skipped, never patched."""

    async def test_pod_bound_meanwhile_is_not_patched(
        self, world: World, http: aiohttp.ClientSession
    ) -> None:
        """Bound to a node between the snapshot and the patch: the `test` refuses the patch, the
        re-read sees spec.nodeName, and no second patch is sent."""
        await pending_workers(world, "w-1")
        reply, request = await world.decide()
        await bind(http, "w-1", SYSTEM_NODE)
        pods = CountingPods(world.kube)
        actuator = Actuator(unreachable_cs(), pods)

        result = await actuator.apply(reply, request, dry_run=False)
        await actuator.events.flush()

        assert not result.eci_placed and not result.eci_failed
        [skipped] = result.eci_skipped
        assert f"bound to {SYSTEM_NODE} meanwhile" in skipped.reason
        assert (pods.patches, pods.gets) == (1, 1)
        assert (result.eci_refused, result.eci_retries, result.eci_gave_up) == (1, 0, 0)
        pod = world.pod("w-1")
        assert pod["spec"]["nodeName"] == SYSTEM_NODE
        assert eci_tolerations(pod) == []
        assert PLACED_LABEL not in (pod["metadata"].get("labels") or {})
        assert world.events("PlacedOnECI") == []

    async def test_pod_deleted_after_a_refusal_is_skipped_as_gone(
        self, world: World, http: aiohttp.ClientSession
    ) -> None:
        """Rewritten, then deleted before the re-read: a 404 on the GET is a skip, not a failure."""
        await pending_workers(world, "w-1")
        reply, request = await world.decide()
        await rewrite_condition(http, "w-1", "0/2 nodes are available: changed.")

        async def delete(name: str) -> None:
            async with http.delete(f"/api/v1/namespaces/{NS}/pods/{name}") as response:
                assert response.status == 200, await response.text()

        pods = CountingPods(world.kube, before_get=delete)
        actuator = Actuator(unreachable_cs(), pods)

        result = await actuator.apply(reply, request, dry_run=False)
        await actuator.events.flush()

        [skipped] = result.eci_skipped
        assert skipped.reason.startswith("404") and "gone" in skipped.reason
        assert not result.eci_failed and (pods.patches, pods.gets) == (1, 1)

    async def test_refusal_of_an_unchanged_pod_is_a_failure_not_retried(self, world: World) -> None:
        """A patch refused although the pod's resourceVersion had not moved is no race: failed,
        with one re-read and no second patch. (Here the request claims the pod had no
        tolerations, so the patch would replace the defaults: 422 Forbidden.)"""
        await pending_workers(world, "w-1")
        reply, request = await world.decide()
        request["pods"][0]["tolerations"] = []
        pods = CountingPods(world.kube)
        actuator = Actuator(unreachable_cs(), pods)

        result = await actuator.apply(reply, request, dry_run=False)
        await actuator.events.flush()

        [failed] = result.eci_failed
        assert failed.reason.startswith("422")
        assert (pods.patches, pods.gets) == (1, 1)
        assert eci_tolerations(world.pod("w-1")) == []


class TestRetryBound:
    """A pod that changes before every patch is given up after ECI_PATCH_RETRIES re-reads."""

    @pytest.mark.parametrize("retries", [ECI_PATCH_RETRIES, 1])
    async def test_a_pod_that_keeps_changing_is_given_up_after_the_bound(
        self, world: World, http: aiohttp.ClientSession, retries: int
    ) -> None:
        """The status is rewritten before every patch: 1 + retries patches, retries re-reads,
        then a skip counted as a give-up, with a follow-up round asked for."""
        await pending_workers(world, "w-1")
        reply, request = await world.decide()
        seq = itertools.count()

        async def churn(name: str) -> None:
            await rewrite_condition(http, name, f"0/2 nodes are available (rewrite {next(seq)}).")

        pods = CountingPods(world.kube, before_patch=churn)
        actuator = Actuator(unreachable_cs(), pods, eci_retries=retries)

        result = await actuator.apply(reply, request, dry_run=False)
        await actuator.events.flush()

        assert (pods.patches, pods.gets) == (1 + retries, retries)
        assert not result.eci_placed and not result.eci_failed
        [skipped] = result.eci_skipped
        assert f"still changing after {retries} retries" in skipped.reason
        assert (result.eci_refused, result.eci_retries, result.eci_gave_up) == (
            1 + retries,
            retries,
            1,
        )
        counters = actuator.counters
        assert (counters["eci_gave_up"], counters["eci_skipped"], counters["eci_retries"]) == (
            1,
            1,
            retries,
        )
        assert "kept changing" in follow_up_reason(result)
        assert eci_tolerations(world.pod("w-1")) == []

    async def test_no_retries_is_the_old_behaviour(
        self, world: World, http: aiohttp.ClientSession
    ) -> None:
        """eci_retries=0: a refused patch is given up at once, without a re-read."""
        await pending_workers(world, "w-1")
        reply, request = await world.decide()
        await rewrite_condition(http, "w-1", "0/2 nodes are available: changed.")
        pods = CountingPods(world.kube)
        actuator = Actuator(unreachable_cs(), pods, eci_retries=0)

        result = await actuator.apply(reply, request, dry_run=False)
        await actuator.events.flush()

        assert (pods.patches, pods.gets) == (1, 0)
        assert result.eci_gave_up == 1 and not result.eci_placed
