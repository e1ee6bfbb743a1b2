"""The agentless reconcile function, hosted by the FC emulator and invoked as its triggers invoke
it, against the simulator over real HTTP: it reaches the API server with a kubeconfig from
DescribeClusterUserKubeconfig (signed with the STS token FC gives the function), raises the pool
for a worker's FailedScheduling event, wakes for nothing else, gives back an empty node on its
Timer with the unneeded time kept on the node, two invocations at once raise a pool once, a
pod the scheduler binds between the round's LISTs is not a pending pod to raise a pool for,
and an event a round already covers costs one read of that round's mark, not a round."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from agent.agentless.kubeconfig_cache import KubeconfigCache
from agent.agentless.reconcile import Reconciler, reconcile_round
from agent.agentless.round_marks import EVENT_MARGIN_SECONDS, ROUNDS_LEASE, LastRound
from agent.agentless.unneeded_marks import EMPTY_SINCE
from agent.clients.kube import KubeClient
from agent.sim.cloud.credentials import static_test_keys
from agent.sim.cloud.cs_api import scale_requests_of, writes_of
from agent.sim.cloud.eventbridge import cloud_event
from agent.sim.cloud.fc_api import build_fc_app, invocations_of, invoke_from_trigger
from agent.sim.cloud.fc_timer import timer_event
from agent.sim.world.nodepools import POOL_LABEL
from tests.support.agent_world import CLUSTER_ID, REGION, World, config_for, open_world
from tests.support.builders import build_test_pod
from tests.support.waiting import until

ENV_PREFIX = "RAY_ACK_SCALER_"


@dataclass
class Hosted:
    """The world, and the reconcile function deployed on an FC emulator over it."""

    world: World
    reconciler: Reconciler
    fc_app: web.Application
    heard: list[tuple[str, str]]

    async def invoke(self, event: bytes, *, kind: Any = "eventbridge") -> dict[str, Any]:
        outcome = await invoke_from_trigger(self.fc_app, event, kind=kind)
        assert outcome.error_type is None, outcome.body.decode()
        reply: dict[str, Any] = json.loads(outcome.body)
        return reply


def function_environment(world: World, **settings: str) -> dict[str, str]:
    """The function's environment variables, as template.yml sets them."""
    env = {
        "CLUSTER_ID": CLUSTER_ID,
        "REGION": REGION,
        "CS_ENDPOINT": f"http://{world.cs_endpoint}",
        "MANAGED_POOLS": "np-cpu:0:10",
        "PRICES": "ecs.g7.xlarge=1.0",
        "ECI_ENABLED": "false",
        "NAMESPACE": "ray",
        "POOL_LOCK_NAMESPACE": "default",
        **settings,
    }
    return {ENV_PREFIX + key: value for key, value in env.items()}


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with open_world() as opened:
        yield opened


@contextlib.asynccontextmanager
async def host(world: World, reconciler: Reconciler) -> AsyncIterator[Hosted]:
    """The reconcile function deployed on an FC emulator sharing the CS emulator's keys."""
    app = build_fc_app(
        reconciler.handle,
        keys=world.keys or static_test_keys(),
        service="ray-ack-scaler",
        function="reconcile",
        now=world.cluster.clock.now,
    )
    runner = web.AppRunner(app)
    await runner.setup()  # the app's startup/shutdown hooks; the triggers need no port
    heard: list[tuple[str, str]] = []
    world.cluster.request_listeners.append(lambda method, path: heard.append((method, path)))
    try:
        yield Hosted(world, reconciler, app, heard)
    finally:
        await runner.cleanup()


@pytest.fixture
async def hosted(world: World) -> AsyncIterator[Hosted]:
    reconciler = Reconciler(environ=function_environment(world), now=world.cluster.clock.now)
    async with host(world, reconciler) as opened:
        yield opened


async def unschedulable_workers(world: World, count: int) -> list[dict[str, Any]]:
    """`count` KubeRay-named workers, once the scheduler recorded FailedScheduling for each: the
    Events it wrote."""
    world.add_workers(count, prefix="rc-g-worker-")

    def failed() -> list[dict[str, Any]]:
        items, _ = world.cluster.store.list("events", namespace="ray")
        return [e for e in items if e.get("reason") == "FailedScheduling"]

    await until(lambda: len(failed()) == count, what="a FailedScheduling Event per worker")
    return failed()


def as_cloud_event(event: dict[str, Any], *, at: float = 0.0) -> bytes:
    """`event` as EventBridge delivers it, occurred at `at` (CloudEvents `time`)."""
    return json.dumps(
        cloud_event(event, region=REGION, account_id="1", cluster_id=CLUSTER_ID, at=at)
    ).encode()


