"""ACK's own autoscaler stand-in, over the embedded cluster: which unschedulable pods raise a pool
with auto scaling on (and by how much), which do not, when it looks, and how empty nodes go.

Pods are created over HTTP with kubernetes-asyncio. Those of the scale-up tests name a scheduler
the simulator does not run and are marked Unschedulable through pods/status, as that scheduler
would: the test then says exactly which pods wait when the stand-in scans (`scan()`, driven by the
test; its own loop is set to a scan interval no test reaches). The loop and scale-in tests use
the default scheduler, the path a Ray worker takes."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio import client

from agent.sim.embedded import EmbeddedAck
from agent.sim.scenario import load_scenario
from agent.sim.world.ack_autoscaler import AckAutoscaler, AckAutoscalerSpec
from agent.sim.world.eci import EciSpec
from agent.sim.world.nodepools import BootLatency, PoolSpec
from tests.support.builders import build_test_pod
from tests.support.cluster import pool_nodes
from tests.support.waiting import until

OTHER_SCHEDULER = "test-scheduler"  # no simulated component binds its pods
NEVER = 10_000_000.0  # a scan interval no test reaches: the test drives the scans
DRIVEN = AckAutoscalerSpec(scan_interval_seconds=NEVER)
RAY_POOL = {"team": "ray"}  # the label the pools give their nodes, and pods select
ECI_TOLERATION = {
    "key": "virtual-kubelet.io/provider",
    "operator": "Equal",
    "value": "alibabacloud",
    "effect": "NoSchedule",
}


def auto_pool(pool_id: str = "np-auto", **fields: Any) -> PoolSpec:
    """An ecs.g7.xlarge pool (4 vCPU) with ACK node autoscaling on, 0–2 nodes, a long boot."""
    values: dict[str, Any] = {
        "name": pool_id,
        "instance_type": "ecs.g7.xlarge",
        "labels": RAY_POOL,
        "min_size": 0,
        "max_size": 2,
        "auto_scaling": True,
        "boot": BootLatency(NEVER, NEVER),
    }
    values.update(fields)
    return PoolSpec(pool_id=pool_id, **values)


@dataclasses.dataclass
class Stand:
    ack: EmbeddedAck
    core: client.CoreV1Api

    @property
    def autoscaler(self) -> AckAutoscaler:
        assert self.ack.world.ack_autoscaler is not None
        return self.ack.world.ack_autoscaler

    def desired(self, pool_id: str) -> int:
        return self.ack.world.pools.describe_pool(pool_id).desired

    async def waiting_pod(
        self,
        name: str,
        *,
        cpu: str = "3",
        selector: dict[str, str] | None = None,
        tolerations: list[dict[str, Any]] | None = None,
        nominated: str | None = None,
    ) -> None:
        """A pod of the other scheduler, marked Pending / PodScheduled=False / Unschedulable."""
        spec: dict[str, Any] = {"schedulerName": OTHER_SCHEDULER}
        if selector is not None:
            spec["nodeSelector"] = selector
        if tolerations is not None:
            spec["tolerations"] = tolerations
        body = build_test_pod(name, namespace="default", cpu=cpu, memory="4Gi", **spec)
        await self.core.create_namespaced_pod("default", body)
        status: dict[str, Any] = {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/2 nodes are available: 2 Insufficient cpu.",
                }
            ],
        }
        if nominated is not None:
            status["nominatedNodeName"] = nominated
        await self.core.patch_namespaced_pod_status(name, "default", {"status": status})

    async def events(self, name: str, reason: str) -> list[dict[str, Any]]:
        """The stand-in's Events about pod `name` with this reason, once its writes are made."""
        await self.autoscaler.events.drain()
        events, _ = self.ack.cluster.store.list("events", namespace="default")
        return [
            e
            for e in events
            if e["involvedObject"].get("name") == name
            and e.get("reason") == reason
            and e["source"].get("component") == "cluster-autoscaler"
        ]


@contextlib.asynccontextmanager
async def standing(
    *,
    pools: tuple[PoolSpec, ...] = (auto_pool(),),
    eci: bool = False,
    spec: AckAutoscalerSpec = DRIVEN,
) -> AsyncIterator[Stand]:
    """seed-companion's cluster (one system node) with these pools, ECI on or off and these
    stand-in settings, at 100x; the Ray job never starts."""
    base = load_scenario("seed-companion")
    scenario = dataclasses.replace(
        base,
        pools=pools,
        eci=EciSpec(enabled=eci, zone=base.cluster.zone),
        ack_autoscaler=spec,
    )
    ack = EmbeddedAck(scenario, speed=100)
    ack.world.ray.hold_job()
    async with ack:
        configuration = client.Configuration(host=ack.kubernetes_url)
        async with client.ApiClient(configuration) as api:
            yield Stand(ack, client.CoreV1Api(api))


