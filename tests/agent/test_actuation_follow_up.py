"""A round cut short by `policy.maxNewNodesPerDecision`, by ECI's capacity or by skipped ECI
placements continues in a quick follow-up round, not at the 30 s resync; pods already placed on
ECI and not yet bound count as ECI's in the next round. The agent runs over real HTTP against the
simulator and the CS emulator."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from agent.actuate.actuation import (
    PLACED_LABEL,
    Actuator,
    ApplyResult,
    PodOutcome,
    PoolSkip,
    PoolWrite,
    follow_up_reason,
)
from agent.actuate.event_sink import EventSink
from agent.app.loop import Agent, placed_on_eci
from agent.decide.deciders import LocalDecider
from agent.model import Snapshot
from agent.sim.cloud.cs_api import scale_requests_of
from tests.support.agent_world import World, config_for
from tests.support.builders import pending_pod
from tests.support.cluster import running
from tests.support.waiting import until

CAPPED = PodOutcome("u1", "ray", "w1", "no capacity left: maxNewNodesPerDecision 1 reached")
WROTE = (PoolWrite("np-cpu", 0, 1, 10),)


async def test_a_capped_burst_is_served_by_follow_up_rounds_before_the_resync(world: World) -> None:
    """Nine 1-vCPU workers need three nodes; one node per decision takes three quick rounds."""
    agent = world.agent(config_for(world, max_new_nodes_per_decision=1, resync_seconds=300.0))
    async with running(agent):
        await asyncio.wait_for(asyncio.gather(*(w.synced.wait() for w in agent.watchers)), 10)
        world.add_workers(9)
        await until(
            lambda: (
                [w.summary.get("desired_size") for w in scale_requests_of(world.cs_app)]
                == [1, 2, 3]
            ),
            timeout=20,
        )


def test_follow_up_only_when_the_round_made_progress_or_was_deferred() -> None:
    """A capped round that wrote follows up; one that wrote nothing (or a dry run) does not."""
    assert follow_up_reason(ApplyResult("d", False, pools_written=WROTE, unplaceable=(CAPPED,)))
    assert not follow_up_reason(ApplyResult("d", False, unplaceable=(CAPPED,)))
    assert not follow_up_reason(ApplyResult("d", True, pools_written=WROTE, unplaceable=(CAPPED,)))
    deferred = ApplyResult("d", False, pools_deferred=(PoolSkip("np-cpu", "pool lock held by b"),))
    assert follow_up_reason(deferred) == "pool write deferred: pool lock held by b"
    at_max = PodOutcome("u1", "ray", "w1", "no capacity left: pool np-cpu at max size 10")
    assert not follow_up_reason(ApplyResult("d", False, pools_written=WROTE, unplaceable=(at_max,)))


def test_eci_capacity_or_skipped_placements_follow_up_when_the_round_wrote() -> None:
    """The burst's first round: pools raised, ECI's slots given to pods whose patches were then
    skipped (bound elsewhere meanwhile) — the next round comes at once, not at the resync."""
    eci_full = PodOutcome("u2", "ray", "w2", "no capacity left: ECI at maxPods, cluster node quota")
    skipped = PodOutcome("u3", "ray", "w3", "422 Invalid; bound to n-1 meanwhile")
    assert follow_up_reason(
        ApplyResult("d", False, pools_written=WROTE, unplaceable=(eci_full,))
    ) == ("ECI at maxPods")
    assert "1 ECI placement(s) skipped" in follow_up_reason(
        ApplyResult("d", False, pools_written=WROTE, eci_skipped=(skipped,))
    )
    assert not follow_up_reason(ApplyResult("d", False, eci_skipped=(skipped,)))
    assert not follow_up_reason(ApplyResult("d", False, unplaceable=(eci_full,)))


def test_pods_placed_on_eci_and_not_yet_bound_count_as_ecis_and_are_not_decided_again() -> None:
    """A pending pod with the agent's placed=eci label is ECI's: left out, counted in ECI."""
    placed = replace(pending_pod("p"), labels={PLACED_LABEL: "eci"})
    waiting = pending_pod("w")
    snapshot = placed_on_eci(Snapshot(pending=(placed, waiting), nodes=(), eci_running_pods=7))
    assert [p.uid for p in snapshot.pending] == ["w"]
    assert snapshot.eci_running_pods == 8
    untouched = Snapshot(pending=(waiting,), nodes=(), eci_running_pods=7)
    assert placed_on_eci(untouched) is untouched


async def test_stopping_the_agent_stops_its_event_sink(world: World) -> None:
    """Agent.run ends with its actuator's Events flushed within the sink's limit, the rest dropped
    and counted: nothing left queued, no write left running after the agent."""
    config = config_for(world)
    pools = world.pool_client(config)
    # one write at once, the next ~17 minutes later; stop() flushes for 0.2 s
    sink = EventSink(world.kube, qps=0.001, burst=1, stop_seconds=0.2)
    agent = Agent(
        config,
        kube=world.kube,
        pools=pools,
        decider=LocalDecider(),
        actuator=Actuator(pools, world.kube, events=sink),
        now=world.cluster.clock.now,
    )
    async with running(agent):
        for i in range(3):
            sink.record(
                {"uid": f"u{i}", "namespace": "ray", "name": f"w{i}"},
                reason="R",
                message="m",
                now="t",
            )
    assert (sink.counters["created"], sink.counters["dropped"], sink.queued) == (1, 2, 0)
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "event-sink" and not t.done()]
