"""Two agents on one node pool, scale-in, and a crash at every step of cordon → check → remove:
the real agents (kubernetes-asyncio, the CS SDK, the in-process decider) over HTTP against the
embedded ACK, on the simulated clock.

Agent A stops at one step — the step's call completes, then A never makes another (its calls
hang until its task is cancelled, and whatever its cancelled code still tries fails at once,
as after a killed process: nothing it would have written on the way out reaches the servers).
Agent B, decided the same way, works while A stands stuck (B's first decision waits for A's
stop), and a fresh agent starts once A is gone — a new pod (a new identity) or A's container
restarted (the same identity). In the end every node the decisions chose and could remove is
gone, the node a burst landed on is back in service — uncordoned, without our taint or
annotations — the node an operator cordoned stays cordoned, and no RemoveNodePoolNodes was
refused: no batch failed because of a missing node."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent.actuate.actuation import Actuator
from agent.actuate.pool_lock import LockSettings, PoolLock
from agent.app.loop import Agent
from agent.clients.cs import CloudCallError
from agent.clients.kube import KubeClient, KubeUnreachable
from agent.decide.deciders import LocalDecider
from agent.ingest.node_pods import TO_BE_DELETED_TAINT
from agent.scale_in.actuation import ScaleInActuator
from agent.scale_in.marks import MARK_ANNOTATIONS
from agent.sim.embedded import EmbeddedAck
from agent.sim.scenario import load_scenario
from agent.sim.world.ray import JobSpec
from functions.contract import SCALE_IN_SCHEMA
from tests.support.builders import build_test_pod
from tests.support.clocks import ManualClock
from tests.support.cluster import agent_config, pool_client, pool_nodes, running
from tests.support.interleave import Gated, Interleaver
from tests.support.waiting import until

SPEED = 100
POOL = "np-cpu"
NOW = "2026-11-29T05:00:00Z"
OWNER = [
    {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs", "controller": True}
]

# Where A stops: right after the nth call of one of these methods of its clients. In one
# removal A takes the Lease, cordons and checks each chosen node (the last one has just got a
# pod, so it is unmarked again: the 4th node edit), removes, notes the task on each removed
# node (in the simulator an empty node is gone as soon as the removal is accepted: the note is
# refused, 404), frees the Lease and records its Events.
STEPS = {
    "lease-taken": ({"create_lease", "replace_lease"}, 1),
    "first-cordon": ({"edit_node"}, 1),
    "first-check": ({"list_page"}, 1),
    "cordon-of-the-node-with-a-new-pod": ({"edit_node"}, 3),
    "check-that-found-the-pod": ({"list_page"}, 3),
    "removal-accepted": ({"remove_nodes"}, 1),
    "first-task-noted": ({"edit_node"}, 5),
    "first-event": ({"create_event"}, 1),
}


class Crash:
    """Stops an agent at one step: the `nth` call of one of `methods` is answered (or refused),
    then that agent makes no call any more."""

    def __init__(self, methods: set[str], nth: int) -> None:
        self.methods = methods
        self.nth = nth
        self.calls = 0
        self.dead = False
        self.hit = asyncio.Event()

    def wrap(self, inner: Any) -> Any:
        return _Crashing(inner, self)


class _Crashing:
    def __init__(self, inner: Any, crash: Crash) -> None:
        self._inner = inner
        self._crash = crash

    def _stopped(self) -> Exception:
        if isinstance(self._inner, KubeClient):
            return KubeUnreachable("the agent stopped", timed_out=False)
        return CloudCallError("NetworkError", None, "the agent stopped", retryable=True)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not inspect.iscoroutinefunction(attr):
            return attr
        crash = self._crash

        async def call(*args: Any, **kwargs: Any) -> Any:
            if crash.dead:
                raise self._stopped()
            try:
                return await attr(*args, **kwargs)
            finally:  # answered, or refused (a note on a node already gone: 404)
                if name in crash.methods:
                    crash.calls += 1
                    if crash.calls == crash.nth:
                        crash.dead = True
                        crash.hit.set()
                        await asyncio.get_running_loop().create_future()  # until cancelled

        return call


class Landing:
    """The in-process decider; when its first scale-in reply removes nodes, a pod is bound to
    the last of them before the agent acts (a burst arrived while it decided)."""

    def __init__(self, ack: EmbeddedAck) -> None:
        self._ack = ack
        self._inner = LocalDecider()
        self.landed_on: str | None = None

    async def decide(self, request: dict[str, Any]) -> dict[str, Any]:
        reply = await self._inner.decide(request)
        if request.get("schema") == SCALE_IN_SCHEMA and reply.get("remove") and not self.landed_on:
            self.landed_on = reply["pools"][0]["nodes"][-1]
            pod = build_test_pod("late-arrival", owners=OWNER, node=self.landed_on, cpu="500m")
            self._ack.cluster.store.create("pods", pod, namespace="default")
        return reply


class AfterCrash:
    """The in-process decider, answering only once A has stopped: B works while A is stuck."""

    def __init__(self, crash: Crash) -> None:
        self._crash = crash
        self._inner = LocalDecider()

    async def decide(self, request: dict[str, Any]) -> dict[str, Any]:
        await self._crash.hit.wait()
        return await self._inner.decide(request)


@contextlib.asynccontextmanager
async def agent(
    ack: EmbeddedAck, identity: str, decider: Any, crash: Crash | None = None
) -> AsyncIterator[Agent]:
    """An agent wired as production wires it (scale-out and scale-in under the pool Lease, the
    Lease holder identity `identity`); with `crash`, its scale-in and Lease calls can stop."""
    config = agent_config(
        ack, speed=SPEED, fallback_to_local=False, eci_enabled=False, pool_lock_identity=identity
    )
    kube = await KubeClient.connect(api_url=config.api_url)
    try:
        pools = pool_client(ack)
        writer, remover = (kube, pools) if crash is None else (crash.wrap(kube), crash.wrap(pools))
        lock = PoolLock(
            writer,
            LockSettings(namespace="kube-system", identity=identity),
            now=ack.cluster.clock.now,
        )
        yield Agent(
            config,
            kube=kube,
            pools=pools,
            decider=decider,
            actuator=Actuator(pools, kube, lock=lock),
            now=ack.cluster.clock.now,
            scale_in=ScaleInActuator(remover, writer, lock=lock),
        )
    finally:
        await kube.close()


@pytest.fixture
async def ack(no_proxies: None) -> AsyncIterator[EmbeddedAck]:
    """Four booted pool nodes, no job; the fourth runs a web pod and an operator cordoned it."""
    scenario = load_scenario("seed")
    pool = dataclasses.replace(scenario.pools[0], desired=4)
    scenario = dataclasses.replace(scenario, pools=(pool,), job=JobSpec())
    async with EmbeddedAck(scenario, speed=SPEED, faults=False) as embedded:
        yield embedded


def name_of(node: dict[str, Any]) -> str:
    return str(node["metadata"]["name"])


def ours(node: dict[str, Any]) -> bool:
    """Any of our marks on the node."""
    taints = [t.get("key") for t in node["spec"].get("taints") or ()]
    notes = node["metadata"].get("annotations") or {}
    return TO_BE_DELETED_TAINT in taints or bool(set(MARK_ANNOTATIONS) & set(notes))


def failed_rounds(agent: Agent) -> float:
    sample = agent.metrics.registry.get_sample_value(
        "ray_ack_scaler_scale_in_decisions_total", {"outcome": "failed"}
    )
    return sample or 0.0


@pytest.mark.parametrize("restart", ["new-pod", "same-pod"])
@pytest.mark.parametrize("step", list(STEPS))
async def test_a_crash_at_any_step_leaves_no_node_cordoned_and_fails_no_batch(ack, step, restart):
    store = ack.cluster.store
    operators = name_of(pool_nodes(ack, POOL)[-1])
    web = build_test_pod("web-1", owners=OWNER, node=operators, cpu="500m")
    store.create("pods", web, namespace="default")
    store.mutate("nodes", operators, lambda n: n["spec"].update(unschedulable=True))
    crash = Crash(*STEPS[step])
    landing = Landing(ack)
    again = "head-a" if restart == "same-pod" else "head-a-2"

    async with (
        agent(ack, "head-a", landing, crash) as first,
        agent(ack, "head-b", AfterCrash(crash)) as second,
    ):
        stop_first = asyncio.Event()
        first_run = asyncio.create_task(first.run(stop_first))
        try:
            async with running(second):
                await asyncio.wait_for(crash.hit.wait(), 20)
                await ack.cluster.clock.sleep(30)  # B's rounds while A stands stuck
                first_run.cancel()
                await asyncio.gather(first_run, return_exceptions=True)
                async with agent(ack, again, LocalDecider()) as fresh, running(fresh):

                    def settled() -> bool:
                        nodes = pool_nodes(ack, POOL)
                        return sorted(name_of(n) for n in nodes) == sorted(
                            [landing.landed_on, operators]
                        ) and not any(ours(n) for n in nodes)

                    await until(settled, timeout=30, what=f"the pool settled after {step}")
                    await ack.cluster.clock.sleep(60)  # more rounds of both: nothing flaps
                    assert settled()
        finally:
            first_run.cancel()
            await asyncio.gather(first_run, return_exceptions=True)

    by_name = {name_of(n): n for n in pool_nodes(ack, POOL)}
    assert not by_name[str(landing.landed_on)]["spec"].get("unschedulable")
    assert by_name[operators]["spec"]["unschedulable"], "an operator's cordon is never lifted"
    removals = [w for w in ack.cs_writes() if w.action == "RemoveNodePoolNodes"]
    assert removals and all(w.code is None for w in removals), [w.code for w in removals]
    assert ack.world.pools.describe_pool(POOL).desired == 2
    events, _ = store.list("events", namespace="default")
    assert not [e for e in events if e.get("reason") == "ScaleDownFailed"]
    assert failed_rounds(second) == failed_rounds(fresh) == 0
    pod = store.get("pods", "late-arrival", namespace="default")
    assert pod["status"]["phase"] == "Running" and not pod["metadata"].get("deletionTimestamp")


# --- no crash: both remove overlapping nodes at once -------------------------------------------


def decision(ack: EmbeddedAck, chosen: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A scale-in reply removing `chosen` (empty nodes), and the request it answers."""
    ids = [str(ack.world.pools.instance_id_of(n)) for n in chosen]
    reply = {
        "decisionId": "d-" + "-".join(chosen),
        "remove": [
            {"node": n, "poolId": POOL, "instanceId": i, "reason": "empty", "evicts": []}
            for n, i in zip(chosen, ids, strict=True)
        ],
        "pools": [{"poolId": POOL, "nodes": chosen, "instanceIds": ids}],
    }
    desired = ack.world.pools.describe_pool(POOL).desired
    return reply, {"pools": [{"id": POOL, "size": {"min": 0, "desired": desired}}], "nodes": []}


