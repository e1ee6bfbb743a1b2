"""ECI placement through the real API: the guarded toleration patch, the sim scheduler binding the pod
to the virtual node, PlacedOnECI events, and pods that vanished or changed what the decision read
being skipped. (A pod whose status alone changed meanwhile: test_actuation_eci_retry.py.)"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from agent.actuate.actuation import ECI_TOLERATION, PLACED_LABEL, Actuator, eci_patch
from agent.clients.cs import NodePoolClient, RetryPolicy
from agent.clients.kube import KubeClient
from agent.decide.deciders import LocalDecider
from agent.decide.request_builder import RequestSettings, build_request
from agent.ingest.view import ClusterView
from agent.sim.cluster import SimCluster
from agent.sim.world.nodes import ready_node
from tests.support.builders import ECI_TAINT
from tests.support.cloud.cloud_apis import agent_cs_sdk
from tests.support.waiting import store_until

NS = "ray"
VIRTUAL = "virtual-kubelet-cn-hangzhou-k"


@dataclass
class World:
    sim: SimCluster
    kube: KubeClient
    actuator: Actuator

    def pod(self, name: str) -> dict[str, Any]:
        return self.sim.store.get("pods", name, namespace=NS)

    async def until(self, predicate: Callable[[], object], *, timeout: float = 5.0) -> None:
        """Bounded wait, re-checked on every store change."""
        await store_until(self.sim.store, predicate, timeout=timeout)

    def create_worker(self, name: str, *, cpu: str = "2") -> None:
        self.sim.store.create(
            "pods",
            {
                "metadata": {
                    "name": name,
                    "namespace": NS,
                    "labels": {"ray.io/node-type": "worker"},
                },
                "spec": {
                    "containers": [
                        {
                            "name": "ray-worker",
                            "image": "rayproject/ray:2.9.0",
                            "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}},
                        }
                    ]
                },
            },
            namespace=NS,
        )

    def unschedulable(self, name: str) -> bool:
        conditions = self.pod(name).get("status", {}).get("conditions") or []
        return any(
            c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable"
            for c in conditions
        )

    async def decide(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The agent's path: LIST over HTTP, fold, one request, the in-process decision."""
        view = ClusterView()
        for pod in (await self.kube.list_page("pods", field_selector="spec.nodeName="))["items"]:
            view.apply_pod("ADDED", pod)
        for node in (await self.kube.list_page("nodes"))["items"]:
            view.apply_node("ADDED", node)
        settings = RequestSettings(cluster_id="c-test", region="cn-hangzhou")
        request = build_request(
            view.snapshot(), [], {}, settings=settings, now=self.sim.clock.iso()
        )
        return await LocalDecider().decide(request), request

    def events(self, reason: str) -> list[dict[str, Any]]:
        items, _rv = self.sim.store.list("events", namespace=NS)
        return [e for e in items if e.get("reason") == reason]


def unreachable_cs() -> NodePoolClient:
    """ECI-only decisions never touch CS: a client pointing nowhere would fail loudly if they did."""
    return NodePoolClient(
        agent_cs_sdk("127.0.0.1:9"), "c-test", retry=RetryPolicy(attempts=1, call_timeout_seconds=1)
    )


@contextlib.asynccontextmanager
async def open_eci_world() -> AsyncIterator[World]:
    """A simulated cluster with one small node and the ECI virtual node; the agent's client."""
    async with SimCluster(speed=20.0, namespaces=[NS]) as sim:
        sim.store.create("nodes", ready_node("cn-hangzhou.172.16.0.10", cpu="1"))
        sim.store.create(
            "nodes",
            ready_node(VIRTUAL, cpu="1000", labels={"type": "virtual-kubelet"}, taints=[ECI_TAINT]),
        )
        kube = await KubeClient.connect(api_url=sim.url, request_timeout=10)
        try:
            yield World(sim, kube, Actuator(unreachable_cs(), kube))
        finally:
            await kube.close()


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with open_eci_world() as opened:
        yield opened


def eci_tolerations(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in pod["spec"].get("tolerations") or [] if t.get("key") == ECI_TAINT["key"]]


