"""Reaction-latency benchmark: the scheduler writes a pod's Unschedulable condition → the CS
emulator receives the ModifyClusterNodePool that serves it. p50 / p99 per decider, one run.

Everything is real HTTP on 127.0.0.1: the simulated API server and scheduler, the agent itself
(agent.app.loop.Agent: watches, view, batching, request builder, decider, actuation), the decider
(in-process, or the FC emulator through the FC SDK), and actuation through the CS SDK against the
CS emulator over the simulated node pools.

Each trial creates one worker pod that needs a node of its own (3 vCPU on ecs.g7.xlarge) while the
nodes asked for earlier are still booting, so every trial causes exactly one CS write. t0 is the
moment the store publishes the Unschedulable condition (the scheduler's write), t1 the moment the
node-pool service behind the CS emulator is asked to raise desired.

Usage: python bench/reaction_bench.py [--trials 40] [--idle 0.2] [--max 2.0] [--deciders local,fc]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

for _proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_proxy, None)


from cs_harness import TimedPools, serve, timed_pool_behind_cs  # noqa: E402

from agent.actuate.actuation import Actuator  # noqa: E402
from agent.app.logs import configure_logging  # noqa: E402
from agent.app.loop import Agent  # noqa: E402
from agent.app.settings import AgentConfig  # noqa: E402
from agent.clients.fc import FunctionInvoker, FunctionRef  # noqa: E402
from agent.clients.fc import build_sdk_client as build_fc_sdk  # noqa: E402
from agent.clients.kube import KubeClient  # noqa: E402
from agent.decide.deciders import Decider, FunctionComputeDecider, LocalDecider  # noqa: E402
from agent.model import PoolBounds  # noqa: E402
from agent.sim.cloud.credentials import TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET, static_test_keys  # noqa: E402
from agent.sim.cloud.fc_api import build_fc_app  # noqa: E402
from agent.sim.cluster import SimCluster  # noqa: E402
from functions import fc  # noqa: E402

NS = "ray"
POOL = "np-cpu"


def worker(name: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": {"ray.io/node-type": "worker", "ray.io/cluster": "bench"},
        },
        "spec": {
            "containers": [
                {
                    "name": "ray-worker",
                    "image": "rayproject/ray:2.9.0",
                    "resources": {"requests": {"cpu": "3", "memory": "4Gi"}},
                }
            ]
        },
    }


def unschedulable(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


@contextlib.asynccontextmanager
async def _world(
    decider_kind: str, *, idle: float, max_window: float, max_nodes: int
) -> AsyncIterator[tuple[SimCluster, TimedPools, asyncio.Event]]:
    """The simulated cluster, the CS (and FC) emulators and a running Agent."""
    async with SimCluster(speed=1.0, namespaces=[NS]) as sim, contextlib.AsyncExitStack() as stack:
        timed, cs = await timed_pool_behind_cs(stack, sim, POOL, max_size=max_nodes)
        decider: Decider = LocalDecider()
        if decider_kind == "fc":
            fc_endpoint = await stack.enter_async_context(
                serve(
                    build_fc_app(
                        fc.handler,
                        keys=static_test_keys(),
                        service="ray-ack-scaler",
                        function="decide",
                        now=time.time,
                    )
                )
            )
            sdk = build_fc_sdk(
                region_id="cn-hangzhou",
                endpoint=fc_endpoint,
                protocol="http",
                access_key_id=TEST_ACCESS_KEY_ID,
                access_key_secret=TEST_ACCESS_KEY_SECRET,
            )
            decider = FunctionComputeDecider(
                FunctionInvoker(sdk, FunctionRef("ray-ack-scaler", "decide"))
            )
        kube = await KubeClient.connect(api_url=sim.url)
        stack.push_async_callback(kube.close)
        config = AgentConfig(
            cluster_id="c-bench",
            region="cn-hangzhou",
            api_url=sim.url,
            batch_idle_seconds=idle,
            batch_max_seconds=max_window,
            resync_seconds=3600,
            pool_refresh_seconds=3600,
            pod_selector="ray.io/node-type=worker",
            max_new_nodes_per_decision=1000,
            # the agent scales only the pools it is given (managed_pools)
            managed_pools=(PoolBounds(POOL, 0, max_nodes),),
        )
        agent = Agent(config, kube=kube, pools=cs, decider=decider, actuator=Actuator(cs, kube))
        stop = asyncio.Event()
        agent_task = asyncio.create_task(agent.run(stop))
        try:
            await asyncio.wait_for(asyncio.gather(*(w.synced.wait() for w in agent.watchers)), 10)
            yield sim, timed, stop
        finally:
            stop.set()
            try:
                await asyncio.wait_for(agent_task, 10)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                agent_task.cancel()


async def run(decider_kind: str, *, trials: int, idle: float, max_window: float) -> list[float]:
    """One pod per trial, each needing a node of its own: Unschedulable → CS write, in seconds."""
    async with _world(decider_kind, idle=idle, max_window=max_window, max_nodes=trials + 10) as (
        sim,
        timed,
        _stop,
    ):
        reactions: list[float] = []
        subscription = sim.store.subscribe()
        try:
            for i in range(trials):
                name = f"bench-worker-{i:04d}"
                writes_before = len(timed.raised_at)
                sim.store.create("pods", worker(name), namespace=NS)
                t0 = None
                while t0 is None:
                    for event in await asyncio.wait_for(subscription.next_batch(), 10):
                        if (
                            event.resource == "pods"
                            and event.object["metadata"]["name"] == name
                            and unschedulable(event.object)
                        ):
                            t0 = time.perf_counter()
                deadline = time.perf_counter() + 10
                while len(timed.raised_at) == writes_before:
                    if time.perf_counter() > deadline:
                        raise TimeoutError(f"no CS write for {name}")
                    await asyncio.sleep(0.001)
                reactions.append(timed.raised_at[writes_before][0] - t0)
                subscription.drain()
                await asyncio.sleep(idle + 0.05)  # let the window close before the next trial
        finally:
            subscription.close()
        return reactions


async def burst(
    decider_kind: str, *, pods: int, idle: float, max_window: float
) -> dict[str, float]:
    """`pods` 1-vCPU workers created at once; seconds from the last create to the write that asks
    for every node they need (3 per ecs.g7.xlarge), and how many writes it took."""
    needed = -(-pods // 3)
    async with _world(decider_kind, idle=idle, max_window=max_window, max_nodes=needed + 10) as (
        sim,
        timed,
        _stop,
    ):
        body = worker("x")
        body["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "1"
        started = time.perf_counter()
        for i in range(pods):
            body["metadata"]["name"] = f"burst-worker-{i:05d}"
            sim.store.create("pods", body, namespace=NS)
            if i % 100 == 99:
                await asyncio.sleep(
                    0
                )  # let the watch keep up, as a real apiserver would interleave
        last_created = time.perf_counter()
        deadline = last_created + 60
        while not timed.raised_at or timed.raised_at[-1][1] < needed:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"desired never reached {needed}: {timed.raised_at[-3:]}")
            await asyncio.sleep(0.005)
        return {
            "create_seconds": last_created - started,
            "applied_after": timed.raised_at[-1][0] - last_created,
            "writes": len(timed.raised_at),
            "desired": timed.raised_at[-1][1],
        }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--idle", type=float, default=0.2, help="batch idle window, seconds")
    parser.add_argument("--max", type=float, default=2.0, help="batch max window, seconds")
    parser.add_argument("--deciders", default="local,fc")
    parser.add_argument("--burst", type=int, default=1000, help="pods in the burst run (0: skip)")
    args = parser.parse_args()
    configure_logging(level="warning")
    target_ms = (args.idle + 0.1) * 1000
    print(
        f"reaction: Unschedulable written → CS ModifyClusterNodePool received "
        f"({args.trials} trials, idle {args.idle}s / max {args.max}s; target p99 ≤ {target_ms:.0f} ms)"
    )
    for kind in args.deciders.split(","):
        values = asyncio.run(run(kind, trials=args.trials, idle=args.idle, max_window=args.max))
        ms = [v * 1000 for v in values]
        p99 = percentile(ms, 0.99)
        print(
            f"  {kind:6s} p50 {percentile(ms, 0.5):7.1f} ms   p99 {p99:7.1f} ms   "
            f"min {min(ms):6.1f}   max {max(ms):6.1f}   mean {statistics.fmean(ms):6.1f}   "
            f"{'meets' if p99 <= target_ms else 'MISSES'} target"
        )
    if args.burst:
        print(f"burst: {args.burst} pods created at once → the write asking for all their nodes")
        for kind in args.deciders.split(","):
            r = asyncio.run(burst(kind, pods=args.burst, idle=args.idle, max_window=args.max))
            print(
                f"  {kind:6s} created in {r['create_seconds']:.2f}s; decision applied "
                f"{r['applied_after'] * 1000:.0f} ms after the last create "
                f"(desired {r['desired']}, {r['writes']} CS write(s))"
            )


if __name__ == "__main__":
    main()
