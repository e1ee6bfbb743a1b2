"""The simulator's node pools (agent.sim.world.nodepools) as tests set them up: pool specs with
ACK-like defaults, pools over a store and clock started for a block, and a SimCluster whose pool
is served by the CS emulator on 127.0.0.1."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from aiohttp import web

from agent.sim.cloud.credentials import KeyRing, static_test_keys
from agent.sim.cloud.cs_api import build_cs_app
from agent.sim.cluster import SimCluster
from agent.sim.faults import FaultPlan
from agent.sim.kube.kubeconfig import kubeconfig
from agent.sim.kube.store import ObjectStore
from agent.sim.world.clock import SimClock
from agent.sim.world.eci import EciSpec, EciVirtualNode
from agent.sim.world.nodepools import POOL_LABEL, BootLatency, NodePools, PoolSpec

REGION = "cn-hangzhou"


def pool_spec(
    pool_id: str = "np-cpu",
    *,
    instance_type: str = "ecs.g7.xlarge",
    max_size: int = 10,
    **fields: Any,
) -> PoolSpec:
    """A pool named after its id ("np-cpu" → "cpu"); other PoolSpec fields as keywords."""
    fields.setdefault("name", pool_id.removeprefix("np-"))
    return PoolSpec(pool_id=pool_id, instance_type=instance_type, max_size=max_size, **fields)


def node_pools(
    store: ObjectStore,
    clock: SimClock,
    *specs: PoolSpec,
    cluster_id: str = "c-test",
    zone: str = f"{REGION}-k",
    **kwargs: Any,
) -> NodePools:
    """NodePools in REGION over `store` and `clock` (not started)."""
    return NodePools(
        store,
        clock,
        cluster_id=cluster_id,
        region_id=REGION,
        zone=zone,
        pools=list(specs),
        **kwargs,
    )


@contextlib.asynccontextmanager
async def started(*services: Any) -> AsyncIterator[None]:
    """Start the simulator's services for the block; stop them in reverse order after it."""
    running: list[Any] = []
    try:
        for service in services:
            await service.start()
            running.append(service)
        yield
    finally:
        for service in reversed(running):
            await service.stop()


def nodes_in_pool(store: ObjectStore, pool_id: str) -> list[dict[str, Any]]:
    """The Node objects a pool booted."""
    nodes, _ = store.list("nodes")
    return [n for n in nodes if n["metadata"]["labels"].get(POOL_LABEL) == pool_id]


@dataclass
class PoolCluster:
    """A SimCluster with one ACK pool (np-cpu, boot 60-90 s) served by the CS emulator."""

    cluster: SimCluster
    pools: NodePools
    cs_app: web.Application
    cs_endpoint: str  # "127.0.0.1:PORT"
    cs_faults: FaultPlan
    # the keys the CS emulator accepts, STS tokens it issued included (an FC emulator given the
    # same ring hands its functions credentials CS accepts)
    keys: KeyRing = field(default_factory=lambda: KeyRing(static_test_keys()))


@contextlib.asynccontextmanager
async def cluster_with_a_pool(
    cluster_id: str, *, speed: float = 100.0, eci: bool = False, ack_autoscaling: bool = False
) -> AsyncIterator[PoolCluster]:
    """The "ray" namespace, pool np-cpu (max 10; ACK's own autoscaling off unless
    `ack_autoscaling`), optionally the ECI virtual node."""
    cluster = SimCluster(speed=speed, namespaces=["ray"])
    spec = pool_spec(boot=BootLatency(60, 90), auto_scaling=ack_autoscaling)
    pools = node_pools(cluster.store, cluster.clock, spec, cluster_id=cluster_id)
    cluster.add(pools)
    if eci:
        spec = EciSpec(zone=f"{REGION}-k")
        cluster.add(EciVirtualNode(cluster.store, cluster.clock, spec=spec, region=REGION))
    async with cluster:
        faults = FaultPlan()
        # DescribeClusterUserKubeconfig hands out the simulated API server's address
        user_kubeconfig = lambda: yaml.safe_dump(kubeconfig(cluster.url))  # noqa: E731
        keys = KeyRing(static_test_keys())
        app = build_cs_app(
            pools,
            keys=keys,
            faults=faults,
            now=cluster.clock.now,
            user_kubeconfig=user_kubeconfig,
        )
        runner = web.AppRunner(app, shutdown_timeout=0.2)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        try:
            endpoint = f"127.0.0.1:{runner.addresses[0][1]}"
            yield PoolCluster(cluster, pools, app, endpoint, faults, keys)
        finally:
            await runner.cleanup()
