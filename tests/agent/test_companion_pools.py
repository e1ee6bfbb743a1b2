"""Companion pools: a pool with ACK's own node autoscaling on is decided with (its bounds ACK's,
marked `ackAutoscaler` in decide/v1) and never written — no ModifyClusterNodePool, no
RemoveNodePoolNodes, whatever a reply asks; pods left for ACK's autoscaler are shown as such; a
pool whose ACK autoscaling is switched off or on changes owner at the next pool resync; the start
names the companion pools in a log line and an Event. Real HTTP: kubernetes-asyncio against the
simulated API server, the CS SDK against the emulator (its journal is what the agent wrote)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
import structlog

from agent.actuate.actuation import PLACED_LABEL, Actuator
from agent.app.commands import render_status
from agent.app.loop import Agent, request_settings
from agent.app.managed_pools import COMPANION_EVENT_REASON, ManagedPools
from agent.decide.deciders import LocalDecider, check_reply
from agent.decide.request_builder import build_request
from agent.model import PoolBounds, PoolInfo, Snapshot
from agent.sim.cloud.cs_api import scale_requests_of, writes_of
from functions.contract import DECIDE_SCHEMA
from tests.support.agent_world import NP_CPU, World, config_for
from tests.support.builders import pending_pod
from tests.support.cluster import running
from tests.support.waiting import until

Reply = Callable[[dict[str, Any]], dict[str, Any]]


class Recording:
    """The in-process decider (or `answer`, for decide/v1), keeping the decide/v1 requests it
    is asked; every reply goes through the contract's checks, as the real deciders' do."""

    def __init__(self, answer: Reply | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self._answer = answer
        self._local = LocalDecider()

    async def decide(self, request: dict[str, Any]) -> dict[str, Any]:
        if request.get("schema") != DECIDE_SCHEMA:
            return await self._local.decide(request)
        self.requests.append(request)
        if self._answer is None:
            return await self._local.decide(request)
        return check_reply(self._answer(request), request)


def _reply(
    decision_id: str,
    *,
    actions: list[dict[str, Any]] = (),  # type: ignore[assignment]
    covered: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    return {
        "schema": DECIDE_SCHEMA,
        "decisionId": decision_id,
        "actions": list(actions),
        "covered": list(covered),
        "unplaceable": [],
        "summary": {},
    }


def scale_the_first_pool(request: dict[str, Any]) -> dict[str, Any]:
    """A decider that ignores `ackAutoscaler`: every pod to a raise of the first pool."""
    pool = request["pools"][0]
    action = {
        "kind": "scale-pool",
        "poolId": pool["id"],
        "fromDesired": pool["size"]["desired"],
        "toDesired": pool["size"]["max"],
        "pods": [p["uid"] for p in request["pods"]],
        "reason": "a decider that does not know companion pools",
    }
    return _reply("d-scale", actions=[action])


def leave_for_ack(request: dict[str, Any]) -> dict[str, Any]:
    """What a decider that knows companion pools answers when only one fits the pods."""
    pool_id = request["pools"][0]["id"]
    covered = [
        {
            "pod": p["uid"],
            "poolId": pool_id,
            "ackAutoscaler": True,
            "reason": f"left for ACK autoscaler on {pool_id}",
        }
        for p in request["pods"]
    ]
    reply = _reply("d-left", covered=covered)
    reply["summary"] = {"coveredPods": len(covered), "leftForAckAutoscalerPods": len(covered)}
    return reply


def companion_world(world: World) -> World:
    world.sim_pools.set_ack_autoscaling("np-cpu", True)
    return world


def pool_writes(world: World) -> list[str]:
    """Every write the CS emulator received (reads are not journalled)."""
    return [w.action for w in writes_of(world.cs_app)]


def decided(agent: Agent, pods: int) -> Callable[[], bool]:
    def check() -> bool:
        last = agent.last_round
        return last is not None and last.pods == pods and last.outcome not in ("idle", "error")

    return check


async def test_the_request_marks_a_companion_pool_with_acks_bounds_and_scan_interval(
    world: World,
) -> None:
    """An ACK-autoscaled pool, not listed in managed_pools, is in the request as a companion:
    `ackAutoscaler` with the configured scan interval, size min/max = ACK's min/max_instances."""
    companion_world(world)
    decider = Recording(leave_for_ack)
    config = config_for(world, managed_pools=(), ack_scan_interval_seconds=45.0)
    agent = world.agent(config, decider=decider)
    async with running(agent):
        world.add_workers(3)
        await until(lambda: decider.requests, what="a decide/v1 request")
    (pool,) = decider.requests[0]["pools"]
    assert pool["id"] == "np-cpu"
    assert pool["ackAutoscaler"] == {"scanIntervalSeconds": 45.0}
    assert (pool["size"]["min"], pool["size"]["max"]) == (0, 10)  # the sim's ACK bounds


