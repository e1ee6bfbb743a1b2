"""RayCluster-watch benchmark: Ray's autoscaler raises a worker group's `replicas` → the CS
emulator receives the write that asks for the first node, with the agent's RayCluster watch on
and off, for several operator pod-creation delays. p50 / p90 in real ms.

Everything is real HTTP on 127.0.0.1: the simulated API server (serving ray.io/v1 rayclusters)
and scheduler, the agent itself (agent.app.loop.Agent with its production batch window), the
in-process decider, and actuation through the CS SDK against the CS emulator.

This bench plays the KubeRay operator: `--delays` seconds after each replicas patch it POSTs the
missing worker pods (labels as KubeRay's common/pod.go labelPod sets them). KubeRay reconciles a
spec change at once (its controller watches RayClusters with GenerationChangedPredicate,
raycluster_controller.go SetupWithManager), so its pod creation takes the reconcile itself —
tens of milliseconds — unless a reconcile must come again: then it requeues after
`DefaultRequeueDuration`, 2 s (raycluster_controller.go). Hence the default delays 0.05 and 2.
The lead reruns this against the KubeRay operator stand-in of the embedded ACK.

Each trial raises replicas by one worker that needs a node of its own (3 vCPU on ecs.g7.xlarge)
while the nodes asked for earlier still boot (60-90 s at speed 1), so every trial causes exactly
one CS write. t0: just before the replicas PATCH is sent; t1: the node-pool service behind the
CS emulator is asked to raise desired.

Usage: python bench/raycluster_watch_bench.py [--trials 10] [--delays 0.05,2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import time
from typing import Any

for _proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_proxy, None)

import aiohttp  # noqa: E402
from cs_harness import timed_pool_behind_cs  # noqa: E402

from agent.actuate.actuation import Actuator  # noqa: E402
from agent.app.logs import configure_logging  # noqa: E402
from agent.app.loop import Agent  # noqa: E402
from agent.app.settings import AgentConfig  # noqa: E402
from agent.clients.kube import KubeClient  # noqa: E402
from agent.decide.deciders import LocalDecider  # noqa: E402
from agent.model import PoolBounds  # noqa: E402
from agent.sim.cluster import SimCluster  # noqa: E402

NS = "ray"
POOL = "np-cpu"
CLUSTER = "bench"
GROUP = "big-workers"
RAY_API = f"/apis/ray.io/v1/namespaces/{NS}/rayclusters"
WORKER_CONTAINER = {
    "name": "ray-worker",
    "image": "rayproject/ray:2.40.0",
    "resources": {"requests": {"cpu": "3", "memory": "4Gi"}},
}


def raycluster() -> dict[str, Any]:
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": CLUSTER, "namespace": NS},
        "spec": {
            "rayVersion": "2.40.0",
            "enableInTreeAutoscaling": True,
            "headGroupSpec": {
                "rayStartParams": {},
                "template": {"spec": {"containers": [{**WORKER_CONTAINER, "name": "ray-head"}]}},
            },
            "workerGroupSpecs": [
                {
                    "groupName": GROUP,
                    "replicas": 0,
                    "minReplicas": 0,
                    "maxReplicas": 1000,
                    "rayStartParams": {},
                    "scaleStrategy": {"workersToDelete": []},
                    "template": {"spec": {"containers": [WORKER_CONTAINER]}},
                }
            ],
        },
    }


def worker_pod(name: str) -> dict[str, Any]:
    """A worker as KubeRay creates it (labelPod's labels; the template's container)."""
    labels = {
        "ray.io/cluster": CLUSTER,
        "ray.io/group": GROUP,
        "ray.io/node-type": "worker",
        "ray.io/is-ray-node": "yes",
    }
    return {
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": {"containers": [WORKER_CONTAINER]},
    }


class Api:
    """The HTTP requests the autoscaler and the operator send."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self._session, self._url = session, url

    async def send(self, method: str, path: str, body: Any, content_type: str) -> None:
        async with self._session.request(
            method, self._url + path, data=json.dumps(body), headers={"Content-Type": content_type}
        ) as response:
            if response.status >= 300:
                raise RuntimeError(f"{method} {path}: {response.status} {await response.text()}")

    async def scale(self, replicas: int) -> None:
        """Ray's KubeRay node provider: a json-patch of the group's replicas."""
        ops = [{"op": "replace", "path": "/spec/workerGroupSpecs/0/replicas", "value": replicas}]
        await self.send("PATCH", f"{RAY_API}/{CLUSTER}", ops, "application/json-patch+json")

    async def create_worker(self, name: str) -> None:
        await self.send(
            "POST", f"/api/v1/namespaces/{NS}/pods", worker_pod(name), "application/json"
        )


