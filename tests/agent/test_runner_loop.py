"""The agent's main loop against the simulator over real HTTP: the Kubernetes API through
kubernetes-asyncio, node pools through the CS SDK and emulator, the in-process decider."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import aiohttp
import pytest

from agent.app.commands import render_status
from agent.app.ops import OpsServer
from agent.decide.deciders import LocalDecider
from agent.sim.cloud.cs_api import scale_requests_of
from tests.support.agent_world import REGION, World, config_for
from tests.support.cluster import running
from tests.support.waiting import until


async def test_burst_scales_once_and_every_pod_runs(world: World) -> None:
    """Six pending Ray workers become one decision, one pool write, and six Running pods."""
    agent = world.agent(config_for(world))
    async with running(agent):
        await asyncio.wait_for(asyncio.gather(*(w.synced.wait() for w in agent.watchers)), 10)
        world.add_workers(6)
        await until(lambda: world.phases() == ["Running"] * 6)
        writes = scale_requests_of(world.cs_app)
        assert len(writes) == 1, writes
        # ecs.g7.xlarge offers a bit under 4 vCPU to pods: three 1-vCPU workers per node
        assert writes[0].summary.get("desired_size") == 2
        assert agent.metrics.reaction_seconds._sum.get() > 0
        assert agent.last_round is not None


async def test_pods_pending_before_start_are_served(world: World) -> None:
    """Pods already unschedulable when the agent starts are decided on after the first LIST."""
    world.add_workers(3)
    await until(lambda: len(world.phases()) == 3)
    agent = world.agent(config_for(world))
    async with running(agent):
        await until(lambda: world.phases() == ["Running"] * 3)
    assert [w.summary.get("desired_size") for w in scale_requests_of(world.cs_app)] == [1]


async def test_dry_run_decides_without_writing(world: World) -> None:
    """--dry-run: the round is decided and reported, nothing is written."""
    agent = world.agent(config_for(world, dry_run=True))
    async with running(agent):
        world.add_workers(4)
        await until(lambda: agent.last_round is not None and agent.last_round.outcome == "dry_run")
        assert agent.last_round.pools_written == ({"pool": "np-cpu", "from": 0, "to": 2},)
        assert agent.metrics.registry.get_sample_value("ray_ack_scaler_pending_pods") == 4
    assert scale_requests_of(world.cs_app) == []
    assert set(world.phases()) == {"Pending"}


async def test_the_round_record_keeps_each_action_with_its_reason(world: World) -> None:
    """The round's record (logged, shown in /status, the dev report) carries every action of the
    reply: its kind, pool, pod count and the decide/v1 reason text."""
    agent = world.agent(config_for(world, dry_run=True))
    async with running(agent):
        world.add_workers(4)
        await until(lambda: agent.last_round is not None and agent.last_round.outcome == "dry_run")
        (action,) = agent.last_round.actions
        assert {k: action[k] for k in ("kind", "pool", "pods")} == {
            "kind": "scale-pool",
            "pool": "np-cpu",
            "pods": 4,
        }
        assert "np-cpu" in action["reason"]


class GatedDecider:
    """The in-process decider, held at a gate so the test can stop the agent mid-round."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()
        self._inner = LocalDecider()

    async def decide(self, request: dict[str, Any]) -> dict[str, Any]:
        self.entered.set()
        await self.gate.wait()
        return await self._inner.decide(request)


async def test_stop_lets_the_round_in_flight_finish_its_writes(world: World) -> None:
    """SIGTERM mid-round: the decision in progress is still applied, then the agent exits."""
    decider = GatedDecider()
    agent = world.agent(config_for(world), decider=decider)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        world.add_workers(2)
        await asyncio.wait_for(decider.entered.wait(), 15)
        stop.set()
        await asyncio.sleep(0.05)
        assert not task.done()  # waiting for the round, not abandoning it
        decider.gate.set()
        await asyncio.wait_for(task, 10)
    finally:
        stop.set()
        decider.gate.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
    assert [w.summary.get("desired_size") for w in scale_requests_of(world.cs_app)] == [1]