@contextlib.asynccontextmanager
async def gated_actuator(
    ack: EmbeddedAck, identity: str, gate: Interleaver
) -> AsyncIterator[ScaleInActuator]:
    """A scale-in actuator under the pool Lease whose Kubernetes, Lease and CS calls each wait
    for `identity`'s turn."""
    kube = await KubeClient.connect(api_url=ack.kubernetes_url)
    try:
        pools = pool_client(ack)
        writer, remover = Gated(kube, gate, identity), Gated(pools, gate, identity)
        settings = LockSettings(
            namespace="kube-system", identity=identity, attempts=200, retry_seconds=0.01
        )
        # Lease expiry on a clock that stands still: the race is about the order of calls (an
        # expired Lease is tests/agent/test_scale_in_lease_and_recovery.py's).
        lock = PoolLock(writer, settings, now=ManualClock(ack.cluster.clock.now()))  # type: ignore[arg-type]
        yield ScaleInActuator(remover, writer, lock=lock)  # type: ignore[arg-type]
    finally:
        await kube.close()


@pytest.mark.parametrize("seed", range(6))
async def test_two_agents_removing_overlapping_nodes_at_once_remove_each_once(ack, seed):
    """Both decided on the same snapshot — A removes three nodes, B two of them and the fourth —
    and apply at once, their Kubernetes, Lease and CS calls interleaved in a seeded order. Under
    the pool's Lease one marks and removes first; the other finds those nodes marked or gone from
    the pool and removes the rest. Each node goes in exactly one accepted RemoveNodePoolNodes and
    none is refused."""
    agents = ["head-a", "head-b"]
    gate = Interleaver(agents, rng=random.Random(seed))
    nodes = sorted(name_of(n) for n in pool_nodes(ack, POOL))
    instances = sorted(str(ack.world.pools.instance_id_of(n)) for n in nodes)
    decisions = [decision(ack, nodes[:3]), decision(ack, nodes[1:])]
    async with (
        gated_actuator(ack, agents[0], gate) as first,
        gated_actuator(ack, agents[1], gate) as second,
    ):

        async def apply(name: str, actuator: ScaleInActuator, reply: dict, request: dict) -> Any:
            try:
                return await actuator.apply(reply, request, dry_run=False, now=NOW)
            finally:
                gate.leave(name)

        applies = zip(agents, [first, second], decisions, strict=True)
        results = await asyncio.wait_for(
            asyncio.gather(*(apply(n, a, r, q) for n, a, (r, q) in applies)), 30
        )
    removals = [w for w in ack.cs_writes() if w.action == "RemoveNodePoolNodes"]
    assert removals and all(w.code is None for w in removals), [w.code for w in removals]
    assert sorted(i for w in removals for i in w.summary["instance_ids"]) == instances
    assert not any(r.failed for r in results)
    assert sorted(r.node for result in results for r in result.removed) == nodes
    assert pool_nodes(ack, POOL) == []
    assert {call for _agent, call in gate.calls} >= {"edit_node", "remove_nodes", "get_lease"}
