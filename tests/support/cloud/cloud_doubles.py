"""Doubles for the decide-and-act tests: scripted pools behind the CS emulator, the FC emulator
hosting `functions/`, and `cloud_world` (CS emulator + simulated API server) for an Actuator."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web

from agent.clients.fc import FunctionInvoker, FunctionRef
from agent.decide.deciders import FunctionComputeDecider, RetrySettings
from agent.decide.request_builder import RequestSettings, build_request
from agent.model import PendingPod, PoolInfo, Snapshot
from agent.sim.cloud.cloud_model import CloudError, NodeView, PoolView, TaskView
from agent.sim.cloud.credentials import static_test_keys
from agent.sim.faults import FaultPlan
from functions import fc
from tests.support.builders import pending_pod, stamp, virtual_node
from tests.support.cloud.cloud_apis import (
    FC_FUNCTION,
    FC_SERVICE,
    agent_cs_sdk,
    agent_fc_sdk,
    fc_emulator,
)
from tests.support.cloud.serving import serve


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
        node_quota: int = 100,
    ) -> None:
        self.cluster_id = cluster_id
        self.region_id = region_id
        self.node_quota = node_quota
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

    def stock_out(self, pool_id: str, error: str) -> None:
        """The pool's running tasks fail and the nodes they asked for never come (ECS sold out):
        desired stays raised, as ACK leaves it, with only the Ready nodes there."""
        self.fail_tasks(pool_id, error)
        pool = self._pool(pool_id)
        self._pools[pool_id] = replace(pool, total_nodes=pool.healthy_nodes)

    def cluster_nodes(self) -> int:
        return sum(max(p.desired, p.total_nodes) for p in self._pools.values())

    def describe_pools(self) -> list[PoolView]:
        return list(self._pools.values())

    def describe_pool(self, pool_id: str) -> PoolView:
        return self._pool(pool_id)

    def set_desired(self, pool_id: str, desired: int) -> TaskView:
        pool = self._pool(pool_id)  # the CS emulator has checked the bounds (check_desired)
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
            created=stamp(task.created),
            updated=stamp(self._now()),
            error=task.error,
        )


SERVICE, FUNCTION = FC_SERVICE, FC_FUNCTION
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
async def decide_function(
    handler: Callable[[bytes, Any], Any] = fc.handler, *, faults: FaultPlan | None = None
) -> AsyncIterator[tuple[str, Any]]:
    """The FC emulator hosting `functions.fc` (or `handler`) and its HTTP triggers on wall time
    (FC 2.0's, on the endpoint, calls `functions.fc.wsgi_handler`): yields (endpoint, app)."""
    async with fc_emulator(
        handler,
        clock=time.time,
        http_handler=fc.http_handler,
        wsgi_handler=fc.wsgi_handler,
        faults=faults,
    ) as function:
        yield function.endpoint, function.app


def fc_decider(
    endpoint: str, *, timeout: float = 10.0, retry: RetrySettings = NO_WAIT
) -> FunctionComputeDecider:
    sdk = agent_fc_sdk(endpoint)
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
        from agent.model import PoolBounds

        sdk = agent_cs_sdk(self.cs_endpoint)
        # The scripted pools have ACK auto scaling on (the CS emulator then holds writes to their
        # min/max_instances); the agent manages them anyway, within those same bounds as they
        # are now, as allow_ack_autoscaled_pools does — not as companions, which it never writes.
        bounds = {
            p.pool_id: PoolBounds(p.pool_id, p.min_size, p.max_size)
            for p in self.pools.describe_pools()
        }
        return NodePoolClient(
            sdk,
            self.pools.cluster_id,
            retry=retry or RetryPolicy(attempts=3, base_delay_seconds=0.01, max_delay_seconds=0.02),
            bounds=bounds,
            allow_ack_autoscaled=True,
        )

    def actuator(self, *, pools: Any = None, **kwargs: Any) -> Any:
        """A fresh agent's actuator: its own CS client (or `pools`) and no memory (as after a
        restart)."""
        from agent.actuate.actuation import Actuator

        return Actuator(pools or self.cs_client(), self.kube, **kwargs)

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