def unschedulable_worker(world: World, name: str, *, cpu: str) -> dict[str, Any]:
    """A Ray worker of another scheduler (so the simulated one never binds it), Pending and
    Unschedulable as the scheduler's last attempt would have left it."""
    return build_test_pod(
        name,
        namespace="ray",
        labels={"ray.io/node-type": "worker", "ray.io/cluster": "rc", "ray.io/group": "g"},
        container="ray-worker",
        image=None,
        cpu=cpu,
        memory="1Gi",
        schedulerName="not-the-default",
        status={
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/2 nodes are available: 2 Insufficient cpu.",
                    "lastTransitionTime": world.cluster.clock.iso(),
                }
            ],
        },
    )


async def test_a_worker_that_failed_scheduling_raises_the_pool(hosted: Hosted) -> None:
    """An EventBridge event for one worker's FailedScheduling: the function gets a kubeconfig
    from CS, lists the cluster and raises np-cpu for all six pending workers."""
    events = await unschedulable_workers(hosted.world, 6)
    reply = await hosted.invoke(as_cloud_event(events[0]))
    assert reply["trigger"] == "eventbridge" and reply["ran"], reply
    assert reply["scaleOut"]["outcome"] == "scaled"
    assert [w.summary.get("desired_size") for w in scale_requests_of(hosted.world.cs_app)] == [2]
    assert reply["scaleIn"] is None  # events scale out only; the Timer scales in
    assert hosted.reconciler.kubeconfigs.fetches == 1


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda e: e.update(reason="Scheduled"), id="another-reason"),
        pytest.param(lambda e: e["involvedObject"].update(namespace="web"), id="another-namespace"),
        pytest.param(lambda e: e["involvedObject"].update(name="web-7d9f-x2"), id="not-a-worker"),
    ],
)
async def test_an_event_about_anything_else_calls_no_api(
    hosted: Hosted, change: Callable[[dict[str, Any]], None]
) -> None:
    """An event the rule let through that is not a Ray worker's FailedScheduling returns at once:
    no kubeconfig asked for, no request to the API server, no pool write."""
    (event,) = await unschedulable_workers(hosted.world, 1)
    change(event)
    heard_before = len(hosted.heard)
    reply = await hosted.invoke(as_cloud_event(event))
    assert reply["ran"] is False and reply["reason"], reply
    assert hosted.reconciler.kubeconfigs.fetches == 0
    assert hosted.heard[heard_before:] == []
    assert writes_of(hosted.world.cs_app) == []


async def test_the_timer_gives_back_a_node_unneeded_across_ticks(world: World) -> None:
    """Tick 1 finds np-cpu's node empty and notes since when on the node (nothing removed: the
    function remembers nothing itself); tick 2, a minute of simulated time later, reads that
    back and removes the node — unneeded 60 s, the cool-down counted from the node's creation."""
    reconciler = Reconciler(
        environ=function_environment(world, SCALE_DOWN_DELAY_AFTER_ADD_SECONDS="30"),
        now=world.cluster.clock.now,
    )
    async with host(world, reconciler) as hosted:
        await world.pools.set_desired("np-cpu", 1)
        store, clock = world.cluster.store, world.cluster.clock

        def pool_nodes() -> list[dict[str, Any]]:
            items, _ = store.list("nodes")
            return [n for n in items if n["metadata"]["labels"].get(POOL_LABEL) == "np-cpu"]

        await until(lambda: len(pool_nodes()) == 1, what="np-cpu's node")
        (node,) = pool_nodes()
        first = await hosted.invoke(
            timer_event(trigger_name="t", at=clock.now(), payload=""), kind="timer"
        )
        assert first["trigger"] == "timer" and first["scaleIn"]["removed"] == []
        (node,) = pool_nodes()
        assert EMPTY_SINCE in node["metadata"].get("annotations", {})
        later = clock.now() + 65
        await until(lambda: clock.now() > later, what="65 simulated seconds")
        second = await hosted.invoke(
            timer_event(trigger_name="t", at=clock.now(), payload=""), kind="timer"
        )
        assert second["scaleIn"]["removed"] == [node["metadata"]["name"]], second
        removals = [w for w in writes_of(world.cs_app) if w.action == "RemoveNodePoolNodes"]
        assert len(removals) == 1


