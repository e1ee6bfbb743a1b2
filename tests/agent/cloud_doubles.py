"""Support for the decide-and-act tests: serve an emulator app on a free 127.0.0.1 port, keep proxy
variables away from test traffic, and a small in-memory `NodePoolService` behind the CS emulator."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import pytest
from aiohttp import web

from agent.clients.fc import FunctionInvoker, FunctionRef, build_sdk_client
from agent.decide.deciders import FunctionComputeDecider, RetrySettings
from agent.decide.request_builder import RequestSettings, build_request
from agent.model import NodeState, PendingPod, PoolInfo, Snapshot
from agent.sim.cloud.cloud_model import CloudError, NodeView, PoolView, TaskView
from agent.sim.cloud.credentials import TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET, static_test_keys
from agent.sim.cloud.fc_api import build_fc_app
from agent.sim.faults import FaultPlan
from functions import fc

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Tea/Darabonba and aiohttp transports read proxy variables from the environment."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Yield "127.0.0.1:PORT" serving `app` until the block ends."""
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _stamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


@dataclass
class _Task:
    task_id: str
    pool_id: str
    created: float
    state: str = "running"
    error: str | None = None


class ScriptedPools:
    """Pools whose nodes become Ready only when a test says so (`boot`), and whose tasks a test can
    finish or fail, so actuation's bookkeeping is checked without any timing."""

    def __init__(
        self,
        pools: list[PoolView],
        *,
        now: Callable[[], float] = time.time,
        cluster_id: str = "c-test",
        region_id: str = "cn-hangzhou",
    ) -> None:
        self.cluster_id = cluster_id
        self.region_id = region_id
        self._now = now
        self._pools = {
            p.pool_id: replace(p, total_nodes=p.desired, healthy_nodes=p.desired) for p in pools
        }
        self._tasks: dict[str, _Task] = {}
        self.set_desired_calls: list[tuple[str, int]] = []

    def _pool(self, pool_id: str) -> PoolView:
        if pool_id not in self._pools:
            raise CloudError(404, "ErrorNodePoolNotFound", f"nodepool {pool_id} not found")
        return self._pools[pool_id]

    def boot(self, pool_id: str) -> None:
        """Every node asked for is now Ready."""
        pool = self._pool(pool_id)
        self._pools[pool_id] = replace(pool, total_nodes=pool.desired, healthy_nodes=pool.desired)
        for task in self._tasks.values():
            if task.pool_id == pool_id and task.state == "running":
                task.state = "success"

    def set_max(self, pool_id: str, max_size: int) -> None:
        """The operator changed the pool's bounds."""
        self._pools[pool_id] = replace(self._pool(pool_id), max_size=max_size)

    def delete(self, pool_id: str) -> None:
        """The operator deleted the pool."""
        del self._pools[pool_id]

    def fail_tasks(self, pool_id: str, error: str) -> None:
        for task in self._tasks.values():
            if task.pool_id == pool_id and task.state == "running":
                task.state, task.error = "fail", error

    def describe_pools(self) -> list[PoolView]:
        return list(self._pools.values())

    def describe_pool(self, pool_id: str) -> PoolView:
        return self._pool(pool_id)

    def set_desired(self, pool_id: str, desired: int) -> TaskView:
        pool = self._pool(pool_id)
        if desired > pool.max_size:
            raise CloudError(
                400, "ErrorNodePoolDesiredSizeExceedsMax", f"{desired} > {pool.max_size}"
            )
        self.set_desired_calls.append((pool_id, desired))
        self._pools[pool_id] = replace(
            pool, desired=desired, total_nodes=max(pool.total_nodes, desired)
        )
        task = _Task(f"T-{len(self._tasks) + 1:04d}", pool_id, self._now())
        self._tasks[task.task_id] = task
        return self.describe_task(task.task_id)

    def scale_by(self, pool_id: str, count: int) -> TaskView:
        return self.set_desired(pool_id, self._pool(pool_id).desired + count)

    def remove_nodes(
        self, pool_id: str, instance_ids: list[str], *, drain: bool, release: bool
    ) -> TaskView:
        raise CloudError(400, "InvalidParameter", "not modelled")

    def describe_nodes(self, pool_id: str | None = None) -> list[NodeView]:
        return []

    def describe_task(self, task_id: str) -> TaskView:
        task = self._tasks.get(task_id)
        if task is None:
            raise CloudError(404, "ErrorTaskNotFound", f"task {task_id} not found")
        return TaskView(
            task_id=task.task_id,
            task_type="nodepool_scale_out",
            state=task.state,
            created=_stamp(task.created),
            updated=_stamp(self._now()),
            error=task.error,
        )