async def run(*, watch: bool, delay: float, trials: int) -> list[float]:
    """Seconds from the replicas patch to the CS write asking for the worker's node."""
    async with (
        SimCluster(speed=1.0, namespaces=[NS]) as sim,
        contextlib.AsyncExitStack() as stack,
        aiohttp.ClientSession() as session,
    ):
        timed, cs = await timed_pool_behind_cs(stack, sim, POOL, max_size=trials + 10)
        api = Api(session, sim.url)
        await api.send("POST", RAY_API, raycluster(), "application/json")
        kube = await KubeClient.connect(api_url=sim.url)
        stack.push_async_callback(kube.close)
        config = AgentConfig(
            cluster_id="c-bench",
            region="cn-hangzhou",
            api_url=sim.url,
            resync_seconds=3600,
            pool_refresh_seconds=3600,
            max_new_nodes_per_decision=1000,
            raycluster_watch=watch,
            scale_in_enabled=False,
            managed_pools=(PoolBounds(POOL, 0, trials + 10),),
        )
        agent = Agent(
            config, kube=kube, pools=cs, decider=LocalDecider(), actuator=Actuator(cs, kube)
        )
        stop = asyncio.Event()
        agent_task = asyncio.create_task(agent.run(stop))
        try:
            await asyncio.sleep(0.2)  # the agent's start-up checks (pools, discovery)
            await asyncio.wait_for(
                asyncio.gather(*(w.synced.wait() for w in agent.all_watchers)), 10
            )
            latencies: list[float] = []
            for trial in range(1, trials + 1):
                raises = len(timed.raised_at)
                timed.raised.clear()
                started = time.perf_counter()
                await api.scale(trial)
                operator = asyncio.create_task(_operator(api, delay, f"{CLUSTER}-w{trial}"))
                await asyncio.wait_for(timed.raised.wait(), 30)
                latencies.append(timed.raised_at[raises][0] - started)
                await operator
                await asyncio.sleep(config.batch_max_seconds + 0.2)  # the pod's own round
            return latencies
        finally:
            stop.set()
            try:
                await asyncio.wait_for(agent_task, 10)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                agent_task.cancel()


async def _operator(api: Api, delay: float, name: str) -> None:
    await asyncio.sleep(delay)
    await api.create_worker(name)


def _row(label: str, delay: float, values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p90 = ms[min(len(ms) - 1, round(0.9 * (len(ms) - 1)))]
    return f"| {label} | {delay:g} | {statistics.median(ms):.0f} | {p90:.0f} | {len(ms)} |"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--delays", default="0.05,2", help="operator pod-creation delays, s")
    args = parser.parse_args()
    configure_logging(level=os.environ.get("BENCH_LOG_LEVEL", "warning"))
    print("| RayCluster watch | operator delay s | p50 ms | p90 ms | trials |")
    print("|---|---|---|---|---|")
    for delay in (float(d) for d in args.delays.split(",")):
        for watch in (True, False):
            latencies = await run(watch=watch, delay=delay, trials=args.trials)
            print(_row("on" if watch else "off", delay, latencies), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