async def test_ops_endpoints_serve_the_running_agent(world: World) -> None:
    """/readyz turns ready after the first LIST; /status shows pools and the last decision."""
    agent = world.agent(config_for(world))
    ops = OpsServer(agent, agent.metrics, host="127.0.0.1", port=0)
    await ops.start()
    try:
        async with (
            running(agent),
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        ):
            await until(agent.ready)
            async with session.get(ops.url + "/readyz") as response:
                assert response.status == 200
            world.add_workers(3)
            await until(
                lambda: agent.last_round is not None and agent.last_round.outcome == "scaled"
            )
            await until(lambda: bool(agent.pool_infos) and agent.pool_infos[0].desired == 1)
            async with session.get(ops.url + "/status") as response:
                status = json.loads(await response.text())
            async with session.get(ops.url + "/metrics") as response:
                metrics = await response.text()
    finally:
        await ops.stop()
    assert status["pools"][0]["id"] == "np-cpu"
    assert status["lastDecision"]["outcome"] == "scaled"
    # the RayCluster demand adds its watch, and node-pods for the free room of running nodes
    assert set(status["watches"]) == {
        "pending-pods",
        "bound-pods",
        "nodes",
        "node-pods",
        "rayclusters",
    }
    assert all("http_error" not in w["restarts"] for w in status["watches"].values())
    assert 'ray_ack_scaler_decisions_total{outcome="scaled"} 1.0' in metrics
    assert status["eci"]["enabled"] is False  # config_for's default: ECI off
    text = render_status(status)
    assert "np-cpu" in text and "scaled np-cpu: 0 -> 1" in text
    assert " ECI: off" in text


@pytest.mark.parametrize("with_eci", [True])
async def test_eci_first_places_pods_on_the_virtual_node_and_counts_them(world: World) -> None:
    """eci-first: workers get the toleration and run on ECI, counted by the view; no pool scales."""
    agent = world.agent(config_for(world, eci_enabled=True, strategy="eci-first"))
    async with running(agent):
        await until(agent.ready)
        world.add_workers(4)
        await until(lambda: world.phases() == ["Running"] * 4)
        await until(lambda: agent.view.eci_running_pods == 4)
        assert agent.last_round is not None and agent.last_round.eci_placed == 4
    assert scale_requests_of(world.cs_app) == []
    items, _ = world.cluster.store.list("pods", namespace="ray")
    assert {p["spec"]["nodeName"] for p in items} == {f"virtual-kubelet-{REGION}-k"}
    assert agent.metrics.eci_pods_placed._value.get() == 4


async def test_cloud_failures_become_data_and_are_retried(world: World) -> None:
    """CS failing everything: the round is an error (status, metrics), retried; then one scale."""
    world.cs_faults.cs_error_ratio = 1.0
    agent = world.agent(config_for(world, resync_seconds=0.3))
    async with running(agent):
        world.add_workers(2)
        await until(lambda: agent.last_round is not None and agent.last_round.outcome == "error")
        assert any(e["source"] == "cs" for e in agent.status()["errors"])
        errors = agent.metrics.api_errors.labels(api="cs", code="ServiceUnavailable")
        assert errors._value.get() >= 1
        world.cs_faults.cs_error_ratio = 0.0
        await until(lambda: world.phases() == ["Running"] * 2)
    assert [w.summary.get("desired_size") for w in scale_requests_of(world.cs_app)] == [1]


async def test_new_pod_grace_defers_the_decision(world: World) -> None:
    """With a grace period, pods are decided on only once they have waited that long."""
    grace = 40.0  # simulated seconds: 0.4 s real
    agent = world.agent(config_for(world, new_pod_grace_seconds=grace))
    async with running(agent):
        await until(agent.ready)
        created = world.cluster.clock.now()
        world.add_workers(1)
        await until(lambda: bool(scale_requests_of(world.cs_app)))
    (write,) = scale_requests_of(world.cs_app)
    # the Unschedulable timestamp has whole-second precision
    assert write.time - created >= grace - 1


async def test_two_agents_on_one_pool_converge_without_double_scaling(world: World) -> None:
    """Two agents see the same burst: every write asks the same absolute size, never more."""
    first = world.agent(config_for(world))
    second = world.agent(config_for(world, batch_idle_seconds=0.08))
    async with running(first), running(second):
        await until(lambda: first.ready() and second.ready())
        world.add_workers(6)
        await until(lambda: world.phases() == ["Running"] * 6)
    sizes = [w.summary.get("desired_size") for w in scale_requests_of(world.cs_app)]
    assert sizes and set(sizes) == {2}, sizes


async def test_cut_streams_and_cs_throttling_still_converge_once(world: World) -> None:
    """Cut watch streams, a throttling CS: every pod runs, every write asks the fault-free size."""
    world.cluster.faults.watch_cut_every_events = 3
    world.cs_faults.cs_throttle_ratio = 0.4
    agent = world.agent(config_for(world, resync_seconds=0.5))
    async with running(agent):
        await until(agent.ready)
        world.add_workers(6)
        await until(lambda: world.phases() == ["Running"] * 6, timeout=30)
    sizes = [w.summary.get("desired_size") for w in scale_requests_of(world.cs_app)]
    assert sizes and set(sizes) == {2}, sizes
    assert sum(w.restarts["eof"] for w in agent.watchers) >= 1