async def test_two_invocations_at_once_raise_the_pool_once(world: World) -> None:
    """Two rounds at once (two Timer ticks: a tick always runs a round) both plan np-cpu 0 → 2:
    one writes it under the pool's Lease, the other re-reads the pool under the Lease after it
    and writes nothing."""
    # The wall clock, as on FC: the Lease's 15 s are real seconds. (On the world's clock, 100×
    # faster, each slowed CS call below would last 60 s and outlive the Lease.)
    reconciler = Reconciler(environ=function_environment(world), now=time.time)
    async with host(world, reconciler) as hosted:
        await unschedulable_workers(world, 6)
        # Slow CS calls keep the first raise in flight while the second invocation decides.
        world.cs_faults.cs_latency_seconds = 0.6
        tick = timer_event(trigger_name="t", at=time.time(), payload="")
        replies = await asyncio.gather(
            hosted.invoke(tick, kind="timer"), hosted.invoke(tick, kind="timer")
        )
        assert all(r["ran"] for r in replies), replies
        assert [w.summary.get("desired_size") for w in scale_requests_of(world.cs_app)] == [2]
        written = [w for r in replies for w in r["scaleOut"]["applied"]["poolsWritten"]]
        assert [(w["from"], w["to"]) for w in written] == [(0, 2)]
        # the other planned the same raise, and took the Lease after the write (or gave up)
        (other,) = [
            r["scaleOut"]["applied"]
            for r in replies
            if not r["scaleOut"]["applied"]["poolsWritten"]
        ]
        assert [s["poolId"] for s in other["poolsSkipped"] + other["poolsDeferred"]] == ["np-cpu"]
        assert len(invocations_of(hosted.fc_app)) == 2


async def test_the_kubeconfig_is_reused_until_it_nears_expiry(world: World) -> None:
    """A warm instance asks CS for a kubeconfig once, and again only within the margin before the
    expiration CS stated (an hour asked, five minutes' margin)."""
    wall = [time.time()]  # CS states the expiration on the wall clock
    cache = KubeconfigCache(wall_clock=lambda: wall[0])
    reconciler = Reconciler(
        environ=function_environment(world), now=world.cluster.clock.now, kubeconfigs=cache
    )
    async with host(world, reconciler) as hosted:
        tick = timer_event(trigger_name="t", at=world.cluster.clock.now(), payload="")
        await hosted.invoke(tick, kind="timer")
        await hosted.invoke(tick, kind="timer")
        assert cache.fetches == 1
        wall[0] += 3600 - 299  # inside the 5-minute margin before the hour ends
        await hosted.invoke(tick, kind="timer")
        assert cache.fetches == 2


async def test_a_pending_worker_that_fits_a_ready_node_is_left_to_the_scheduler(
    hosted: Hosted,
) -> None:
    """A worker still marked Unschedulable from before np-cpu's node turned Ready (the scheduler
    has not retried it yet) fits that node: the round leaves it to the scheduler and the pool
    stays at 1."""
    world = hosted.world
    await world.pools.set_desired("np-cpu", 1)

    def ready_pool_nodes() -> int:
        items, _ = world.cluster.store.list("nodes")
        return sum(
            1
            for n in items
            if n["metadata"]["labels"].get(POOL_LABEL) == "np-cpu"
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in n.get("status", {}).get("conditions", ())
            )
        )

    await until(lambda: ready_pool_nodes() == 1, what="np-cpu's node Ready")
    # Another scheduler's pod, so the simulated one never binds it: it stays as the scheduler's
    # last attempt left it, Unschedulable.
    stale = unschedulable_worker(world, "rc-g-worker-stale", cpu="1")
    world.cluster.store.create("pods", stale, namespace="ray")
    event = {
        "metadata": {"name": "rc-g-worker-stale.1", "namespace": "ray"},
        "involvedObject": {"kind": "Pod", "namespace": "ray", "name": "rc-g-worker-stale"},
        "reason": "FailedScheduling",
        "count": 1,
    }
    reply = await hosted.invoke(as_cloud_event(event))
    assert [w.summary.get("desired_size") for w in scale_requests_of(world.cs_app)] == [1]
    assert reply["scaleOut"]["outcome"] != "scaled", reply
    assert reply["pendingThatFitRunningNodes"] == 1


class BindsBetweenLists:
    """The agent's Kubernetes client, with the scheduler binding a pod right after the unbound
    pods' LIST is answered and before any other LIST is sent: the moment a round's separate
    reads straddle a bind. Everything else goes to the client as it is."""

    def __init__(self, kube: KubeClient, bind: Callable[[], Awaitable[None]]) -> None:
        self._kube = kube
        self._bind = bind
        self._bound = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kube, name)

    async def list_page(self, resource: str, **selectors: Any) -> dict[str, Any]:
        if resource == "pods" and selectors.get("field_selector") == "spec.nodeName=":
            page = await self._kube.list_page(resource, **selectors)
            if not self._bound.is_set():
                await self._bind()
                self._bound.set()
            return page
        await self._bound.wait()
        return await self._kube.list_page(resource, **selectors)


