"""The Ray workload over the KubeRay operator stand-in, on a served SimCluster: its autoscaler's
requests make the operator create KubeRay-shaped pods up to demand; tasks run on Running
workers; idle workers are removed."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from agent.sim.cluster import SimCluster
from agent.sim.kube.store import ObjectStore
from agent.sim.world.clock import SimClock
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

SYSTEM = {"node-role/system": "true"}
SUFFIX = "[bcdfghjklmnpqrstvwxz2456789]{5}"  # generateName's five characters
CPU_GROUP = WorkerGroupSpec(
    name="workergroup",
    requests={"cpu": "1", "memory": "1Gi"},
    max_replicas=30,
    idle_timeout_seconds=20,
    labels={"team": "ml"},
    annotations={"example.com/owner": "ml"},
)
GPU_GROUP = WorkerGroupSpec(
    name="gpu",
    requests={"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"},
    max_replicas=4,
    node_selector={"accelerator": "a10"},
    tolerations=({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},),
)


def cluster_spec(*groups: WorkerGroupSpec) -> RayClusterSpec:
    return RayClusterSpec(
        name="ray-test",
        namespace="ray",
        head=HeadSpec(node_selector=SYSTEM),
        worker_groups=groups or (CPU_GROUP,),
    )


@dataclass
class Served:
    """A served SimCluster, 100× real time, with the sim core's handles."""

    cluster: SimCluster

    @property
    def store(self) -> ObjectStore:
        return self.cluster.store

    @property
    def clock(self) -> SimClock:
        return self.cluster.clock

    async def until(self, predicate: Callable[[], object], *, timeout: float = 5.0) -> None:
        await store_until(self.cluster.store, predicate, timeout=timeout)


@pytest.fixture
async def sim() -> AsyncIterator[Served]:
    async with SimCluster(speed=100) as cluster:
        yield Served(cluster)


async def start_world(
    cluster: SimCluster, spec: RayClusterSpec, groups: tuple[TaskGroup, ...], seed: int
) -> tuple[KubeRayOperator, RayDriver]:
    operator = KubeRayOperator(cluster.store, cluster.clock, seed=seed)
    driver = RayDriver(
        cluster.store,
        cluster.clock,
        cluster=spec,
        job=JobSpec(task_groups=groups),
        api=cluster.in_cluster_access,
    )
    await operator.start()
    await driver.start()
    return operator, driver


@pytest.fixture
async def driver_factory(sim: Served) -> AsyncIterator[Callable[..., Any]]:
    """Start the operator and a RayDriver on the served cluster (stopped at teardown); a Ready
    system node is there."""
    sim.store.create(
        "nodes", ready_node("cn-hangzhou.172.16.0.2", cpu="4", memory="16Gi", labels=SYSTEM)
    )
    started: list[Any] = []

    async def start(cluster: RayClusterSpec, *groups: TaskGroup, seed: int = 0) -> RayDriver:
        operator, driver = await start_world(sim.cluster, cluster, groups, seed)
        started.extend((operator, driver))
        return driver

    try:
        yield start
    finally:
        for part in reversed(started):
            await part.stop()


def workers(sim: Any, group: str | None = None) -> list[dict[str, Any]]:
    pods, _ = sim.store.list("pods", namespace="ray")
    return [
        p
        for p in pods
        if p["metadata"]["labels"].get("ray.io/node-type") == "worker"
        and (group is None or p["metadata"]["labels"]["ray.io/group"] == group)
    ]


def running(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        p
        for p in pods
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    ]


async def test_head_pod_runs_no_tasks_and_lands_on_the_system_node(sim, driver_factory):
    """The head pod carries KubeRay head labels, num-cpus 0, and is bound to the system node."""
    driver = await driver_factory(cluster_spec())
    await sim.until(
        lambda: (
            driver.head_name
            and sim.store.get("pods", driver.head_name, namespace="ray")["spec"].get("nodeName")
        )
    )
    head = sim.store.get("pods", driver.head_name, namespace="ray")
    assert re.match(rf"^ray-test-head-{SUFFIX}$", head["metadata"]["name"])
    labels = head["metadata"]["labels"]
    assert (labels["ray.io/cluster"], labels["ray.io/node-type"], labels["ray.io/is-ray-node"]) == (
        "ray-test",
        "head",
        "yes",
    )
    assert "--num-cpus=0" in head["spec"]["containers"][0]["args"][0]
    assert head["spec"]["nodeName"] == "cn-hangzhou.172.16.0.2"