@pytest.fixture
async def stand() -> AsyncIterator[Stand]:
    """One pool with auto scaling on (np-auto, 0–2 nodes), no ECI, scans driven by the test."""
    async with standing() as running:
        yield running


class TestScaleUp:
    """Unschedulable pods that fit a pool with auto scaling on, and nowhere else, raise it."""

    async def test_it_raises_desired_by_the_nodes_the_pods_pack_onto(self, stand):
        """Three 1-vCPU pods share one 4-vCPU node; a 3-vCPU pod needs a second."""
        for i in range(3):
            await stand.waiting_pod(f"small-{i}", cpu="1", selector=RAY_POOL)
        await stand.waiting_pod("big", cpu="3", selector=RAY_POOL)
        (change,) = stand.autoscaler.scan()
        assert (change.pool_id, change.before, change.after, change.pods) == ("np-auto", 0, 2, 4)
        assert stand.desired("np-auto") == 2
        (event,) = await stand.events("big", "TriggeredScaleUp")
        assert event["message"] == "pod triggered scale-up: [{np-auto 0->2 (max: 2)}]"

    async def test_it_goes_no_higher_than_max_instances(self, stand):
        """Three pods needing a node each, max 2: two nodes, and the third is told why not."""
        for i in range(3):
            await stand.waiting_pod(f"big-{i}", selector=RAY_POOL)
        (change,) = stand.autoscaler.scan()
        assert change.after == 2 == stand.desired("np-auto")
        assert stand.autoscaler.scan() == []  # the third still waits: the pool is at its max
        (event,) = await stand.events("big-2", "NotTriggerScaleUp")
        assert event["message"] == "pod didn't trigger scale-up: 1 max node group size reached"

    async def test_pods_that_fit_a_node_on_its_way_raise_nothing_more(self, stand):
        """A booting node counts as capacity: a pod that fits beside the first one waits for it."""
        await stand.waiting_pod("first", cpu="1", selector=RAY_POOL)
        assert [c.after for c in stand.autoscaler.scan()] == [1]
        await until(lambda: len(pool_nodes(stand.ack, "np-auto")) == 1, what="the node launched")
        await stand.waiting_pod("second", cpu="1", selector=RAY_POOL)
        assert stand.autoscaler.scan() == []
        assert stand.desired("np-auto") == 1

    async def test_a_pod_that_fits_an_existing_node_is_left_to_the_scheduler(self, stand):
        """No selector: a 2-vCPU pod fits the system node (4 vCPU, the Ray head's 1 on it at most),
        so nothing scales (filter_out_schedulable)."""
        await stand.waiting_pod("fits-system-node", cpu="2")
        assert stand.autoscaler.scan() == []
        assert stand.desired("np-auto") == 0
        assert await stand.events("fits-system-node", "TriggeredScaleUp") == []

    async def test_a_nominated_pod_is_waiting_for_a_preemption_not_for_a_node(self, stand):
        await stand.waiting_pod("nominated", selector=RAY_POOL, nominated="somewhere")
        assert stand.autoscaler.scan() == []
        assert stand.desired("np-auto") == 0

    async def test_a_pod_that_tolerates_the_eci_taint_goes_to_the_virtual_node(self):
        """The virtual node is an existing node: a pod with its toleration fits there, one
        without it (otherwise the same) raises the pool."""
        async with standing(eci=True) as stand:
            # the system node is taken (this and the Ray head's 1 vCPU at most), so the 3-vCPU pods
            # fit only ECI (with the toleration) or a new node
            (system,) = stand.ack.world.system.names
            filler = build_test_pod("filler", namespace="default", cpu="2", node=system)
            await stand.core.create_namespaced_pod("default", filler)
            await stand.waiting_pod("eci", tolerations=[ECI_TOLERATION])
            assert stand.autoscaler.scan() == []
            await stand.waiting_pod("no-toleration")
            (change,) = stand.autoscaler.scan()
            assert (change.before, change.after, change.pods) == (0, 1, 1)
            assert await stand.events("eci", "TriggeredScaleUp") == []
            assert await stand.events("no-toleration", "TriggeredScaleUp") != []

    async def test_only_pools_with_auto_scaling_on_are_raised(self):
        """The pod fits only the pool ACK's autoscaling does not own: nothing scales, and the pod
        is told its selector matched no pool of ACK's."""
        pools = (
            auto_pool("np-auto", labels={"team": "other"}),
            auto_pool("np-manual", auto_scaling=False),
        )
        async with standing(pools=pools) as stand:
            await stand.waiting_pod("for-manual", selector=RAY_POOL)
            assert stand.autoscaler.scan() == []
            assert stand.desired("np-manual") == stand.desired("np-auto") == 0
            (event,) = await stand.events("for-manual", "NotTriggerScaleUp")
            assert "didn't match Pod's node affinity/selector" in event["message"]

    async def test_it_does_nothing_while_no_pool_has_auto_scaling_on(self):
        """ACK runs no autoscaler for a cluster without such a pool: no scan, no Event."""
        async with standing(pools=(auto_pool(auto_scaling=False),)) as stand:
            await stand.waiting_pod("for-manual", selector=RAY_POOL)
            assert stand.autoscaler.scan() == []
            assert stand.autoscaler.scans == 0
            assert await stand.events("for-manual", "NotTriggerScaleUp") == []

    async def test_it_writes_no_cs_call(self, stand):
        """ACK's autoscaler is part of ACK: the CS emulator's journal stays empty."""
        await stand.waiting_pod("big", selector=RAY_POOL)
        assert stand.autoscaler.scan() != []
        assert stand.ack.cs_writes() == []


