"""Scenarios: the simulator a scenario file describes.

`build_world` turns a scenario into the simulator components (system nodes, node pools, ECI
virtual node, the KubeRay operator stand-in, the Ray workload) over a store, a clock and the API
server's address; `attach_world` adds them to a SimCluster. The
CS/FC emulators take `World.pools` and the scenario's fault plan from there. Reading and
validating the YAML files is `scenario_reader`'s job; its names are re-exported here.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.sim.kube.in_cluster import InClusterAccess
from agent.sim.kube.store import ApiError, ObjectStore
from agent.sim.report import CostReport, cost_report
from agent.sim.scenario_fields import ScenarioError
from agent.sim.scenario_reader import (
    SCENARIO_DIR,
    ClusterSpec,
    Scenario,
    SystemNodeSpec,
    available_scenarios,
    load_scenario,
    parse_scenario,
)
from agent.sim.world.ack_autoscaler import AckAutoscaler
from agent.sim.world.catalog import instance_type
from agent.sim.world.clock import SimClock
from agent.sim.world.eci import EciSpec, EciVirtualNode
from agent.sim.world.kuberay_operator import KubeRayOperator
from agent.sim.world.nodepools import NodePools
from agent.sim.world.nodes import AddressBook, node_object
from agent.sim.world.ray import RayDriver

__all__ = [
    "SCENARIO_DIR",
    "ClusterSpec",
    "EciSpec",
    "Scenario",
    "ScenarioError",
    "SystemNodeSpec",
    "SystemNodes",
    "World",
    "attach_world",
    "available_scenarios",
    "build_world",
    "load_scenario",
    "parse_scenario",
]


class SystemNodes:
    """The cluster's pre-existing nodes, Ready from the start (a SimCluster component)."""

    def __init__(
        self, store: ObjectStore, clock: SimClock, *, scenario: Scenario, addresses: AddressBook
    ) -> None:
        self._store = store
        self._clock = clock
        self._scenario = scenario
        self._addresses = addresses
        self.names: list[str] = []

    async def start(self) -> None:
        cluster = self._scenario.cluster
        now = self._clock.now()
        for spec in self._scenario.system_nodes:
            machine = instance_type(spec.instance_type)
            for _ in range(spec.count):
                ip = self._addresses.allocate()
                name = f"{cluster.region}.{ip}"
                labels = {
                    **spec.labels,
                    "node.kubernetes.io/instance-type": spec.instance_type,
                    "topology.kubernetes.io/zone": cluster.zone,
                    "topology.kubernetes.io/region": cluster.region,
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                }
                self._store.create(
                    "nodes",
                    node_object(
                        name,
                        machine,
                        labels=labels,
                        taints=[dict(t) for t in spec.taints],
                        ip=ip,
                        created=self._clock.iso(now),
                        ready_at=now,
                        ready=True,
                        pod_start_seconds=2.0,
                    ),
                )
                self.names.append(name)

    async def stop(self) -> None:
        return None


class Budgets:
    """The scenario's PodDisruptionBudgets, there from the start (a SimCluster component)."""

    def __init__(self, store: ObjectStore, *, scenario: Scenario) -> None:
        self._store = store
        self._scenario = scenario

    async def start(self) -> None:
        for budget in self._scenario.budgets:
            namespace = str(budget["metadata"]["namespace"])
            with contextlib.suppress(ApiError):  # already there
                self._store.create("namespaces", {"metadata": {"name": namespace}})
            self._store.create("poddisruptionbudgets", dict(budget), namespace=namespace)

    async def stop(self) -> None:
        return None


@dataclass
class World:
    """The scenario's simulator components, in start order."""

    scenario: Scenario
    system: SystemNodes
    pools: NodePools
    eci: EciVirtualNode | None
    operator: KubeRayOperator
    ray: RayDriver
    budgets: Budgets | None = None
    # ACK's own autoscaler: acts only on pools with autoScaling on
    ack_autoscaler: AckAutoscaler | None = None

    def components(self) -> list[Any]:
        parts: list[Any] = [self.system, self.pools]
        if self.budgets is not None:
            parts.append(self.budgets)
        if self.eci is not None:
            parts.append(self.eci)
        if self.ack_autoscaler is not None:
            parts.append(self.ack_autoscaler)
        # the operator before the workload whose RayCluster it reconciles
        parts += [self.operator, self.ray]
        return parts

    async def start(self) -> None:
        for component in self.components():
            await component.start()

    def cost_report(self) -> CostReport:
        """Node pools and ECI cost so far."""
        return cost_report(self.pools.usage(), self.eci.billing() if self.eci else None)

    async def stop(self) -> None:
        for component in reversed(self.components()):
            await component.stop()


def attach_world(scenario: Scenario, cluster: Any) -> World:
    """Build the scenario's components over a SimCluster's store and clock and add them to it
    (before it starts), in start order; the world reaches the API server as a pod would
    (`cluster.in_cluster_access`: its URL, and its CA and token when served over TLS)."""
    world = build_world(
        scenario, store=cluster.store, clock=cluster.clock, api=cluster.in_cluster_access
    )
    for component in world.components():
        cluster.add(component)
    return world


def build_world(
    scenario: Scenario,
    *,
    store: ObjectStore,
    clock: SimClock,
    api: Callable[[], InClusterAccess],
) -> World:
    """The components a scenario describes, not yet started; `api()` says how to reach the API
    server once they start (the Ray autoscaler stand-in talks to it over HTTP)."""
    addresses = AddressBook(random.Random(scenario.seed))
    cluster = scenario.cluster
    pools = NodePools(
        store,
        clock,
        cluster_id=cluster.cluster_id,
        region_id=cluster.region,
        zone=cluster.zone,
        pools=list(scenario.pools),
        seed=scenario.seed,
        addresses=addresses,
        node_quota=cluster.node_quota,
    )
    eci = (
        EciVirtualNode(store, clock, spec=scenario.eci, region=cluster.region)
        if scenario.eci.enabled
        else None
    )
    return World(
        scenario=scenario,
        system=SystemNodes(store, clock, scenario=scenario, addresses=addresses),
        pools=pools,
        eci=eci,
        operator=KubeRayOperator(
            store, clock, delay_seconds=scenario.ray.operator_delay_seconds, seed=scenario.seed
        ),
        ray=RayDriver(store, clock, cluster=scenario.ray, job=scenario.job, api=api),
        budgets=Budgets(store, scenario=scenario),
        ack_autoscaler=AckAutoscaler(
            store,
            clock,
            pools=pools,
            spec=scenario.ack_autoscaler,
            node_quota=cluster.node_quota,
        ),
    )
