"""The Ray workload's autoscaler speaks only the KubeRay node provider's requests, over HTTP: a
recording proxy between it and the served SimCluster sees the RayCluster created (as Helm
would), a GET before every update, json-patches of replicas up for queued tasks, then of
replicas down with the idle workers named in workersToDelete, then the clean-up with an empty
list once the operator has deleted them. It never writes a pod."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from agent.sim.cluster import SimCluster
from agent.sim.kube.apiserver import WORLD_USER_AGENT
from agent.sim.kube.in_cluster import InClusterAccess
from agent.sim.world.kuberay_operator import KubeRayOperator
from agent.sim.world.nodes import ready_node
from agent.sim.world.ray import (
    HeadSpec,
    JobSpec,
    RayClusterSpec,
    RayDriver,
    TaskGroup,
    WorkerGroupSpec,
)
from tests.support.waiting import store_until, until

CLUSTER = "ray-test"
PATH = f"/apis/ray.io/v1/namespaces/ray/rayclusters/{CLUSTER}"
SYSTEM = {"node-role/system": "true"}
RUNNING: list[Any] = []  # the operator and driver `run_job` started last


@dataclass
class Recorded:
    method: str
    path: str
    content_type: str
    body: Any
    status: int
    user_agent: str


@dataclass
class Proxy:
    """Forwards every request to the API server and keeps (method, path, body, status)."""

    upstream: str
    requests: list[Recorded] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method, self.upstream + request.path_qs, data=raw, headers=headers
            ) as answer,
        ):
            payload = await answer.read()
            self.requests.append(
                Recorded(
                    request.method,
                    request.path_qs,
                    request.headers.get("Content-Type", ""),
                    json.loads(raw) if raw else None,
                    answer.status,
                    request.headers.get("User-Agent", ""),
                )
            )
            return web.Response(
                body=payload, status=answer.status, content_type=answer.content_type
            )

    def patches(self) -> list[list[dict[str, Any]]]:
        return [r.body for r in self.requests if r.method == "PATCH"]


@pytest.fixture
async def served() -> AsyncIterator[tuple[SimCluster, Proxy, str]]:
    async with SimCluster(speed=100) as cluster:
        proxy = Proxy(cluster.url)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", proxy.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            yield cluster, proxy, f"http://127.0.0.1:{runner.addresses[0][1]}"
        finally:
            await runner.cleanup()


async def run_job(served: Any, *groups: TaskGroup) -> tuple[SimCluster, Proxy, RayDriver]:
    cluster, proxy, url = served
    cluster.store.create(
        "nodes", ready_node("cn-hangzhou.172.16.0.2", cpu="4", memory="16Gi", labels=SYSTEM)
    )
    cluster.store.create("nodes", ready_node("cn-hangzhou.172.16.0.3", cpu="16", memory="64Gi"))
    spec = RayClusterSpec(
        name=CLUSTER,
        namespace="ray",
        head=HeadSpec(node_selector=SYSTEM),
        worker_groups=(
            WorkerGroupSpec(
                name="small",
                requests={"cpu": "1", "memory": "1Gi"},
                max_replicas=8,
                idle_timeout_seconds=20,
            ),
        ),
    )
    operator = KubeRayOperator(cluster.store, cluster.clock)
    driver = RayDriver(
        cluster.store,
        cluster.clock,
        cluster=spec,
        job=JobSpec(task_groups=groups),
        api=lambda: InClusterAccess(url),
    )
    await operator.start()
    await driver.start()
    RUNNING[:] = [operator, driver]
    return cluster, proxy, driver


async def stop(*parts: Any) -> None:
    for part in parts:
        await part.stop()


async def test_scale_up_down_and_clean_up_through_the_raycluster(served):
    """5 tasks → replicas 5; once idle past 20 s the workers are named for deletion with
    replicas 0; once they are gone, workersToDelete is patched back to []."""
    cluster, proxy, driver = await run_job(served, TaskGroup("sleep", count=5, duration_seconds=10))
    try:
        await until(lambda: driver.finished(), timeout=10)
        workers = set(driver.worker_names())
        await until(
            lambda: any(
                op["value"] == {"workersToDelete": []} for patch in proxy.patches() for op in patch
            ),
            timeout=10,
        )
    finally:
        await stop(*RUNNING)
    first = proxy.requests[:2]
    assert [(r.method, r.path, r.status) for r in first] == [
        ("POST", "/api/v1/namespaces", 201),
        ("POST", "/apis/ray.io/v1/namespaces/ray/rayclusters", 201),
    ]
    assert first[1].body["spec"]["workerGroupSpecs"][0]["replicas"] == 0
    assert all(r.user_agent == WORLD_USER_AGENT for r in proxy.requests)
    # only the RayCluster is read and written after that; never a pod
    later = proxy.requests[2:]
    assert {(r.method, r.path) for r in later} == {("GET", PATH), ("PATCH", PATH)}
    assert all(r.status == 200 for r in later)
    assert all(
        r.content_type == "application/json-patch+json" for r in later if r.method == "PATCH"
    )
    up, down, cleanup = proxy.patches()[:3]
    assert up == [{"op": "replace", "path": "/spec/workerGroupSpecs/0/replicas", "value": 5}]
    assert down[0] == {"op": "replace", "path": "/spec/workerGroupSpecs/0/replicas", "value": 0}
    assert down[1]["path"] == "/spec/workerGroupSpecs/0/scaleStrategy"
    assert set(down[1]["value"]["workersToDelete"]) == workers
    assert cleanup == [
        {
            "op": "replace",
            "path": "/spec/workerGroupSpecs/0/scaleStrategy",
            "value": {"workersToDelete": []},
        }
    ]
    # a GET of the RayCluster comes before each PATCH (get_node_data, then the update)
    for index, request in enumerate(later):
        if request.method == "PATCH":
            assert later[index - 1].method in ("GET", "PATCH")
    assert later[0].method == "GET"
    pods, _ = cluster.store.list("pods", namespace="ray")
    assert [p["metadata"]["labels"]["ray.io/node-type"] for p in pods] == ["head"]


async def test_no_update_while_a_named_worker_is_still_there(served):
    """safe_to_scale: while the operator has not deleted the named workers (its reconcile held
    back here), the autoscaler only GETs: no clean-up, and no replicas for new tasks."""
    cluster, proxy, driver = await run_job(served, TaskGroup("sleep", count=2, duration_seconds=10))
    operator = next(c for c in RUNNING if isinstance(c, KubeRayOperator))
    try:
        await until(lambda: len(driver.worker_names()) == 2 and driver.finished(), timeout=10)
        operator.delay_seconds = 10_000  # the next reconcile is far away
        await until(lambda: len(proxy.patches()) == 2, timeout=10)
        assert len(proxy.patches()[1][1]["value"]["workersToDelete"]) == 2
        driver.submit(TaskGroup("more", count=3, duration_seconds=10))
        gets = sum(1 for r in proxy.requests if r.method == "GET")
        await cluster.clock.sleep(30)
        assert len(proxy.patches()) == 2
        assert sum(1 for r in proxy.requests if r.method == "GET") >= gets + 4
    finally:
        await stop(driver, operator)


async def test_the_driver_sees_only_pods_the_operator_made(served):
    """Without an operator, replicas rise on the RayCluster but no pod appears and no task runs:
    the workload has no other way to get workers."""
    cluster, _, url = served
    cluster.store.create("nodes", ready_node("n", cpu="16", memory="64Gi"))
    driver = RayDriver(
        cluster.store,
        cluster.clock,
        cluster=RayClusterSpec(
            name=CLUSTER,
            namespace="ray",
            worker_groups=(WorkerGroupSpec(name="small", requests={"cpu": "1"}, max_replicas=4),),
        ),
        job=JobSpec(task_groups=(TaskGroup("sleep", count=3, duration_seconds=10),)),
        api=lambda: InClusterAccess(url),
    )
    await driver.start()
    try:
        await store_until(
            cluster.store,
            lambda: (
                cluster.store.get("rayclusters", CLUSTER, namespace="ray")["spec"][
                    "workerGroupSpecs"
                ][0]["replicas"]
                == 3
            ),
        )
        await cluster.clock.sleep(20)
        assert cluster.store.list("pods", namespace="ray")[0] == []
        assert driver.snapshot().tasks_running == 0
        assert driver.replicas() == {"small": 3}
    finally:
        await driver.stop()


async def test_the_bounds_come_from_the_raycluster(served):
    """maxReplicas lowered on the object (as `kubectl patch` would) caps the next scale-up: the
    autoscaler reads its node types' bounds from the RayCluster, not from its start."""
    cluster, _, url = served
    _, _, driver = await run_job(served, TaskGroup("first", count=2, duration_seconds=300))
    try:
        await until(lambda: driver.snapshot().tasks_running == 2, timeout=10)
        async with (
            aiohttp.ClientSession() as session,
            session.patch(
                url + PATH,
                data=json.dumps(
                    [{"op": "replace", "path": "/spec/workerGroupSpecs/0/maxReplicas", "value": 3}]
                ),
                headers={"Content-Type": "application/json-patch+json"},
            ) as answer,
        ):
            assert answer.status == 200
        driver.submit(TaskGroup("more", count=5, duration_seconds=300))
        await until(lambda: driver.replicas() == {"small": 3}, timeout=10)
        await cluster.clock.sleep(15)
        assert driver.replicas() == {"small": 3}
        assert driver.snapshot().tasks_queued == 4
    finally:
        await stop(*RUNNING)