LOOP = AckAutoscalerSpec(
    scan_interval_seconds=300,
    scale_down_unneeded_seconds=120,
    scale_down_delay_after_add_seconds=0,
)


class TestOnItsOwn:
    """The loop: scans at its interval, and gives empty nodes back after the unneeded time."""

    async def test_a_worker_waits_for_the_scan_then_its_node_and_the_node_goes_when_empty(
        self,
    ):
        """A default-scheduler pod goes Unschedulable at once, the pool rises only at the first
        tick (300 s after the start), the pod runs on the new node; deleted, its node goes 120 s
        (the unneeded time) after it emptied, back to min_instances 0."""
        async with standing(pools=(auto_pool(boot=BootLatency(20, 20)),), spec=LOOP) as stand:
            await self._serve_then_give_back(stand)

    @staticmethod
    async def _serve_then_give_back(stand: Stand) -> None:
        body = build_test_pod("worker", namespace="default", cpu="3", memory="4Gi")
        body["spec"]["nodeSelector"] = RAY_POOL
        await stand.core.create_namespaced_pod("default", body)

        def condition() -> str:
            pod = stand.ack.cluster.store.get("pods", "worker", namespace="default")
            found = [
                c for c in pod["status"].get("conditions") or () if c["type"] == "PodScheduled"
            ]
            return found[0].get("reason", "") if found else ""

        await until(lambda: condition() == "Unschedulable", what="the pod unschedulable")
        assert stand.autoscaler.scans == 0 and stand.desired("np-auto") == 0

        await until(lambda: stand.desired("np-auto") == 1, what="the scale-up")
        started = stand.autoscaler.started_at
        assert started is not None
        assert stand.autoscaler.changes[0].at - started >= LOOP.scan_interval_seconds

        def phase() -> str:
            pod = stand.ack.cluster.store.get("pods", "worker", namespace="default")
            return str(pod["status"].get("phase"))

        await until(lambda: phase() == "Running", what="the pod running on the new node")
        (node,) = pool_nodes(stand.ack, "np-auto")
        await stand.core.delete_namespaced_pod("worker", "default", grace_period_seconds=0)
        emptied = stand.ack.cluster.clock.now()
        await until(lambda: not pool_nodes(stand.ack, "np-auto"), what="the node removed")
        down = stand.autoscaler.changes[-1]
        assert (down.before, down.after, down.nodes) == (1, 0, (node["metadata"]["name"],))
        assert down.at - emptied >= LOOP.scale_down_unneeded_seconds
        assert stand.desired("np-auto") == 0
        assert stand.ack.cs_writes() == []

    async def test_empty_nodes_go_down_to_min_instances_and_no_further(self):
        """Two empty nodes from the start, min 1: one goes, one stays however long they idle."""
        pools = (auto_pool(min_size=1, desired=2, max_size=3),)
        async with standing(
            pools=pools, spec=dataclasses.replace(LOOP, scan_interval_seconds=10)
        ) as stand:
            await self._down_to_min(stand)

    @staticmethod
    async def _down_to_min(stand: Stand) -> None:
        await until(lambda: stand.desired("np-auto") == 1, what="the scale-down")
        (change,) = stand.autoscaler.changes
        assert (change.before, change.after, len(change.nodes)) == (2, 1, 1)
        clock = stand.ack.cluster.clock
        await clock.sleep(LOOP.scale_down_unneeded_seconds + 30)  # more scans go by
        assert stand.autoscaler.scans > 2
        assert stand.autoscaler.changes == [change]
        assert len(pool_nodes(stand.ack, "np-auto")) == 1 and stand.desired("np-auto") == 1