async def test_a_worker_bound_between_the_lists_raises_no_pool(world: World) -> None:
    """np-cpu is at its desired size, its node Ready. A 3-vCPU worker is Unschedulable in the
    unbound pods' LIST; the scheduler binds it to that node before the bound pods and nodes are
    listed. The round must not count it twice — waiting for a node and filling one — so it raises
    nothing: np-cpu stays at 1."""
    await world.pools.set_desired("np-cpu", 1)

    def ready_pool_node() -> str | None:
        items, _ = world.cluster.store.list("nodes")
        for n in items:
            if n["metadata"]["labels"].get(POOL_LABEL) == "np-cpu" and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in n.get("status", {}).get("conditions", ())
            ):
                return str(n["metadata"]["name"])
        return None

    await until(lambda: ready_pool_node() is not None, what="np-cpu's node Ready")
    node = ready_pool_node()
    # Another scheduler's pod, so that the simulated one leaves its binding to this test.
    worker = unschedulable_worker(world, "rc-g-worker-late", cpu="3")
    world.cluster.store.create("pods", worker, namespace="ray")

    async def bind() -> None:
        """pods/binding over the API, as kube-scheduler binds."""
        path = "/api/v1/namespaces/ray/pods/rc-g-worker-late/binding"
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": "rc-g-worker-late", "namespace": "ray"},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        async with (
            aiohttp.ClientSession() as session,
            session.post(world.cluster.url + path, json=body) as response,
        ):
            assert response.status == 201, await response.text()

    config = config_for(
        world, namespace="ray", pool_lock_namespace="default", scale_in_enabled=False
    )
    agent = replace(world, kube=BindsBetweenLists(world.kube, bind)).agent(config)
    reply = await reconcile_round(agent, scale_in=False)

    bound = world.cluster.store.get("pods", "rc-g-worker-late", namespace="ray")
    assert bound["spec"]["nodeName"] == node  # the bind did fall between the LISTs
    assert [w.summary.get("desired_size") for w in scale_requests_of(world.cs_app)] == [1]
    assert reply["scaleOut"]["pendingPods"] == 0, reply
    assert reply["scaleOut"]["outcome"] == "idle", reply


