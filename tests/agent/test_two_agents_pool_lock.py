"""Two agents (two Ray clusters' head pods) racing on one node pool through the real CS SDK and the
real Kubernetes client: with the per-pool Lease, desired never goes down during scale-out and never
exceeds what one agent seeing every pod would ask; a busy Lease defers the pool, an expired one is
taken over."""

from __future__ import annotations

import asyncio
import random

import pytest
from cloud_doubles import CloudWorld, cloud_world, decide_for, no_proxies, pending_pod, pool_view

from agent.actuate.pool_lock import LockSettings, PoolLock, lease_name
from agent.model import PendingPod
from agent.sim.faults import FaultPlan

pytestmark = pytest.mark.usefixtures("no_proxies")
__all__ = ["no_proxies"]

PODS = [pending_pod(f"u-{i:02d}") for i in range(18)]  # 1 vCPU each, 3 per ecs.g7.xlarge
ROUNDS = 12
LATENCY = 0.02  # per CS call: both agents read before either writes unless something orders them


def locked_actuator(
    world: CloudWorld, identity: str, *, now: object = None, attempts: int = 100
) -> object:
    settings = LockSettings(
        namespace="kube-system", identity=identity, attempts=attempts, retry_seconds=0.01
    )
    lock = (
        PoolLock(world.kube, settings) if now is None else PoolLock(world.kube, settings, now=now)
    )  # type: ignore[arg-type]
    return world.actuator(lock=lock)


async def ask(world: CloudWorld, pods: list[PendingPod]) -> int:
    reply, _request = await decide_for(world, pods)
    return max((a["toDesired"] for a in reply["actions"] if a["kind"] == "scale-pool"), default=0)


async def race(
    world: CloudWorld, actuators: list, views: list[list[PendingPod]], rng: random.Random
) -> None:
    """Both decide on the same pool state, then apply with random head starts."""
    decisions = [await decide_for(world, pods) for pods in views]

    async def apply(actuator: object, reply: dict, request: dict) -> None:
        await asyncio.sleep(rng.uniform(0, LATENCY))
        await actuator.apply(reply, request, dry_run=False)  # type: ignore[attr-defined]

    await asyncio.wait_for(
        asyncio.gather(*(apply(a, r, q) for a, (r, q) in zip(actuators, decisions, strict=True))),
        20,
    )


async def racing_rounds(*, locked: bool) -> list[tuple[list[int], int]]:
    """Per round: the desired sizes written, in order, and what one agent seeing all pods asks."""
    rng = random.Random(7)
    out = []
    async with cloud_world(
        [pool_view("np-cpu", desired=0, max_size=40)], faults=FaultPlan(cs_latency_seconds=LATENCY)
    ) as world:
        agents = (
            [locked_actuator(world, "head-a"), locked_actuator(world, "head-b")]
            if locked
            else [world.actuator(), world.actuator()]
        )
        for _ in range(ROUNDS):
            world.pools.set_desired("np-cpu", rng.randrange(0, 3))
            start, end = sorted(rng.sample(range(len(PODS) + 1), 2))
            overlap = rng.random() < 0.5
            view_a = PODS[:end]
            view_b = PODS[start:] if overlap else PODS[end:]
            alone = await ask(world, view_a + [p for p in view_b if p not in view_a])
            before = len(world.desired_writes())
            await race(world, agents, [view_a, view_b], rng)
            out.append((world.desired_writes()[before:], alone))
    return out


async def test_racing_agents_never_lower_desired_nor_exceed_one_agents_ask() -> None:
    """Overlapping and disjoint pod sets, random head starts: every written desired rises and stays
    within what one agent seeing every pod would ask."""
    for writes, alone in await racing_rounds(locked=True):
        assert writes == sorted(writes), f"desired lowered during scale-out: {writes}"
        assert max(writes, default=0) <= alone


async def test_without_the_lock_the_same_race_lowers_desired() -> None:
    """The same race with no Lease: a stale write lowers desired — what the lock exists to stop."""
    rounds = await racing_rounds(locked=False)
    assert any(writes != sorted(writes) for writes, _alone in rounds)


async def test_a_busy_lease_defers_the_pool_and_an_expired_one_is_taken_over() -> None:
    """An agent that died holding the Lease blocks the pool only until the Lease expires."""
    clock = [1_000_000.0]
    async with cloud_world([pool_view("np-cpu", desired=1, max_size=20)]) as world:
        dead = PoolLock(
            world.kube,
            LockSettings(namespace="kube-system", identity="head-dead"),
            now=lambda: clock[0],
        )
        assert (await dead.acquire("np-cpu")).acquired
        agent = locked_actuator(world, "head-b", now=lambda: clock[0], attempts=2)
        reply, request = await decide_for(world, PODS[:6])

        blocked = await agent.apply(reply, request, dry_run=False)  # type: ignore[attr-defined]
        assert [d.pool_id for d in blocked.pools_deferred] == ["np-cpu"]
        assert "head-dead" in blocked.pools_deferred[0].reason
        assert world.desired_writes() == []

        clock[0] += 16  # past the 15 s lease duration
        taken = await agent.apply(reply, request, dry_run=False)  # type: ignore[attr-defined]
        assert [w.to_desired for w in taken.pools_written] == [2]
        assert not taken.pools_deferred
        lease = world.sim.store.get("leases", lease_name("np-cpu"), namespace="kube-system")
        assert lease["spec"]["leaseTransitions"] == 1
        assert not lease["spec"].get("holderIdentity"), "released after the write"


async def test_two_agents_creating_the_lease_at_once_both_write_in_turn() -> None:
    """The first create wins (the other gets 409 and waits); both raises land, in order."""
    async with cloud_world([pool_view("np-cpu", desired=0, max_size=20)]) as world:
        a, b = locked_actuator(world, "head-a"), locked_actuator(world, "head-b")
        (ra, qa), (rb, qb) = await decide_for(world, PODS[:3]), await decide_for(world, PODS[:9])
        results = await asyncio.wait_for(
            asyncio.gather(a.apply(ra, qa, dry_run=False), b.apply(rb, qb, dry_run=False)), 20
        )  # type: ignore[attr-defined]
        assert not any(r.pools_deferred for r in results)
        writes = world.desired_writes()
        assert writes == sorted(writes) and writes[-1] == 3