async def test_pods_only_a_companion_pool_fits_bring_no_pool_write(world: World) -> None:
    """A listed pool with ACK autoscaling on is a companion: the in-process decision runs on
    its pods and the CS emulator receives no write from the agent at all."""
    companion_world(world)
    agent = world.agent(config_for(world))
    async with running(agent):
        world.add_workers(6)
        await until(decided(agent, 6), what="a round over the six pods")
        await until(lambda: agent.rounds >= 2, what="a second round (resync)")
    assert [p.pool_id for p in agent.pool_infos] == ["np-cpu"]
    assert agent.pool_infos[0].companion
    assert pool_writes(world) == []


async def test_a_reply_that_scales_a_companion_pool_is_refused(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """A decider asks to raise the companion pool. The reply check refuses the reply (the
    request marked the pool), so the round ends in an error naming the pool; and the actuator,
    handed that reply anyway, refuses the write on the request's marker, logged as an error
    naming the pool and the decision. Nothing reaches CS either way."""
    companion_world(world)
    caplog.set_level(logging.ERROR, logger="agent.actuate.actuation")
    decider = Recording(scale_the_first_pool)
    agent = world.agent(config_for(world), decider=decider)
    async with running(agent):
        world.add_workers(3)
        await until(
            lambda: agent.last_round is not None and agent.last_round.pods == 3,
            what="a round over the three pods",
        )
    last = agent.last_round
    assert last is not None and last.outcome == "error"
    assert last.error is not None and "np-cpu is owned by ACK's autoscaler" in last.error
    assert pool_writes(world) == []

    request = decider.requests[-1]
    result = await Actuator(world.pools, world.kube).apply(
        scale_the_first_pool(request), request, dry_run=False
    )
    assert [r.pool_id for r in result.pools_refused] == ["np-cpu"]
    assert not result.pools_written
    (refusal, *_) = [r for r in caplog.records if "pool write refused" in r.getMessage()]
    assert (refusal.pool, refusal.decision_id) == ("np-cpu", "d-scale")  # type: ignore[attr-defined]
    assert pool_writes(world) == []


async def test_a_pool_acks_autoscaler_takes_over_after_the_request_is_not_written(
    world: World,
) -> None:
    """The request saw a managed pool; ACK autoscaling is switched on before the write: the
    re-read right before writing shows a companion, and the raise is refused and counted."""
    pools = await world.pools.describe_pools()
    snapshot = Snapshot(
        pending=tuple(pending_pod(f"u-{i}") for i in range(3)), nodes=(), eci_running_pods=0
    )
    request = build_request(
        snapshot,
        pools,
        {},
        settings=request_settings(config_for(world)),
        now="2026-12-04T00:00:00Z",
    )
    reply = await LocalDecider().decide(request)
    assert [a["kind"] for a in reply["actions"]] == ["scale-pool"]
    world.sim_pools.set_ack_autoscaling("np-cpu", True)
    actuator = Actuator(world.pools, world.kube)
    result = await actuator.apply(reply, request, dry_run=False)
    assert [r.pool_id for r in result.pools_refused] == ["np-cpu"]
    assert not result.pools_written and actuator.counters["pool_writes_refused"] == 1
    assert pool_writes(world) == []


async def test_pods_left_for_ack_are_shown_as_such_and_nothing_is_written(world: World) -> None:
    """`covered` entries marked ackAutoscaler: no write, no pod patch; the round record, its log
    line, /status and `status` say how many pods were left for ACK's autoscaler on which pool."""
    companion_world(world)
    agent = world.agent(config_for(world), decider=Recording(leave_for_ack))
    with structlog.testing.capture_logs() as logged:
        async with running(agent):
            world.add_workers(3)
            await until(decided(agent, 3), what="a round over the three pods")
    last = agent.last_round
    assert last is not None and last.outcome == "covered"
    assert last.left_for_ack_autoscaler == ({"pool": "np-cpu", "pods": 3},)
    rounds = [e for e in logged if e["event"] == "decision round"]
    assert rounds[0]["left_for_ack_autoscaler"] == "3 left for ACK autoscaler on np-cpu"
    status = agent.status()
    assert list(status["lastDecision"]["left_for_ack_autoscaler"]) == [
        {"pool": "np-cpu", "pods": 3}
    ]
    assert status["pools"][0]["owner"] == "companion"
    text = render_status(status)
    assert "  3 left for ACK autoscaler on np-cpu" in text
    assert "companion: ACK's autoscaler owns its size" in text
    assert pool_writes(world) == []
    pods, _ = world.cluster.store.list("pods", namespace="ray")
    assert not [p for p in pods if PLACED_LABEL in p["metadata"].get("labels", {})]


async def test_a_companion_pool_turned_off_is_managed_and_scaled_at_the_next_resync(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """ACK autoscaling switched off on a listed companion pool: the next pool resync makes it
    managed (said once in the log), its next request has no ackAutoscaler, and it is raised
    within the configured bounds — no restart."""
    companion_world(world)
    caplog.set_level(logging.WARNING, logger="agent.app.managed_pools")
    decider = Recording()
    agent = world.agent(config_for(world), decider=decider)
    async with running(agent):
        world.add_workers(3)
        await until(decided(agent, 3), what="a round while np-cpu is a companion")
        assert pool_writes(world) == []
        world.sim_pools.set_ack_autoscaling("np-cpu", False)
        await until(lambda: world.phases() == ["Running"] * 3, what="the pods running")
    assert [w.summary.get("desired_size") for w in scale_requests_of(world.cs_app)] == [1]
    assert "ackAutoscaler" in decider.requests[0]["pools"][0]
    assert "ackAutoscaler" not in decider.requests[-1]["pools"][0]
    switched = [r for r in caplog.records if "node pool is managed again" in r.getMessage()]
    assert len(switched) == 1 and switched[0].pool == "np-cpu"  # type: ignore[attr-defined]


async def test_scale_in_leaves_a_companion_pools_nodes_until_it_is_managed_again(
    world: World,
) -> None:
    """An empty node of a companion pool is never removed (the scale-in request offers none);
    once ACK autoscaling is switched off, the same node is given back — so the first part is
    not scale-in merely being slow."""
    companion_world(world)
    world.sim_pools.set_desired("np-cpu", 1)
    config = config_for(
        world,
        scale_in_interval_seconds=0.05,
        scale_down_unneeded_seconds=0.0,
        scale_down_delay_after_add_seconds=0.0,
    )
    agent = world.agent(config, scale_in=True)
    assert agent.scale_in is not None
    scale_in = agent.scale_in
    async with running(agent):
        await until(lambda: any(n.ready for n in agent.view.nodes.values()), what="a Ready node")
        rounds = scale_in.rounds
        await until(lambda: scale_in.rounds >= rounds + 5, what="five scale-in rounds")
        assert pool_writes(world) == []
        world.sim_pools.set_ack_autoscaling("np-cpu", False)
        await until(lambda: "RemoveNodePoolNodes" in pool_writes(world), what="the removal")


async def test_the_start_names_companion_pools_in_a_log_line_and_one_event(world: World) -> None:
    """At start-up: one log line and one Event on the agent's own Pod naming each companion pool
    with ACK's bounds; later pool reads write no second Event."""
    companion_world(world)
    config = config_for(world, pool_lock_namespace="ray", pool_lock_identity="agent-0")
    agent = world.agent(config)
    with structlog.testing.capture_logs() as logged:
        await agent.check_pools()
        await agent.check_pools()  # the same pools read again: nothing new to say
    lines = [e for e in logged if str(e["event"]).startswith("companion pools:")]
    assert len(lines) == 1 and lines[0]["companion_pools"] == {"np-cpu": "0..10"}
    events, _ = world.cluster.store.list("events", namespace="ray")
    (event,) = [e for e in events if e.get("reason") == COMPANION_EVENT_REASON]
    assert event["involvedObject"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "namespace": "ray",
        "name": "agent-0",
    }
    assert "np-cpu (min 0, max 10)" in event["message"]
    assert event["message"] == lines[0]["event"]


async def test_every_pool_read_carries_its_owner_and_the_owners_bounds(world: World) -> None:
    """Read through the CS client (the resync and actuation's re-read alike): a listed pool with
    ACK autoscaling on is a companion bounded by ACK's min/max_instances, not the configured
    ones; allow_ack_autoscaled_pools keeps it managed within the configured ones."""
    companion_world(world)
    listed = (PoolBounds("np-cpu", 0, 4),)
    companion = await world.pool_client(config_for(world, managed_pools=listed)).describe_pool(
        "np-cpu"
    )
    assert (companion.companion, companion.min_size, companion.max_size) == (True, 0, 10)
    allowed = config_for(world, managed_pools=listed, allow_ack_autoscaled_pools=True)
    (managed,) = await world.pool_client(allowed).describe_pools()
    assert (managed.companion, managed.min_size, managed.max_size) == (False, 0, 4)


def _pool(*, ack: bool, companion: bool, pool_id: str = "np-cpu") -> PoolInfo:
    return PoolInfo(
        pool_id, "cpu", ("ecs.g7.xlarge",), 0, 0, 10, ack_autoscaling=ack, companion=companion
    )


def test_each_change_of_owner_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """Owners go managed → companion → companion → managed: two lines, one per change; an
    unlisted companion that loses ACK autoscaling is no longer used, and says so."""
    caplog.set_level(logging.INFO, logger="agent.app.managed_pools")
    managed = ManagedPools([NP_CPU], allow_ack_autoscaled=False)
    other_on = _pool(ack=True, companion=True, pool_id="np-other")
    other_off = _pool(ack=False, companion=False, pool_id="np-other")
    steps = [
        [_pool(ack=False, companion=False), other_on],
        [_pool(ack=True, companion=True), other_on],
        [_pool(ack=True, companion=True), other_on],
        [_pool(ack=False, companion=False), other_off],
    ]
    used = [[p.pool_id for p in managed.select(step)] for step in steps]
    assert used == [["np-cpu", "np-other"]] * 3 + [["np-cpu"]]
    messages = [(r.pool, r.getMessage().split(":")[0]) for r in caplog.records]  # type: ignore[attr-defined]
    assert messages == [
        ("np-cpu", "node pool is now a companion"),
        ("np-cpu", "node pool is managed again"),
        ("np-other", "node pool no longer used"),
    ]