class TestPlacement:
    """A place-on-eci action patches the pod once, onto the virtual node; dry-run writes nothing."""

    async def test_patched_pod_is_bound_to_the_virtual_node(self, world: World) -> None:
        """Unschedulable → toleration + label patched → the sim scheduler binds it to ECI; event recorded."""
        world.create_worker("w-1")
        await world.until(lambda: world.unschedulable("w-1"))
        defaults = len(world.pod("w-1")["spec"]["tolerations"])
        reply, request = await world.decide()
        assert [(a["kind"], a["pods"]) for a in reply["actions"]] == [
            ("place-on-eci", [world.pod("w-1")["metadata"]["uid"]])
        ]

        result = await world.actuator.apply(reply, request, dry_run=False)
        await world.actuator.events.flush()

        assert [p.name for p in result.eci_placed] == ["w-1"]
        assert not result.eci_skipped and not result.eci_failed and not result.pools_written
        await world.until(lambda: world.pod("w-1")["spec"].get("nodeName") == VIRTUAL)
        pod = world.pod("w-1")
        assert pod["metadata"]["labels"][PLACED_LABEL] == "eci"
        assert len(pod["spec"]["tolerations"]) == defaults + 1, "appended, defaults kept"
        assert len(eci_tolerations(pod)) == 1
        [event] = world.events("PlacedOnECI")
        assert event["involvedObject"]["name"] == "w-1"
        assert event["source"]["component"] == "ray-ack-scaler"
        assert event["message"].endswith(f"; why: {reply['actions'][0]['reason']}")
        assert world.actuator.counters["eci_placed"] == 1

    async def test_applying_the_same_decision_twice_patches_once(self, world: World) -> None:
        """The resourceVersion guard and the re-read turn a repeated apply into a skip (the pod
        already tolerates ECI, or is bound there), not a second toleration."""
        world.create_worker("w-1")
        await world.until(lambda: world.unschedulable("w-1"))
        reply, request = await world.decide()
        first = await world.actuator.apply(reply, request, dry_run=False)
        second = await world.actuator.apply(reply, request, dry_run=False)
        await world.actuator.events.flush()
        assert len(first.eci_placed) == 1
        assert not second.eci_placed and len(second.eci_skipped) == 1
        reason = second.eci_skipped[0].reason
        assert "already tolerates" in reason or f"bound to {VIRTUAL}" in reason, reason
        assert len(eci_tolerations(world.pod("w-1"))) == 1
        assert len(world.events("PlacedOnECI")) == 1

    async def test_dry_run_reports_and_writes_nothing(self, world: World) -> None:
        """Dry-run says which pods would go to ECI, patches none and records no event."""
        world.create_worker("w-1")
        await world.until(lambda: world.unschedulable("w-1"))
        reply, request = await world.decide()
        rv = world.pod("w-1")["metadata"]["resourceVersion"]
        result = await world.actuator.apply(reply, request, dry_run=True)
        await world.actuator.events.flush()
        assert [p.name for p in result.eci_placed] == ["w-1"] and result.dry_run
        assert world.pod("w-1")["metadata"]["resourceVersion"] == rv
        assert world.events("PlacedOnECI") == []
        assert world.actuator.counters["eci_placed"] == 0


class TestVanishedOrChanged:
    """A pod that changed or went away since the decision is skipped, not patched."""

    async def test_pod_whose_decision_inputs_changed_is_skipped(self, world: World) -> None:
        """An annotation (a decision input) changed after the snapshot: the `test` op fails, the
        re-read shows the change, and the pod is skipped and counted, not patched or failed."""
        world.create_worker("w-1")
        await world.until(lambda: world.unschedulable("w-1"))
        reply, request = await world.decide()
        world.sim.store.mutate(
            "pods",
            "w-1",
            lambda pod: pod["metadata"].setdefault("annotations", {}).update(touched="yes"),
            namespace=NS,
        )
        result = await world.actuator.apply(reply, request, dry_run=False)
        await world.actuator.events.flush()
        assert [p.name for p in result.eci_skipped] == ["w-1"]
        assert result.eci_skipped[0].reason.split()[0] in ("409", "422")
        assert "annotations changed since the decision" in result.eci_skipped[0].reason
        assert not result.eci_failed and not result.eci_placed
        assert (result.eci_refused, result.eci_retries) == (1, 0), "no second patch"
        assert eci_tolerations(world.pod("w-1")) == []
        assert world.actuator.counters["eci_skipped"] == 1

    async def test_deleted_pod_is_skipped(self, world: World) -> None:
        """A pod deleted after the snapshot answers 404: skipped, and the others still placed."""
        world.create_worker("w-1")
        world.create_worker("w-2")
        await world.until(lambda: world.unschedulable("w-1") and world.unschedulable("w-2"))
        reply, request = await world.decide()
        world.sim.store.delete("pods", "w-1", namespace=NS)
        result = await world.actuator.apply(reply, request, dry_run=False)
        await world.actuator.events.flush()
        assert [(p.name, p.reason.split()[0]) for p in result.eci_skipped] == [("w-1", "404")]
        assert [p.name for p in result.eci_placed] == ["w-2"]
        assert not result.eci_failed


class TestPatchShape:
    """The toleration JSON patch appends to the pod's lists or creates them."""

    def test_appends_to_an_existing_toleration_list(self) -> None:
        """With tolerations present the patch appends (a merge would drop the defaults → 422)."""
        ops = eci_patch(
            {"resourceVersion": "42", "tolerations": [{"key": "a"}], "labels": {"x": "y"}}
        )
        assert ops[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "42"}
        assert ops[1]["path"] == "/spec/tolerations/-" and ops[1]["value"]["effect"] == "NoSchedule"
        assert ops[2] == {
            "op": "add",
            "path": "/metadata/labels/ray-ack-scaler~1placed",
            "value": "eci",
        }

    def test_creates_the_lists_a_pod_lacks(self) -> None:
        """No tolerations or labels at all: each is added whole, since appending needs a list."""
        ops = eci_patch({"resourceVersion": "7", "tolerations": [], "labels": {}})
        assert ops[1] == {"op": "add", "path": "/spec/tolerations", "value": [ECI_TOLERATION]}
        assert ops[2] == {"op": "add", "path": "/metadata/labels", "value": {PLACED_LABEL: "eci"}}
