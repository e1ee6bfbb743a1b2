"""Fixtures shared by the simulator's tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes_asyncio import client

from agent.sim.cluster import SimCluster
from agent.sim.faults import FaultPlan
from agent.sim.kube.apiserver import build_app, serve
from agent.sim.kube.kubeconfig import write_kubeconfig
from agent.sim.kube.store import ObjectStore
from agent.sim.world.clock import SimClock, parse_iso
from agent.sim.world.kubelet import Kubelet
from agent.sim.world.scheduler import Scheduler
from tests.support.network import client_environment
from tests.support.waiting import store_until


@dataclass
class SimCore:
    """Store, scheduler and kubelet on a fast simulated clock, without the HTTP server."""

    clock: SimClock
    store: ObjectStore
    scheduler: Scheduler
    kubelet: Kubelet

    async def until(self, predicate: Callable[[], object], *, timeout: float = 5.0) -> None:
        """Wait (bounded, in real seconds) until `predicate()` holds after some store change."""
        await store_until(self.store, predicate, timeout=timeout)

    @staticmethod
    def parse(timestamp: str) -> float:
        return parse_iso(timestamp)


@pytest.fixture
async def sim() -> AsyncIterator[SimCore]:
    """Scheduler and kubelet over an in-process store, simulated time 100× real time."""
    clock = SimClock(speed=100)
    store = ObjectStore(now=clock.iso)
    core = SimCore(clock, store, Scheduler(store, clock), Kubelet(store, clock))
    await core.scheduler.start()
    await core.kubelet.start()
    try:
        yield core
    finally:
        await core.kubelet.stop()
        await core.scheduler.stop()


@pytest.fixture
def clean_env() -> dict[str, str]:
    """The environment for client subprocesses: no proxy may intercept 127.0.0.1."""
    return client_environment()


@pytest.fixture
async def sim_cluster() -> AsyncIterator[SimCluster]:
    """A whole simulated cluster serving HTTP on 127.0.0.1, simulated time 50× real time."""
    async with SimCluster(speed=50) as cluster:
        yield cluster


@pytest.fixture
def until(sim_cluster: SimCluster) -> Callable[..., Awaitable[None]]:
    """`await until(predicate)`: bounded wait on `sim_cluster`'s store."""

    async def wait(predicate: Callable[[], object], *, timeout: float = 5.0) -> None:
        await store_until(sim_cluster.store, predicate, timeout=timeout)

    return wait


@pytest.fixture
async def core_api(sim_cluster: SimCluster) -> AsyncIterator[client.CoreV1Api]:
    """kubernetes-asyncio's CoreV1Api pointed at `sim_cluster`, ignoring any proxy."""
    configuration = client.Configuration(host=sim_cluster.url)
    configuration.proxy = None
    async with client.ApiClient(configuration) as api_client:
        yield client.CoreV1Api(api_client)


@pytest.fixture
def kubectl(
    sim_cluster: SimCluster, tmp_path: Path, clean_env: dict[str, str]
) -> Callable[..., Awaitable[asyncio.subprocess.Process]]:
    """`await kubectl(*args)` starts /usr/bin/kubectl against `sim_cluster` (stdout piped)."""
    kubeconfig = write_kubeconfig(sim_cluster.url, tmp_path / "kubeconfig")
    cache = tmp_path / "kube-cache"

    async def run(*args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            "kubectl", "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache), *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=clean_env,
        )  # fmt: skip

    return run


# -- the API server alone: no scheduler or kubelet, so objects change only when a test says so --


@dataclass
class ApiServer:
    """The simulated API server over a bare store, with its fault plan and URL."""

    store: ObjectStore
    faults: FaultPlan
    clock: SimClock
    url: str


@pytest.fixture
async def api_server() -> AsyncIterator[ApiServer]:
    """The API server alone on 127.0.0.1:0 (simulated clock at real speed)."""
    clock = SimClock(speed=1)
    store = ObjectStore(now=clock.iso)
    faults = FaultPlan()
    runner, url = await serve(build_app(store, faults=faults, now=clock.now))
    try:
        yield ApiServer(store, faults, clock, url)
    finally:
        await runner.cleanup()


@pytest.fixture
async def api_client(api_server: ApiServer) -> AsyncIterator[client.ApiClient]:
    """A kubernetes-asyncio ApiClient for `api_server`, ignoring any proxy."""
    # its aiohttp session trusts the environment: the root no_proxies fixture cleared it
    configuration = client.Configuration(host=api_server.url)
    configuration.proxy = None
    async with client.ApiClient(configuration) as api_client:
        yield api_client


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    """CoreV1Api against `api_server`."""
    return client.CoreV1Api(api_client)
