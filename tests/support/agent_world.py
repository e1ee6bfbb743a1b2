"""An agent's world for the main-loop tests: the simulator with one ACK pool behind the CS emulator
over real HTTP, the agent's own clients for both, and an Agent wired from them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web

from agent.actuate.actuation import Actuator
from agent.app.loop import Agent
from agent.app.settings import AgentConfig
from agent.clients.cs import NodePoolClient, RetryPolicy
from agent.clients.kube import KubeClient
from agent.decide.deciders import LocalDecider
from agent.ingest.watching import Backoff
from agent.model import PoolBounds
from agent.scale_in.actuation import ScaleInActuator
from agent.sim.cloud.credentials import KeyRing
from agent.sim.cluster import SimCluster
from agent.sim.faults import FaultPlan
from agent.sim.world.nodepools import NodePools
from tests.support.builders import build_test_pod
from tests.support.cloud.cloud_apis import agent_cs_sdk
from tests.support.sim_pools import cluster_with_a_pool

CLUSTER_ID = "c-runner"
REGION = "cn-hangzhou"
SPEED = 100.0  # a 60-90 s boot lasts under a second
# The agent's bounds for the world's pool (its ACK auto scaling is off, as on a managed pool).
NP_CPU = PoolBounds("np-cpu", 0, 10)


@dataclass
class World:
    """A SimCluster with pool np-cpu behind the CS emulator, and the agent's clients for both."""

    cluster: SimCluster
    cs_faults: FaultPlan
    cs_app: web.Application
    cs_endpoint: str
    kube: KubeClient
    pools: NodePoolClient  # with NP_CPU's bounds; an agent gets a client with its config's
    sim_pools: NodePools  # the simulated pools behind the CS emulator (node quota, specs)
    keys: KeyRing | None = None  # what the CS emulator accepts (STS tokens it issued included)

    def pool_client(self, config: AgentConfig) -> NodePoolClient:
        return NodePoolClient(
            agent_cs_sdk(self.cs_endpoint, timeout_seconds=5),
            CLUSTER_ID,
            retry=RetryPolicy(base_delay_seconds=0.01),
            bounds=config.pool_bounds,
            allow_ack_autoscaled=config.allow_ack_autoscaled_pools,
        )

    def add_workers(self, count: int, *, cpu: str = "1", prefix: str = "w") -> None:
        for i in range(count):
            worker = build_test_pod(
                f"{prefix}{i}",
                namespace="ray",
                labels={"ray.io/node-type": "worker", "ray.io/cluster": "rc", "ray.io/group": "g"},
                container="ray-worker",
                image=None,
                cpu=cpu,
                memory="1Gi",
            )
            self.cluster.store.create("pods", worker, namespace="ray")

    def phases(self) -> list[str]:
        items, _ = self.cluster.store.list("pods", namespace="ray")
        return sorted(p.get("status", {}).get("phase", "") for p in items)

    def agent(self, config: AgentConfig, *, decider: Any = None, scale_in: bool = False) -> Agent:
        """An Agent on this world; with `scale_in`, its scale-in rounds run too."""
        pools = self.pool_client(config)
        return Agent(
            config,
            kube=self.kube,
            pools=pools,
            decider=decider or LocalDecider(),
            actuator=Actuator(pools, self.kube),
            now=self.cluster.clock.now,
            backoff=Backoff(initial=0.01, maximum=0.1),
            scale_in=ScaleInActuator(pools, self.kube, identity="agent-0") if scale_in else None,
        )


@contextlib.asynccontextmanager
async def open_world(*, eci: bool = False) -> AsyncIterator[World]:
    """The world, optionally with the ECI virtual node, closed after the block."""
    async with cluster_with_a_pool(CLUSTER_ID, speed=SPEED, eci=eci) as box:
        sdk = agent_cs_sdk(box.cs_endpoint, timeout_seconds=5)
        node_pools = NodePoolClient(
            sdk,
            CLUSTER_ID,
            retry=RetryPolicy(base_delay_seconds=0.01),
            bounds={NP_CPU.pool_id: NP_CPU},
        )
        kube = await KubeClient.connect(api_url=box.cluster.url, request_timeout=5)
        try:
            yield World(
                box.cluster,
                box.cs_faults,
                box.cs_app,
                box.cs_endpoint,
                kube,
                node_pools,
                box.pools,
                box.keys,
            )
        finally:
            await kube.close()


def config_for(world: World, **overrides: Any) -> AgentConfig:
    """Fast rhythms (batch, resync, pool refresh) for a world at SPEED; no ECI unless asked."""
    base = AgentConfig(
        cluster_id=CLUSTER_ID,
        region=REGION,
        api_url=world.cluster.url,
        cs_endpoint=f"http://{world.cs_endpoint}",
        batch_idle_seconds=0.05,
        batch_max_seconds=0.5,
        resync_seconds=2.0,
        pool_refresh_seconds=1.0,
        watch_timeout_seconds=30,
        watch_read_timeout_seconds=40,
        prices={"ecs.g7.xlarge": 1.0},
        eci_enabled=False,
        managed_pools=(NP_CPU,),
    )
    return replace(base, **overrides)
