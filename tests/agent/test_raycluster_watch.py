"""The agent's RayCluster watch against the simulator over real HTTP: Ray's autoscaler raising a
worker group's `replicas` (the json-patch its KubeRay node provider sends) makes the agent raise
the pool before any worker pod exists; the pods KubeRay then creates (played here by the test,
POSTed as the operator would) are counted once; `maxReplicas` clamps; a cut watch recovers; an
API server without the CRD leaves the agent scaling for pods only."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from agent.app.loop import Agent, RoundRecord
from agent.clients.kube import KubeClient
from agent.sim.cloud.cs_api import scale_requests_of
from tests.support.agent_world import World, config_for
from tests.support.builders import build_test_pod, build_test_raycluster
from tests.support.cluster import running
from tests.support.waiting import until

NAMESPACE = "ray"
CLUSTER = "rc"
GROUP = "cpu-workers"
RAY_API = f"/apis/ray.io/v1/namespaces/{NAMESPACE}/rayclusters"


async def _send(
    url: str, method: str, path: str, body: Any, content_type: str = "application/json"
) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        session.request(
            method, url + path, data=json.dumps(body), headers={"Content-Type": content_type}
        ) as response,
    ):
        text = await response.text()
        assert response.status < 300, (response.status, text)
        return json.loads(text)  # type: ignore[no-any-return]


async def create_raycluster(world: World, **fields: Any) -> None:
    """POST the RayCluster, as Helm installs it."""
    body = build_test_raycluster(CLUSTER, namespace=NAMESPACE, group=GROUP, **fields)
    await _send(world.cluster.url, "POST", RAY_API, body)


async def scale_group(world: World, replicas: int, workers_to_delete: tuple[str, ...] = ()) -> None:
    """What Ray's KubeRay node provider sends on a scale decision: a json-patch of the group's
    replicas and its scaleStrategy."""
    ops = [
        {"op": "replace", "path": "/spec/workerGroupSpecs/0/replicas", "value": replicas},
        {
            "op": "replace",
            "path": "/spec/workerGroupSpecs/0/scaleStrategy",
            "value": {"workersToDelete": list(workers_to_delete)},
        },
    ]
    await _send(
        world.cluster.url, "PATCH", f"{RAY_API}/{CLUSTER}", ops, "application/json-patch+json"
    )


async def create_workers(world: World, names: list[str]) -> None:
    """The worker pods KubeRay creates for the group (labels from common/pod.go labelPod)."""
    for name in names:
        pod = build_test_pod(
            name,
            namespace=NAMESPACE,
            labels={
                "ray.io/cluster": CLUSTER,
                "ray.io/group": GROUP,
                "ray.io/node-type": "worker",
                "ray.io/is-ray-node": "yes",
            },
            container="ray-worker",
            cpu="1",
            memory="2Gi",
        )
        await _send(world.cluster.url, "POST", f"/api/v1/namespaces/{NAMESPACE}/pods", pod)


def worker_pods(world: World) -> list[dict[str, Any]]:
    items, _ = world.cluster.store.list("pods", namespace=NAMESPACE)
    return [p for p in items if p["metadata"].get("labels", {}).get("ray.io/cluster") == CLUSTER]


def desired_sizes(world: World) -> list[int]:
    return [int(w.summary["desired_size"]) for w in scale_requests_of(world.cs_app)]


async def synced(agent: Agent) -> None:
    await asyncio.wait_for(asyncio.gather(*(w.synced.wait() for w in agent.all_watchers)), 10)


def last_round(agent: Agent) -> RoundRecord:
    assert agent.last_round is not None
    return agent.last_round


def covered_rounds(agent: Agent) -> float:
    value = agent.metrics.registry.get_sample_value(
        "ray_ack_scaler_decisions_total", {"outcome": "covered"}
    )
    return value or 0.0


async def test_replicas_raised_scales_the_pool_before_any_pod_and_counts_once(
    world: World,
) -> None:
    """replicas 0 → 4 with no pod: one raise to 2 nodes (3 one-vCPU workers per
    ecs.g7.xlarge), from anticipated workers alone. Then the operator's 4 pods turn up
    Unschedulable: their round finds the room already asked for — no second raise — and all run."""
    await create_raycluster(world, replicas=0)
    agent = world.agent(config_for(world))
    async with running(agent):
        await synced(agent)
        await scale_group(world, 4)
        # the round is recorded once its write is answered: wait for the record, not the write
        await until(
            lambda: agent.last_round is not None and agent.last_round.outcome == "scaled",
            what="a scaled round",
        )
        assert desired_sizes(world) == [2]
        assert worker_pods(world) == []
        assert (last_round(agent).pods, last_round(agent).anticipated) == (0, 4)
        covered_before = covered_rounds(agent)

        # created at once, while the nodes boot (60-90 simulated s): the scheduler marks them
        await create_workers(world, [f"{CLUSTER}-{GROUP}-{i}" for i in range(4)])
        await until(lambda: covered_rounds(agent) > covered_before, what="a round: covered")
        await until(lambda: world.phases() == ["Running"] * 4, what="the workers running")
        assert desired_sizes(world) == [2]  # counted once
        assert agent.anticipated() == ()


async def test_pods_pending_and_anticipated_together_are_not_double_counted(world: World) -> None:
    """Two of four workers exist (Unschedulable) when the agent starts: the first round decides
    for two pods plus two anticipated workers — four in all, one raise to 2 nodes."""
    await create_raycluster(world, replicas=4)
    await create_workers(world, ["w0", "w1"])
    await until(lambda: len(world.phases()) == 2)
    agent = world.agent(config_for(world, dry_run=True))
    async with running(agent):
        # the first round may come before the RayCluster watch has listed; its LIST brings one
        await until(lambda: agent.last_round is not None and agent.last_round.anticipated > 0)
        assert last_round(agent).outcome == "dry_run"
        assert (last_round(agent).pods, last_round(agent).anticipated) == (2, 2)
        assert last_round(agent).pools_written == ({"pool": "np-cpu", "from": 0, "to": 2},)


async def test_replicas_above_max_replicas_are_clamped(world: World) -> None:
    """replicas 50 with maxReplicas 5: KubeRay creates 5 pods, so 5 are anticipated (2 nodes)."""
    await create_raycluster(world, replicas=0, max_replicas=5)
    agent = world.agent(config_for(world, dry_run=True))
    async with running(agent):
        await synced(agent)
        await scale_group(world, 50)
        await until(lambda: agent.last_round is not None and agent.last_round.outcome == "dry_run")
        assert last_round(agent).anticipated == 5
        assert last_round(agent).pools_written == ({"pool": "np-cpu", "from": 0, "to": 2},)


async def test_workers_to_delete_do_not_count_as_existing(world: World) -> None:
    """Three workers exist; the autoscaler replaces one (replicas stays 3, w0 named in
    workersToDelete): KubeRay deletes w0 and creates one, so one worker is anticipated. A plain
    scale-down (replicas 2, w0 named) anticipates none."""
    await create_raycluster(world, replicas=3)
    await create_workers(world, ["w0", "w1", "w2"])
    agent = world.agent(config_for(world, dry_run=True))
    async with running(agent):
        await synced(agent)
        await until(lambda: len(agent.view.pending) == 3, what="three pending workers")
        assert agent.anticipated() == ()
        await scale_group(world, 3, ("w0",))
        await until(lambda: len(agent.anticipated()) == 1, what="one anticipated worker")
        await scale_group(world, 2, ("w0",))
        await until(lambda: agent.anticipated() == (), what="none anticipated")


async def test_workers_that_fit_running_nodes_are_not_anticipated(world: World) -> None:
    """A node with room for two more workers (three per ecs.g7.xlarge, one runs): replicas
    1 → 3 asks for nothing (KubeRay's pods will land there); 3 → 5 asks for one node, for the
    two that do not fit."""
    await create_raycluster(world, replicas=1)
    await create_workers(world, ["w0"])
    agent = world.agent(config_for(world))
    async with running(agent):
        await until(lambda: world.phases() == ["Running"], what="the first worker running")
        assert desired_sizes(world) == [1]
        await scale_group(world, 3)
        await until(lambda: agent.rayclusters is not None and agent.rayclusters.missing())
        await asyncio.sleep(0.3)  # a round would have come within the batch window
        assert agent.anticipated() == ()
        assert desired_sizes(world) == [1]
        await scale_group(world, 5)
        await until(lambda: len(desired_sizes(world)) == 2, what="a second raise")
        assert desired_sizes(world) == [1, 2]
        assert len(agent.anticipated()) == 2


@pytest.mark.parametrize("with_eci", [True])
async def test_anticipated_workers_placed_on_eci_patch_nothing_until_their_pods_exist(
    world: World,
) -> None:
    """eci-first: the anticipated workers go to ECI in the decision, but there is no pod to patch
    and none to record an Event about; the pods, once created, get their patches (and Events) in
    their own round."""
    seen: list[tuple[str, str]] = []
    world.cluster.request_listeners.append(lambda method, path: seen.append((method, path)))
    await create_raycluster(world, replicas=0)
    agent = world.agent(config_for(world, eci_enabled=True, strategy="eci-first"))
    async with running(agent):
        await synced(agent)
        await scale_group(world, 2)
        await until(
            lambda: agent.last_round is not None and last_round(agent).anticipated == 2,
            what="a round for the anticipated workers",
        )
        assert [a["kind"] for a in last_round(agent).actions] == ["place-on-eci"]
        assert last_round(agent).eci_placed == 0
        await asyncio.sleep(0.3)  # Events are written in the background: give them time
        writes = [
            (m, p) for m, p in seen if m in ("PATCH", "POST") and ("/pods" in p or "/events" in p)
        ]
        assert writes == [], writes

        await create_workers(world, ["w0", "w1"])
        await until(lambda: world.phases() == ["Running"] * 2, what="the workers running on ECI")
    patched = sorted(p.rsplit("/", 1)[-1] for m, p in seen if m == "PATCH" and "/pods/" in p)
    assert patched == ["w0", "w1"]
    assert desired_sizes(world) == []


async def test_a_cut_raycluster_watch_recovers(world: World) -> None:
    """Every watch stream cut after each event: the RayCluster watch resumes and still sees the
    raise (the agent scales), its restarts counted."""
    await create_raycluster(world, replicas=0)
    agent = world.agent(config_for(world))
    async with running(agent):
        await synced(agent)
        world.cluster.faults.watch_cut_every_events = 1
        for replicas in (1, 2, 3):
            await scale_group(world, replicas)
        await until(lambda: desired_sizes(world) == [1], what="a raise for 3 workers")
        watcher = agent.raycluster_watcher
        assert watcher is not None and watcher.restarts["eof"] >= 1
        assert len(agent.anticipated()) == 3


async def test_the_watch_can_be_turned_off(world: World) -> None:
    """raycluster_watch off: no request to ray.io, replicas alone scale nothing."""
    seen: list[tuple[str, str]] = []
    world.cluster.request_listeners.append(lambda method, path: seen.append((method, path)))
    await create_raycluster(world, replicas=0)
    agent = world.agent(config_for(world, raycluster_watch=False))
    async with running(agent):
        await synced(agent)
        await scale_group(world, 4)
        await asyncio.sleep(0.3)
        assert agent.raycluster_watcher is None and agent.anticipated() == ()
    assert desired_sizes(world) == []
    assert [p for m, p in seen if m == "GET" and p.startswith("/apis/ray.io")] == []


@contextlib.asynccontextmanager
async def without_the_crd(upstream: str) -> AsyncIterator[str]:
    """An API server without KubeRay's CRD in front of the simulator: /apis/ray.io/* answers 404
    as kube-apiserver does for a group version nobody serves; everything else is relayed,
    streaming (watches included)."""
    session = aiohttp.ClientSession()

    async def relay(request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/apis/ray.io"):
            return web.Response(status=404, text="404 page not found\n")
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type",)}
        async with session.request(
            request.method, upstream + request.path_qs, data=body, headers=headers
        ) as answer:
            response = web.StreamResponse(status=answer.status)
            response.content_type = answer.content_type
            await response.prepare(request)
            async for chunk in answer.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", relay)
    runner = web.AppRunner(app, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
        await session.close()


async def test_without_the_crd_the_agent_scales_for_pods_only(world: World) -> None:
    """Discovery of ray.io/v1 answers 404: the watch is turned off at start (not retried, not
    fatal), and pending pods are still served."""
    async with without_the_crd(world.cluster.url) as url:
        kube = await KubeClient.connect(api_url=url, request_timeout=5)
        try:
            agent = dataclasses.replace(world, kube=kube).agent(config_for(world, api_url=url))
            async with running(agent):
                await until(lambda: agent.ready(), what="the agent ready")
                assert agent.raycluster_watcher is None
                world.add_workers(3)
                await until(lambda: world.phases() == ["Running"] * 3, what="the pods running")
            assert desired_sizes(world) == [1]
        finally:
            await kube.close()