def pool_view(
    pool_id: str,
    *,
    instance_type: str = "ecs.g7.xlarge",
    desired: int = 0,
    max_size: int = 20,
    min_size: int = 0,
    labels: dict[str, str] | None = None,
) -> PoolView:
    return PoolView(
        pool_id=pool_id,
        name=pool_id.removeprefix("np-"),
        instance_types=(instance_type,),
        desired=desired,
        min_size=min_size,
        max_size=max_size,
        labels={"alibabacloud.com/nodepool-id": pool_id, **(labels or {})},
        auto_scaling_enabled=True,
    )


def pending_pod(
    uid: str,
    *,
    cpu: str = "1",
    memory: str = "1Gi",
    rv: str = "1",
    name: str | None = None,
    namespace: str = "ray",
    node_selector: dict[str, str] | None = None,
    tolerations: tuple[dict[str, Any], ...] = (),
) -> PendingPod:
    """A KubeRay worker as the view reports it when the scheduler marked it Unschedulable."""
    return PendingPod(
        uid=uid,
        namespace=namespace,
        name=name or f"raycluster-worker-{uid}",
        resource_version=rv,
        labels={
            "ray.io/cluster": "raycluster",
            "ray.io/group": "workergroup",
            "ray.io/node-type": "worker",
        },
        annotations={},
        requests={"cpu": cpu, "memory": memory},
        node_selector=dict(node_selector or {}),
        affinity={},
        tolerations=tolerations,
        host_network=False,
        volume_types=("emptyDir",),
        privileged=False,
        unschedulable_since="2026-11-29T04:59:58Z",
        message="0/1 nodes are available: 1 Insufficient cpu.",
    )


def pool_node(
    name: str, pool_id: str, *, ready: bool = True, allocatable: dict[str, str] | None = None
) -> NodeState:
    return NodeState(
        name=name,
        pool_id=pool_id,
        ready=ready,
        virtual=False,
        allocatable=allocatable or {"cpu": "3900m", "memory": "14Gi", "pods": "64"},
        labels={"alibabacloud.com/nodepool-id": pool_id},
        taints=(),
    )


ECI_TAINT = {"key": "virtual-kubelet.io/provider", "value": "alibabacloud", "effect": "NoSchedule"}


def virtual_node(*, pods: str = "500") -> NodeState:
    return NodeState(
        name="virtual-kubelet-cn-hangzhou-k",
        pool_id=None,
        ready=True,
        virtual=True,
        allocatable={"cpu": "1000", "memory": "4Ti", "pods": pods},
        labels={"type": "virtual-kubelet", "kubernetes.io/role": "agent"},
        taints=(ECI_TAINT,),
    )


SERVICE, FUNCTION = "ray-ack-scaler", "decide"
NO_WAIT = RetrySettings(attempts=2, base_delay_seconds=0.01, max_delay_seconds=0.02)


def sample_request(pods: int = 12, *, eci: bool = True) -> dict[str, Any]:
    snapshot = Snapshot(
        pending=tuple(pending_pod(f"u-{i:03d}", cpu="1" if i % 3 else "2") for i in range(pods)),
        nodes=(virtual_node(),) if eci else (),
        eci_running_pods=0,
    )
    pools = [
        PoolInfo("np-cpu", "cpu", ("ecs.g7.xlarge",), 1, 0, 20),
        PoolInfo("np-big", "big", ("ecs.g7.4xlarge",), 0, 0, 5),
    ]
    settings = RequestSettings(cluster_id="c-1", region="cn-hangzhou")
    return build_request(snapshot, pools, {}, settings=settings, now="2026-11-29T05:00:00Z")