class RecordsLists:
    """The agent's Kubernetes client, noting when each LIST starts and ends."""

    def __init__(self, kube: KubeClient) -> None:
        self._kube = kube
        self.steps: list[tuple[str, str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kube, name)

    async def list_page(self, resource: str, **selectors: Any) -> dict[str, Any]:
        what = f"{resource}?{selectors.get('field_selector') or ''}"
        self.steps.append(("start", what))
        page = await self._kube.list_page(resource, **selectors)
        self.steps.append(("end", what))
        return page


async def test_the_unbound_pods_are_listed_before_the_bound_pods_and_nodes(world: World) -> None:
    """The round's LISTs are no snapshot; listing the unbound pods first means a pod bound while
    the round reads is in the bound LIST (and so bound, not pending), never in neither."""
    world.add_workers(2, prefix="rc-g-worker-")
    kube = RecordsLists(world.kube)
    config = config_for(
        world, namespace="ray", pool_lock_namespace="default", scale_in_enabled=False
    )
    await reconcile_round(replace(world, kube=kube).agent(config), scale_in=False)
    unbound = "pods?spec.nodeName="
    assert kube.steps[:2] == [("start", unbound), ("end", unbound)], kube.steps
    others = {what for _, what in kube.steps[2:]}
    assert {"pods?spec.nodeName!=", "nodes?"} <= others, kube.steps


class HeldRound(Reconciler):
    """A Reconciler whose rounds wait, once their start is marked, until the test lets them go."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail = False

    async def _round(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.entered.set()
        await asyncio.to_thread(self.release.wait)
        if self.fail:
            raise RuntimeError("the API server went away mid-round")
        return await super()._round(*args, **kwargs)


def lease_reads(heard: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(m, p) for m, p in heard if p.endswith(f"/leases/{ROUNDS_LEASE}")]


async def test_a_storm_during_one_round_costs_one_round_and_a_read_per_event(world: World) -> None:
    """Twelve FailedScheduling events that occurred before a running round started: each reads
    the round's mark (one GET of its Lease, nothing else) and returns 'covered'; the one round
    raises the pool for all six workers."""
    reconciler = HeldRound(environ=function_environment(world), now=world.cluster.clock.now)
    async with host(world, reconciler) as hosted:
        events = await unschedulable_workers(world, 6)
        occurred = world.cluster.clock.now() - 5
        first = asyncio.create_task(hosted.invoke(as_cloud_event(events[0], at=occurred)))
        await until(reconciler.entered.is_set, what="the first round under way")
        heard_before = len(hosted.heard)
        storm = [as_cloud_event(events[i % 6], at=occurred) for i in range(12)]
        replies = await asyncio.gather(*(hosted.invoke(e) for e in storm))
        during = hosted.heard[heard_before:]
        reconciler.release.set()
        round_reply = await first
        assert all(
            r["ran"] is False and r["reason"].startswith("covered by the round started at")
            for r in replies
        ), replies
        assert during == [("GET", p) for _, p in lease_reads(during)] and len(during) == 12
        assert round_reply["ran"] and round_reply["scaleOut"]["outcome"] == "scaled"
        assert {r["coveredBy"] for r in replies} == {
            f"reconcile-{invocations_of(hosted.fc_app)[-1].request_id}"
        }
        assert reconciler.outcomes == {"rounds": 1, "covered": 12, "turnedAway": 0}
        assert [w.summary.get("desired_size") for w in scale_requests_of(world.cs_app)] == [2]


async def test_an_event_after_the_last_round_started_runs_a_round(hosted: Hosted) -> None:
    """After a round: an event that occurred before it started is covered, one that occurred
    after it started runs a round of its own (which finds the pool raised), and a Timer tick
    always runs one."""
    world, clock = hosted.world, hosted.world.cluster.clock
    events = await unschedulable_workers(world, 6)
    before = clock.now() - 5
    first = await hosted.invoke(as_cloud_event(events[0], at=before))
    assert first["ran"], first
    covered = await hosted.invoke(as_cloud_event(events[1], at=before))
    assert covered["ran"] is False and covered["reason"].startswith("covered by"), covered
    after = await hosted.invoke(as_cloud_event(events[2], at=clock.now()))
    assert after["ran"] and after["scaleOut"]["applied"]["poolsWritten"] == [], after
    tick = await hosted.invoke(
        timer_event(trigger_name="t", at=clock.now(), payload=""), kind="timer"
    )
    assert tick["ran"], tick
    assert hosted.reconciler.outcomes == {"rounds": 3, "covered": 1, "turnedAway": 0}
    assert [w.summary.get("desired_size") for w in scale_requests_of(world.cs_app)] == [2]


async def test_a_round_that_fails_leaves_its_events_uncovered(world: World) -> None:
    """A round that raises puts the mark back as it found it: an event it would have covered
    runs a round of its own afterwards (FC retries the failed one too), so no pod is lost."""
    reconciler = HeldRound(environ=function_environment(world), now=world.cluster.clock.now)
    async with host(world, reconciler) as hosted:
        events = await unschedulable_workers(world, 6)
        occurred = world.cluster.clock.now() - 5
        reconciler.fail = True
        reconciler.release.set()
        outcome = await invoke_from_trigger(
            hosted.fc_app, as_cloud_event(events[0], at=occurred), kind="eventbridge"
        )
        assert outcome.error_type == "UnhandledInvocationError", outcome.body
        lease = world.cluster.store.get("leases", ROUNDS_LEASE, namespace="default")
        assert "acquireTime" not in lease["spec"], lease
        reconciler.fail = False
        retried = await hosted.invoke(as_cloud_event(events[1], at=occurred))
        assert retried["ran"] and retried["scaleOut"]["outcome"] == "scaled", retried


def test_what_a_round_covers() -> None:
    """A round covers an event that occurred more than the margin before it started, while it
    runs within the function's timeout or once it finished; a round killed by the timeout (never
    finished) covers nothing after it, and an event without a time is never covered."""
    running = LastRound("r", started_at=100.0, finished_at=None, max_seconds=120.0, lease=None)
    assert running.covers(100.0 - EVENT_MARGIN_SECONDS - 1, now=150.0)
    assert not running.covers(100.0 - EVENT_MARGIN_SECONDS, now=150.0)
    assert not running.covers(50.0, now=220.0)  # killed at its timeout: nothing covered
    finished = LastRound("r", started_at=100.0, finished_at=130.0, max_seconds=120.0, lease=None)
    assert finished.covers(50.0, now=10_000.0)
    assert not finished.covers(None, now=150.0)