async def test_workers_are_created_up_to_demand_with_kuberay_labels(sim, driver_factory):
    """15 one-CPU tasks → 15 worker pods named <cluster>-<group>-worker-xxxxx, requests = limits."""
    await driver_factory(cluster_spec(), TaskGroup("sleep", count=15, duration_seconds=120))
    await sim.until(lambda: len(workers(sim)) == 15)
    for pod in workers(sim):
        meta = pod["metadata"]
        assert re.match(rf"^ray-test-workergroup-worker-{SUFFIX}$", meta["name"]), meta["name"]
        assert meta["labels"]["ray.io/cluster"] == "ray-test"
        assert meta["labels"]["ray.io/group"] == "workergroup"
        assert meta["labels"]["ray.io/node-type"] == "worker"
        assert meta["labels"]["ray.io/is-ray-node"] == "yes"
        assert meta["labels"]["team"] == "ml"
        assert meta["annotations"]["example.com/owner"] == "ml"
        resources = pod["spec"]["containers"][0]["resources"]
        assert resources["requests"] == resources["limits"] == {"cpu": "1", "memory": "1Gi"}
    await sim.clock.sleep(15)  # three more autoscaler periods: demand is met, no more pods
    assert len(workers(sim)) == 15


async def test_replicas_stop_at_max_replicas(sim, driver_factory):
    """Demand beyond maxReplicas leaves tasks queued rather than creating more pods."""
    capped = WorkerGroupSpec(
        name="workergroup", requests={"cpu": "1", "memory": "1Gi"}, max_replicas=4
    )
    driver = await driver_factory(
        cluster_spec(capped), TaskGroup("sleep", count=10, duration_seconds=300)
    )
    await sim.until(lambda: len(workers(sim)) == 4)
    await sim.clock.sleep(10)
    assert len(workers(sim)) == 4
    assert driver.replicas() == {"workergroup": 4}


async def test_tasks_run_on_running_workers_and_finish(sim, driver_factory):
    """With room on a node, every task runs on a Running worker within its CPUs and completes."""
    sim.store.create("nodes", ready_node("cn-hangzhou.172.16.0.3", cpu="16", memory="64Gi"))
    driver = await driver_factory(cluster_spec(), TaskGroup("sleep", count=6, duration_seconds=30))
    await until(lambda: driver.snapshot().tasks_running == 6)
    assert len(running(workers(sim))) == 6  # one 1-CPU task per 1-CPU worker
    await until(lambda: driver.finished(), timeout=10)
    assert driver.snapshot().tasks_done == 6
    timeline = driver.timeline()
    assert timeline[0].tasks_queued == 6
    assert timeline[-1].tasks_done == 6
    summary = driver.summary()
    assert (summary.tasks, summary.done, summary.failed, summary.pods_created) == (6, 6, 0, 6)
    assert summary.makespan_seconds is not None and summary.makespan_seconds >= 30
    assert 0 < summary.mean_wait_seconds <= summary.max_wait_seconds < summary.makespan_seconds


async def test_idle_workers_are_removed_after_the_timeout_but_not_below_min(sim, driver_factory):
    """After the tasks end, workers idle for idleTimeoutSeconds are deleted down to minReplicas."""
    sim.store.create("nodes", ready_node("cn-hangzhou.172.16.0.3", cpu="16", memory="64Gi"))
    group = WorkerGroupSpec(
        name="workergroup",
        requests={"cpu": "1", "memory": "1Gi"},
        min_replicas=1,
        max_replicas=10,
        replicas=1,
        idle_timeout_seconds=20,
    )
    driver = await driver_factory(
        cluster_spec(group), TaskGroup("sleep", count=5, duration_seconds=20)
    )
    await sim.until(lambda: len(running(workers(sim))) == 5)
    await until(lambda: driver.finished(), timeout=10)
    finished_at = sim.clock.now()
    await sim.until(lambda: len(workers(sim)) == 1, timeout=10)
    assert sim.clock.now() - finished_at >= 20 - 5  # not before the idle timeout (± one period)
    assert driver.replicas() == {"workergroup": 1}
    await sim.clock.sleep(40)
    assert len(workers(sim)) == 1


