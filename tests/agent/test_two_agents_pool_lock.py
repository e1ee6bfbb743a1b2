"""Two agents (two Ray clusters' head pods) racing on one node pool through the real CS SDK and the
real Kubernetes client: with the per-pool Lease, desired never goes down during scale-out and never
exceeds what one agent seeing every pod would ask; a busy Lease defers the pool, an expired one is
taken over.

The races are deterministic: each agent's CS and Lease calls go out one at a time in an order a
seeded scheduler picks (tests.support.interleave), not in whatever order the event loop and the
machine's load happen to produce; Lease expiry is judged on an injected clock."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

from agent.actuate.pool_lock import LockSettings, PoolLock, lease_name
from agent.model import PendingPod
from tests.support.builders import pending_pod, pool_view
from tests.support.clocks import ManualClock
from tests.support.cloud.cloud_doubles import CloudWorld, cloud_world, decide_for
from tests.support.interleave import Gated, Interleaver

PODS = [pending_pod(f"u-{i:02d}") for i in range(18)]  # 1 vCPU each, 3 per ecs.g7.xlarge
ROUNDS = 12
AGENTS = ["head-a", "head-b"]


def locked_actuator(
    world: CloudWorld,
    identity: str,
    *,
    gate: Interleaver | None = None,
    now: Callable[[], float] = time.time,
    attempts: int = 100,
) -> object:
    """An agent holding the pool's Lease while it writes; with `gate`, its CS and Lease calls
    wait for their turn."""
    settings = LockSettings(
        namespace="kube-system", identity=identity, attempts=attempts, retry_seconds=0.01
    )
    leases, pools = world.kube, world.cs_client()
    if gate is not None:
        leases, pools = Gated(leases, gate, identity), Gated(pools, gate, identity)
    lock = PoolLock(leases, settings, now=now)  # type: ignore[arg-type]
    return world.actuator(pools=pools, lock=lock)


def unlocked_actuator(world: CloudWorld, identity: str, gate: Interleaver) -> object:
    """An agent without the Lease, its CS calls waiting for their turn."""
    return world.actuator(pools=Gated(world.cs_client(), gate, identity))


async def ask(world: CloudWorld, pods: list[PendingPod]) -> int:
    reply, _request = await decide_for(world, pods)
    return max((a["toDesired"] for a in reply["actions"] if a["kind"] == "scale-pool"), default=0)


async def race(
    world: CloudWorld, actuators: list, views: list[list[PendingPod]], gate: Interleaver
) -> None:
    """Both decide on the same pool state, then apply with their calls interleaved by `gate`."""
    decisions = [await decide_for(world, pods) for pods in views]
    gate.rearm()

    async def apply(agent: str, actuator: object, reply: dict, request: dict) -> None:
        try:
            await actuator.apply(reply, request, dry_run=False)  # type: ignore[attr-defined]
        finally:
            gate.leave(agent)

    applies = zip(AGENTS, actuators, decisions, strict=True)
    await asyncio.wait_for(asyncio.gather(*(apply(n, a, r, q) for n, a, (r, q) in applies)), 20)


async def racing_rounds(*, locked: bool) -> list[tuple[list[int], int]]:
    """Per round: the desired sizes written, in order, and what one agent seeing all pods asks."""
    rng = random.Random(7)
    gate = Interleaver(AGENTS, rng=random.Random(11))
    out = []
    async with cloud_world([pool_view("np-cpu", desired=0, max_size=40)]) as world:
        agents = [
            locked_actuator(world, name, gate=gate)
            if locked
            else unlocked_actuator(world, name, gate)
            for name in AGENTS
        ]
        for _ in range(ROUNDS):
            world.pools.set_desired("np-cpu", rng.randrange(0, 3))
            start, end = sorted(rng.sample(range(len(PODS) + 1), 2))
            overlap = rng.random() < 0.5
            view_a = PODS[:end]
            view_b = PODS[start:] if overlap else PODS[end:]
            alone = await ask(world, view_a + [p for p in view_b if p not in view_a])
            before = len(world.desired_writes())
            await race(world, agents, [view_a, view_b], gate)
            out.append((world.desired_writes()[before:], alone))
    return out


async def test_racing_agents_never_lower_desired_nor_exceed_one_agents_ask() -> None:
    """Seeded interleavings of two locked agents: desired only rises, never past one agent's ask."""
    for writes, alone in await racing_rounds(locked=True):
        assert writes == sorted(writes), f"desired lowered during scale-out: {writes}"
        assert max(writes, default=0) <= alone


async def test_without_the_lock_the_same_race_lowers_desired() -> None:
    """The same race with no Lease: a stale write lowers desired — what the lock exists to stop."""
    rounds = await racing_rounds(locked=False)
    assert any(writes != sorted(writes) for writes, _alone in rounds)


async def test_a_busy_lease_defers_the_pool_and_an_expired_one_is_taken_over() -> None:
    """An agent that died holding the Lease blocks the pool only until the Lease expires."""
    clock = ManualClock(1_000_000.0)
    async with cloud_world([pool_view("np-cpu", desired=1, max_size=20)]) as world:
        dead = PoolLock(
            world.kube, LockSettings(namespace="kube-system", identity="head-dead"), now=clock
        )
        assert (await dead.acquire("np-cpu")).acquired
        agent = locked_actuator(world, "head-b", now=clock, attempts=2)
        reply, request = await decide_for(world, PODS[:6])

        blocked = await agent.apply(reply, request, dry_run=False)  # type: ignore[attr-defined]
        assert [d.pool_id for d in blocked.pools_deferred] == ["np-cpu"]
        assert "head-dead" in blocked.pools_deferred[0].reason
        assert world.desired_writes() == []

        clock.advance(16)  # past the 15 s lease duration
        taken = await agent.apply(reply, request, dry_run=False)  # type: ignore[attr-defined]
        assert [w.to_desired for w in taken.pools_written] == [2]
        assert not taken.pools_deferred
        lease = world.sim.store.get("leases", lease_name("np-cpu"), namespace="kube-system")
        assert lease["spec"]["leaseTransitions"] == 1
        assert not lease["spec"].get("holderIdentity"), "released after the write"


async def test_two_agents_creating_the_lease_at_once_both_write_in_turn() -> None:
    """The first create wins (the other gets 409 and waits); both raises land, in order."""
    gate = Interleaver(AGENTS)  # strict alternation: both read "no Lease", then both create
    async with cloud_world([pool_view("np-cpu", desired=0, max_size=20)]) as world:
        a, b = (locked_actuator(world, name, gate=gate) for name in AGENTS)
        (ra, qa), (rb, qb) = await decide_for(world, PODS[:3]), await decide_for(world, PODS[:9])

        async def apply(agent: str, actuator: object, reply: dict, request: dict) -> object:
            try:
                result = actuator.apply(reply, request, dry_run=False)  # type: ignore[attr-defined]
                return await result
            finally:
                gate.leave(agent)

        results = await asyncio.wait_for(
            asyncio.gather(apply("head-a", a, ra, qa), apply("head-b", b, rb, qb)), 20
        )
        assert gate.calls[:4] == [
            ("head-a", "get_lease"),
            ("head-b", "get_lease"),
            ("head-a", "create_lease"),
            ("head-b", "create_lease"),
        ]
        assert not any(r.pools_deferred for r in results)
        writes = world.desired_writes()
        assert writes == sorted(writes) and writes[-1] == 3
