"""Two agents (two Ray clusters' head pods) on the same node pools, through the real CS SDK against
the CS emulator: they converge on one absolute desired size and never ask for more than a single
agent seeing every pod would."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from agent.model import PendingPod
from tests.support.builders import pending_pod, pool_view
from tests.support.cloud.cloud_doubles import CloudWorld, cloud_world, decide_for

ALL = [pending_pod(f"u-{i:02d}") for i in range(10)]  # 1 vCPU each, 3 per ecs.g7.xlarge
AGENT_A = ALL[:6]
AGENT_B = ALL[3:]  # overlaps A on u-03..u-05


async def solo_ask(world: CloudWorld, pods: list[PendingPod]) -> int:
    reply, _request = await decide_for(world, pods)
    return max(a["toDesired"] for a in reply["actions"] if a["kind"] == "scale-pool")


async def round_of(world: CloudWorld, actuators: list, views: list[list[PendingPod]]) -> list:
    """Each agent decides on its own snapshot, then all apply at the same moment."""
    decisions = [await decide_for(world, pods) for pods in views]
    return await asyncio.gather(
        *(
            a.apply(reply, request, dry_run=False)
            for a, (reply, request) in zip(actuators, decisions, strict=True)
        )
    )


@pytest.mark.parametrize("order", ["a-first", "b-first"])
async def test_concurrent_agents_converge_without_double_scaling(order: str) -> None:
    """Both raise at once; the pool ends at the larger ask, within what one agent alone would ask."""
    async with cloud_world([pool_view("np-cpu", desired=0, max_size=20)]) as world:
        alone = await solo_ask(world, ALL)
        ask_a, ask_b = await solo_ask(world, AGENT_A), await solo_ask(world, AGENT_B)
        agents = [world.actuator(), world.actuator()]
        views = [AGENT_A, AGENT_B] if order == "a-first" else [AGENT_B, AGENT_A]

        await round_of(world, agents, views)
        second = await round_of(world, agents, views)

        final = world.pools.describe_pool("np-cpu").desired
        assert final == max(ask_a, ask_b)
        assert max(world.desired_writes()) <= alone
        assert not any(r.pools_written for r in second), (
            "converged: the second round writes nothing"
        )


async def test_sequential_agents_never_sum_their_asks() -> None:
    """B deciding after A's raise counts A's upcoming nodes and writes nothing beyond absolute sizes."""
    async with cloud_world([pool_view("np-cpu", desired=0, max_size=20)]) as world:
        alone = await solo_ask(world, ALL)
        a, b = world.actuator(), world.actuator()
        for actuator, pods in [(a, AGENT_A), (b, AGENT_B), (a, AGENT_A), (b, AGENT_B)]:
            reply, request = await decide_for(world, pods)
            await actuator.apply(reply, request, dry_run=False)
        writes = world.desired_writes()
        assert writes == sorted(writes), "desired only ever rises"
        assert world.pools.describe_pool("np-cpu").desired <= alone


async def test_every_interleaving_of_stale_decisions_converges() -> None:
    """Decisions made on the same stale pool state, applied in any order, end at the largest ask."""
    async with cloud_world([pool_view("np-cpu", desired=1, max_size=20)]) as world:
        decisions = [await decide_for(world, pods) for pods in (AGENT_A, AGENT_B, ALL[:2], ALL)]
        asks = [
            max((x["toDesired"] for x in r["actions"] if x["kind"] == "scale-pool"), default=1)
            for r, _ in decisions
        ]
        for permutation in itertools.islice(itertools.permutations(range(len(decisions))), 8):
            world.pools.set_desired("np-cpu", 1)
            for index in permutation:
                reply, request = decisions[index]
                await world.actuator().apply(reply, request, dry_run=False)
            assert world.pools.describe_pool("np-cpu").desired == max(asks)
