"""Scale-in end to end: the real agent (kubernetes-asyncio, the CS SDK, the FC SDK or the
in-process decider) against the embedded ACK, on the simulated clock at high speed.

The walkthrough's full cycle — scale out, 15 tasks × 120 s, Ray deletes idle workers after
60 s, the agent gives the empty nodes back — and the ways it must stay safe: a new burst, a
pod landing on a node chosen for removal, dry-run, an agent restart.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent.actuate.actuation import Actuator
from agent.app.loop import Agent
from agent.app.settings import AgentConfig
from agent.app.wiring import connect_agent
from agent.clients.cs import NodePoolClient
from agent.clients.cs import build_sdk_client as build_cs
from agent.clients.kube import KubeClient
from agent.decide.deciders import LocalDecider
from agent.scale_in.actuation import ScaleInActuator
from agent.sim.embedded import EmbeddedAck
from agent.sim.scenario import Scenario, load_scenario
from agent.sim.world.nodepools import PoolSpec
from agent.sim.world.ray import JobSpec, TaskGroup
from tests.support.cluster import agent_config, pool_nodes, running
from tests.support.waiting import until

SPEED = 200  # the whole seed cycle (~380 simulated seconds) in about two real seconds
POOL = "np-cpu"
UNNEEDED = 60.0  # the agent's default scaleDownUnneededSeconds

pytestmark = pytest.mark.usefixtures("access_keys")


def config_for(ack: EmbeddedAck, **overrides: Any) -> AgentConfig:
    """The operator's configuration with real-time rhythms scaled to SPEED; no ECI, and a broken
    FC path fails the test instead of falling back."""
    values: dict[str, Any] = dict(fallback_to_local=False, eci_enabled=False)
    return agent_config(ack, speed=SPEED, **{**values, **overrides})


@contextlib.asynccontextmanager
async def agent_with_decider(
    ack: EmbeddedAck, config: AgentConfig, decider: Any
) -> AsyncIterator[Agent]:
    """The production clients wired by hand around a test's decider."""
    kube = await KubeClient.connect(api_url=config.api_url)
    try:
        sdk = build_cs(
            region_id=config.region,
            endpoint=ack.cs_endpoint,
            protocol="http",
            access_key_id=ack.info()["cs"]["accessKeyId"],
            access_key_secret=ack.info()["cs"]["accessKeySecret"],
        )
        pools = NodePoolClient(sdk, config.cluster_id, bounds=config.pool_bounds)
        yield Agent(
            config,
            kube=kube,
            pools=pools,
            decider=decider,
            actuator=Actuator(pools, kube),
            now=ack.cluster.clock.now,
            scale_in=ScaleInActuator(pools, kube),
        )
    finally:
        await kube.close()


def removals(ack: EmbeddedAck) -> list[Any]:
    return [w for w in ack.cs_writes() if w.action == "RemoveNodePoolNodes" and w.status < 400]


def metric(agent: Agent, name: str, **labels: str) -> float:
    """A sample of the agent's Prometheus registry (0 when never incremented)."""
    value = agent.metrics.registry.get_sample_value(f"ray_ack_scaler_{name}", labels)
    return value or 0.0


def with_job(scenario: Scenario, *groups: TaskGroup) -> Scenario:
    return dataclasses.replace(scenario, job=JobSpec(task_groups=groups))


# --- the full cycle ----------------------------------------------------------------------------


async def test_after_the_seed_job_the_pool_returns_to_min():
    """FC decisions: nodes added for 15 tasks are all given back once Ray deletes idle workers."""
    scenario = load_scenario("seed")
    async with EmbeddedAck(scenario, speed=SPEED, faults=False) as ack:
        config = config_for(ack, decider="fc")
        async with connect_agent(config, now=ack.cluster.clock.now) as agent, running(agent):
            await until(lambda: ack.world.ray.finished(), timeout=20, what="the job")
            assert pool_nodes(ack, POOL), "the job ran on pool nodes"
            await until(lambda: not pool_nodes(ack, POOL), timeout=20, what="the pool back at min")
            status = agent.status()
        ray = ack.world.ray
        summary = ray.summary()
        assert (summary.done, summary.failed) == (15, 0)
        # Every worker was deleted by Ray's idle timeout, none by a drain.
        assert ray.tasks_requeued == 0
        assert summary.pods_deleted == summary.pods_created
        writes = removals(ack)
        assert writes and all(w.summary["drain_node"] and w.summary["release_node"] for w in writes)
        pool = ack.world.pools.describe_pool(POOL)
        assert (pool.desired, pool.total_nodes) == (0, 0)
        events, _ = ack.cluster.store.list("events", namespace="default")
        scaled_down = {
            e["involvedObject"]["name"] for e in events if e.get("reason") == "ScaleDown"
        }
        launched = {u.node_name for u in ack.world.pools.usage() if u.pool_id == POOL}
        assert scaled_down == launched
        removed = metric(agent, "nodes_removed_total", pool=POOL)
        assert removed == len(launched)
        assert status["scaleIn"]["rounds"] > 0
        assert all(i.error_type is None for i in ack.fc_invocations())


async def test_a_new_burst_during_scale_in_is_served_without_evicting_tasks():
    """Tasks submitted once nodes are being given back still all run, none re-queued."""
    async with EmbeddedAck(load_scenario("seed"), speed=SPEED, faults=False) as ack:
        config = config_for(ack)
        async with connect_agent(config, now=ack.cluster.clock.now) as agent, running(agent):
            await until(lambda: removals(ack), timeout=20, what="the first removal")
            burst_at = ack.cluster.clock.now()
            ack.world.ray.submit(TaskGroup(name="burst", count=15, duration_seconds=60))
            await until(lambda: ack.world.ray.finished(), timeout=25, what="the burst")
            await until(lambda: not pool_nodes(ack, POOL), timeout=20, what="the pool back at min")
        summary = ack.world.ray.summary()
        assert (summary.done, summary.failed) == (30, 0)
        assert ack.world.ray.tasks_requeued == 0
        raised_again = [w for w in ack.cs_scale_requests() if w.time >= burst_at]
        assert raised_again, "the burst was served by growing the pool again"