async def test_gpu_tasks_scale_the_gpu_group_and_cpu_tasks_the_cpu_group(sim, driver_factory):
    """A task needing a GPU gets a GPU worker; CPU-only tasks do not take GPU workers."""
    await driver_factory(
        cluster_spec(CPU_GROUP, GPU_GROUP),
        TaskGroup("train", count=2, num_cpus=2, num_gpus=1, duration_seconds=60),
        TaskGroup("prep", count=3, num_cpus=1, duration_seconds=60),
    )
    await sim.until(lambda: len(workers(sim)) == 5)
    gpu = workers(sim, "gpu")
    assert len(gpu) == 2
    assert len(workers(sim, "workergroup")) == 3
    spec = gpu[0]["spec"]
    assert spec["nodeSelector"] == {"accelerator": "a10"}
    assert spec["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"


async def test_evicted_worker_is_replaced_and_its_task_rerun(sim, driver_factory):
    """Deleting a busy worker re-queues its task; KubeRay recreates a pod for the replica."""
    sim.store.create("nodes", ready_node("cn-hangzhou.172.16.0.3", cpu="16", memory="64Gi"))
    driver = await driver_factory(cluster_spec(), TaskGroup("sleep", count=2, duration_seconds=300))
    await until(lambda: driver.snapshot().tasks_running == 2)
    victim = running(workers(sim))[0]["metadata"]["name"]
    sim.store.delete("pods", victim, namespace="ray")
    await until(
        lambda: (
            len(running(workers(sim))) == 2
            and victim not in {p["metadata"]["name"] for p in workers(sim)}
            and driver.snapshot().tasks_running == 2
        )
    )
    assert driver.snapshot().tasks_failed == 0


async def test_the_same_seed_gives_the_same_pod_names():
    """Two worlds with one seed over fresh clusters name their pods identically."""
    names = []
    for _ in range(2):
        async with SimCluster(speed=100) as cluster:
            parts = await start_world(
                cluster, cluster_spec(), (TaskGroup("sleep", count=5, duration_seconds=60),), 42
            )
            try:
                await store_until(
                    cluster.store,
                    lambda c=cluster: len(c.store.list("pods", namespace="ray")[0]) == 6,
                )
                pods, _ = cluster.store.list("pods", namespace="ray")
                names.append(sorted(p["metadata"]["name"] for p in pods))
            finally:
                for part in reversed(parts):
                    await part.stop()
    assert len(names[0]) == 6
    assert names[0] == names[1]


async def test_custom_resource_tasks_scale_the_group_that_offers_them(sim, driver_factory):
    """Tasks asking for a custom resource get workers of the group advertising it (hostPath pods)."""
    hostpath = WorkerGroupSpec(
        name="hostpath",
        requests={"cpu": "2", "memory": "4Gi"},
        max_replicas=5,
        host_path=True,
        privileged=True,
        custom_resources={"hostdata": 1},
    )
    plain = WorkerGroupSpec(name="plain", requests={"cpu": "2", "memory": "4Gi"}, max_replicas=5)
    await driver_factory(
        cluster_spec(hostpath, plain),
        TaskGroup("io", count=2, num_cpus=2, duration_seconds=60, resources={"hostdata": 1}),
        TaskGroup("cpu", count=3, num_cpus=2, duration_seconds=60),
    )
    await sim.until(lambda: len(workers(sim)) == 5)
    assert len(workers(sim, "hostpath")) == 2
    assert len(workers(sim, "plain")) == 3
    pod = workers(sim, "hostpath")[0]
    assert pod["spec"]["volumes"][0]["hostPath"] == {"path": "/mnt/data"}
    container = pod["spec"]["containers"][0]
    assert container["securityContext"] == {"privileged": True}
    assert "--resources='{\"hostdata\": 1}'" in container["args"][0]