@asynccontextmanager
async def fc_emulator(
    handler: Callable[[bytes, Any], Any] = fc.handler, *, faults: FaultPlan | None = None
) -> AsyncIterator[tuple[str, Any]]:
    app = build_fc_app(
        handler,
        keys=static_test_keys(),
        service=SERVICE,
        function=FUNCTION,
        faults=faults,
        http_handler=fc.http_handler,
        now=time.time,
    )
    async with serve(app) as endpoint:
        yield endpoint, app


def fc_decider(
    endpoint: str, *, timeout: float = 10.0, retry: RetrySettings = NO_WAIT
) -> FunctionComputeDecider:
    sdk = build_sdk_client(
        region_id="cn-hangzhou",
        endpoint=endpoint,
        protocol="http",
        access_key_id=TEST_ACCESS_KEY_ID,
        access_key_secret=TEST_ACCESS_KEY_SECRET,
    )
    return FunctionComputeDecider(
        FunctionInvoker(sdk, FunctionRef(SERVICE, FUNCTION), timeout_seconds=timeout), retry=retry
    )


@dataclass
class CloudWorld:
    """The CS emulator over scripted pools plus a simulated API server for pod events: what an
    Actuator writes to, through the real CS SDK and the real Kubernetes client."""

    pools: ScriptedPools
    cs_app: web.Application
    cs_endpoint: str
    sim: Any  # agent.sim.cluster.SimCluster
    kube: Any  # agent.clients.kube.KubeClient

    def cs_client(self, *, retry: Any = None) -> Any:
        from agent.clients.cs import NodePoolClient, RetryPolicy
        from agent.clients.cs import build_sdk_client as build_cs_sdk

        sdk = build_cs_sdk(
            region_id="cn-hangzhou",
            endpoint=self.cs_endpoint,
            protocol="http",
            access_key_id=TEST_ACCESS_KEY_ID,
            access_key_secret=TEST_ACCESS_KEY_SECRET,
        )
        return NodePoolClient(
            sdk,
            self.pools.cluster_id,
            retry=retry or RetryPolicy(attempts=3, base_delay_seconds=0.01, max_delay_seconds=0.02),
        )

    def actuator(self, **kwargs: Any) -> Any:
        """A fresh agent's actuator: its own CS client and no memory (as after a restart)."""
        from agent.actuate.actuation import Actuator

        return Actuator(self.cs_client(), self.kube, **kwargs)

    def desired_writes(self) -> list[int]:
        from agent.sim.cloud.cs_api import writes_of

        return [
            w.summary["desired_size"]
            for w in writes_of(self.cs_app)
            if w.code is None and "desired_size" in w.summary
        ]

    def events(self, reason: str, namespace: str = "ray") -> list[dict[str, Any]]:
        items, _rv = self.sim.store.list("events", namespace=namespace)
        return [e for e in items if e.get("reason") == reason]


@asynccontextmanager
async def cloud_world(
    pools: list[PoolView], *, faults: FaultPlan | None = None
) -> AsyncIterator[CloudWorld]:
    from agent.clients.kube import KubeClient
    from agent.sim.cloud.cs_api import build_cs_app
    from agent.sim.cluster import SimCluster

    scripted = ScriptedPools(pools)
    app = build_cs_app(scripted, keys=static_test_keys(), faults=faults, now=time.time)
    async with serve(app) as endpoint, SimCluster(speed=20.0, namespaces=["ray"]) as sim:
        kube = await KubeClient.connect(api_url=sim.url, request_timeout=10)
        try:
            yield CloudWorld(scripted, app, endpoint, sim, kube)
        finally:
            await kube.close()


async def decide_for(
    world: CloudWorld,
    pods: list[PendingPod],
    *,
    activity: Any = None,
    now: str = "2026-11-29T05:00:00Z",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """What one agent asks: fresh pools from CS, its own pending pods, the in-process decision."""
    from agent.decide.deciders import LocalDecider

    pools = await world.cs_client().describe_pools()
    snapshot = Snapshot(pending=tuple(pods), nodes=(), eci_running_pods=0)
    request = build_request(
        snapshot,
        pools,
        activity or {},
        settings=RequestSettings(cluster_id="c-test", region="cn-hangzhou"),
        now=now,
    )
    return await LocalDecider().decide(request), request