class LandsOnChosenNode:
    """The in-process decider, but when a reply first removes nodes, a new pod is bound to the
    first of them before the agent acts: the burst arrived while it was deciding."""

    def __init__(self, ack: EmbeddedAck) -> None:
        self._ack = ack
        self._inner = LocalDecider()
        self.landed_on: str | None = None

    async def decide(self, request: dict[str, Any]) -> dict[str, Any]:
        reply = await self._inner.decide(request)
        if self.landed_on is None and reply.get("remove"):
            self.landed_on = reply["remove"][0]["node"]
            self._ack.cluster.store.create(
                "pods",
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": "late-arrival",
                        "namespace": "default",
                        "ownerReferences": [
                            {
                                "apiVersion": "apps/v1",
                                "kind": "ReplicaSet",
                                "name": "web-1",
                                "uid": "rs-1",
                                "controller": True,
                            }
                        ],
                    },
                    "spec": {
                        "nodeName": self.landed_on,
                        "containers": [
                            {
                                "name": "web",
                                "image": "nginx",
                                "resources": {"requests": {"cpu": "500m"}},
                            }
                        ],
                    },
                    "status": {"phase": "Pending"},
                },
                namespace="default",
            )
        return reply


async def test_a_node_chosen_for_removal_that_got_a_pod_is_kept():
    """Cordon, look again, see the new pod: the node is uncordoned and stays; the rest go."""
    async with EmbeddedAck(load_scenario("seed"), speed=SPEED, faults=False) as ack:
        decider = LandsOnChosenNode(ack)
        config = config_for(ack)
        async with agent_with_decider(ack, config, decider) as agent, running(agent):
            await until(lambda: ack.world.ray.finished(), timeout=20, what="the job")
            await until(
                lambda: len(pool_nodes(ack, POOL)) == 1,
                timeout=20,
                what="every node but the one with the late pod removed",
            )
            # Several more rounds: the kept node is judged again and stays (it has load now).
            rounds = agent.scale_in.rounds
            await until(lambda: agent.scale_in.rounds >= rounds + 5, timeout=10, what="rounds")
            survivors = pool_nodes(ack, POOL)
            kept = metric(agent, "scale_in_nodes_kept_total")
        assert [n["metadata"]["name"] for n in survivors] == [decider.landed_on]
        assert not survivors[0]["spec"].get("unschedulable")
        assert kept >= 1
        pod = ack.cluster.store.get("pods", "late-arrival", namespace="default")
        assert pod["status"]["phase"] == "Running"
        assert ack.world.ray.tasks_requeued == 0


# --- safety ------------------------------------------------------------------------------------


def idle_pool(scenario: Scenario, *, nodes: int) -> Scenario:
    """The seed cluster with `nodes` booted, empty pool nodes and no job."""
    pool: PoolSpec = dataclasses.replace(scenario.pools[0], desired=nodes)
    return dataclasses.replace(with_job(scenario), pools=(pool,))


async def test_dry_run_removes_nothing():
    """Decisions to remove empty nodes are made and counted, but no node is cordoned or removed."""
    async with EmbeddedAck(
        idle_pool(load_scenario("seed"), nodes=3), speed=SPEED, faults=False
    ) as ack:
        config = config_for(ack, dry_run=True)
        async with connect_agent(config, now=ack.cluster.clock.now) as agent, running(agent):
            await until(
                lambda: metric(agent, "scale_in_decisions_total", outcome="dry_run") >= 3,
                timeout=10,
                what="dry-run decisions",
            )
            would = agent.scale_in.last_result
        assert would is not None and would.dry_run and len(would.removed) == 3
        assert removals(ack) == []
        nodes = pool_nodes(ack, POOL)
        assert len(nodes) == 3
        assert not any(n["spec"].get("unschedulable") for n in nodes)


async def test_a_restarted_agent_starts_its_timers_again():
    """A restarted agent waits a full unneeded time from its own start, then removes empty nodes.
    (The first agent's own unneeded time is out of reach, so no race between its stop and a
    removal at 200× can end the test early; its timers still run, which is what must not
    carry over.)"""
    async with EmbeddedAck(load_scenario("seed"), speed=SPEED, faults=False) as ack:
        clock = ack.cluster.clock
        config = config_for(ack)
        never = dataclasses.replace(config, scale_down_unneeded_seconds=100 * UNNEEDED)
        async with connect_agent(never, now=clock.now) as first, running(first):

            def part_unneeded() -> bool:
                since = [
                    first.scale_in.tracker.empty_since(n["metadata"]["name"])
                    for n in pool_nodes(ack, POOL)
                ]
                return any(s is not None and clock.now() - s >= UNNEEDED / 3 for s in since)

            await until(lambda: ack.world.ray.finished(), timeout=20, what="the job")
            await until(part_unneeded, timeout=10, what="an empty node a third of the way")
        assert removals(ack) == []
        restarted_at = clock.now()
        async with connect_agent(config, now=clock.now) as second, running(second):
            await until(lambda: not pool_nodes(ack, POOL), timeout=20, what="the pool back at min")
        first_removal = min(w.time for w in removals(ack))
        assert first_removal - restarted_at >= UNNEEDED
        assert ack.world.ray.tasks_requeued == 0
        summary = ack.world.ray.summary()
        assert summary.pods_deleted == summary.pods_created
