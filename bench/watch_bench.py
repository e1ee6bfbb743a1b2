"""Watch benchmark for the simulated Kubernetes API server: events per second one watcher
receives (a raw aiohttp line reader, and kubernetes-asyncio's Watch with raw dicts and with
models), the time to LIST every pod, and the server's memory holding 50,000 pods (RSS growth
and tracemalloc bytes). The server runs in its own process, with its event producer, so the
client's parsing does not share its core. Prints a Markdown table and the command that made it.

    python bench/watch_bench.py            # 20,000 raw events, 50,000 pods
    python bench/watch_bench.py --quick    # 5,000 raw events, 10,000 pods
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import platform
import shlex
import sys
import time
import tracemalloc
from typing import Any

import aiohttp
from aiohttp import web

from agent.sim.kube.apiserver import build_app, serve
from agent.sim.kube.store import ObjectStore

NAMESPACE = "default"
PRODUCE_PATH = "/bench/produce"


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def worker_pod(index: int) -> dict[str, Any]:
    """A KubeRay worker pod as the simulator stores it once it runs (about 2.5 KB of JSON)."""
    name = f"raycluster-workergroup-worker-{index:06d}"
    return {
        "metadata": {
            "name": name,
            "labels": {
                "ray.io/cluster": "raycluster",
                "ray.io/group": "workergroup",
                "ray.io/node-type": "worker",
                "ray.io/is-ray-node": "yes",
                "app.kubernetes.io/created-by": "kuberay-operator",
            },
            "annotations": {"ray.io/ft-enabled": "false"},
            "ownerReferences": [
                {
                    "apiVersion": "ray.io/v1",
                    "kind": "RayCluster",
                    "name": "raycluster",
                    "uid": "6a1b1c8e-3c6e-4c2f-9a51-0c6f1f6f8a10",
                    "controller": True,
                }
            ],
        },
        "spec": {
            "containers": [
                {
                    "name": "ray-worker",
                    "image": "rayproject/ray:2.9.0",
                    "args": ["ray start --num-cpus=1 --address=raycluster-head-svc:6379 --block"],
                    "resources": {
                        "requests": {"cpu": "1", "memory": "1Gi"},
                        "limits": {"cpu": "1", "memory": "1Gi"},
                    },
                }
            ],
            "nodeName": f"cn-hangzhou.172.16.{index // 250}.{index % 250}",
        },
        "status": {
            "phase": "Running",
            "podIP": f"10.{index // 65536}.{index // 256 % 256}.{index % 256}",
            "conditions": [
                {
                    "type": t,
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
                for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
            ],
            "containerStatuses": [
                {
                    "name": "ray-worker",
                    "ready": True,
                    "restartCount": 0,
                    "started": True,
                    "image": "rayproject/ray:2.9.0",
                    "imageID": "",
                    "state": {"running": {"startedAt": "2026-01-01T00:00:05Z"}},
                }
            ],
        },
    }


def fill(store: ObjectStore, pods: int) -> None:
    for index in range(pods):
        store.create("pods", worker_pod(index), namespace=NAMESPACE)


# -- the server process ----------------------------------------------------------------------


async def _serve(pods: int, urls: Any, stop: Any) -> None:
    store = ObjectStore(now=_now_iso)
    fill(store, pods)
    app = build_app(store)

    async def produce(request: web.Request) -> web.Response:
        count = int(request.query["n"])

        async def run() -> None:
            for index in range(count):
                name = f"raycluster-workergroup-worker-{index % pods:06d}"
                store.mutate(
                    "pods", name,
                    lambda p, i=index: p["metadata"]["annotations"].__setitem__("bench/seq", str(i)),
                    namespace=NAMESPACE,
                )  # fmt: skip
                if index % 64 == 63:
                    await asyncio.sleep(0)  # let the watch streams write

        asyncio.get_running_loop().create_task(run())
        return web.json_response({"rv": store.resource_version})

    app.router.add_post(PRODUCE_PATH, produce)
    runner, url = await serve(app)
    urls.put(url)
    await asyncio.get_running_loop().run_in_executor(None, stop.wait)
    await runner.cleanup()


def server_main(pods: int, urls: Any, stop: Any) -> None:
    asyncio.run(_serve(pods, urls, stop))


# -- the watchers ----------------------------------------------------------------------------


async def _start_rv(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(f"{url}/api/v1/namespaces/{NAMESPACE}/pods", params={"limit": "1"}) as r:
        return str((await r.json())["metadata"]["resourceVersion"])


async def raw_watch(url: str, events: int) -> float:
    """Events/s read as lines by aiohttp and parsed with json.loads."""
    async with aiohttp.ClientSession(trust_env=False) as session:
        rv = await _start_rv(session, url)
        params = {"watch": "1", "resourceVersion": rv}
        async with session.get(
            f"{url}/api/v1/namespaces/{NAMESPACE}/pods", params=params
        ) as response:
            async with session.post(f"{url}{PRODUCE_PATH}", params={"n": str(events)}) as r:
                await r.read()
            received = 0
            first = last = 0.0
            while received < events:
                line = await asyncio.wait_for(response.content.readline(), 30)
                if not line:
                    raise RuntimeError("watch ended early")
                event = json.loads(line)
                assert event["type"] == "MODIFIED"
                received += 1
                last = time.perf_counter()
                if received == 1:
                    first = last
    return (events - 1) / (last - first)


async def client_watch(url: str, events: int, *, models: bool) -> float:
    """Events/s through kubernetes-asyncio's Watch, as raw dicts or as V1Pod models."""
    from kubernetes_asyncio import client, watch

    configuration = client.Configuration(host=url)
    configuration.proxy = None
    async with client.ApiClient(configuration) as api_client:
        core = client.CoreV1Api(api_client)
        listed = await core.list_namespaced_pod(NAMESPACE, limit=1)
        async with aiohttp.ClientSession(trust_env=False) as session:
            w = watch.Watch() if models else watch.Watch(return_type="object")
            async with w:
                stream = w.stream(
                    core.list_namespaced_pod, NAMESPACE,
                    resource_version=listed.metadata.resource_version, timeout_seconds=120,
                )  # fmt: skip
                received = 0
                first = last = 0.0
                produced = False
                iterator = stream.__aiter__()
                while received < events:
                    if not produced:
                        # the first read opens the stream; produce once it is open
                        pending = asyncio.ensure_future(iterator.__anext__())
                        await asyncio.sleep(0.2)
                        async with session.post(
                            f"{url}{PRODUCE_PATH}", params={"n": str(events)}
                        ) as r:
                            await r.read()
                        produced = True
                        event = await asyncio.wait_for(pending, 30)
                    else:
                        event = await asyncio.wait_for(iterator.__anext__(), 30)
                    assert event["type"] == "MODIFIED"
                    received += 1
                    last = time.perf_counter()
                    if received == 1:
                        first = last
    return (events - 1) / (last - first)


async def list_all(url: str) -> tuple[float, int]:
    """Seconds for one unpaginated LIST of every pod, parsed with json.loads."""
    async with aiohttp.ClientSession(trust_env=False) as session:
        start = time.perf_counter()
        async with session.get(f"{url}/api/v1/pods") as response:
            body = json.loads(await response.read())
        return time.perf_counter() - start, len(body["items"])


# -- memory ----------------------------------------------------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def memory_main(pods: int, results: Any) -> None:
    gc.collect()
    rss_before = _rss_bytes()
    store = ObjectStore(now=_now_iso)
    fill(store, pods)
    gc.collect()
    rss_after = _rss_bytes()
    del store
    gc.collect()
    tracemalloc.start()
    store = ObjectStore(now=_now_iso)
    fill(store, pods)
    gc.collect()
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    results.put((rss_after - rss_before, traced))


# -- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events and pods")
    args = parser.parse_args(argv)
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        os.environ.pop(name, None)
    raw_events = 5_000 if args.quick else 20_000
    client_events = 2_000 if args.quick else 5_000
    memory_pods = 10_000 if args.quick else 50_000
    watch_pods = 1_000

    context = multiprocessing.get_context("spawn")
    rows: list[tuple[str, str]] = []

    urls, stop = context.Queue(), context.Event()
    server = context.Process(target=server_main, args=(watch_pods, urls, stop), daemon=True)
    server.start()
    try:
        url = urls.get(timeout=60)
        raw = asyncio.run(raw_watch(url, raw_events))
        rows.append(
            (
                f"raw aiohttp line reader + json.loads ({raw_events:,} events)",
                f"{raw:,.0f} events/s",
            )
        )
        dicts = asyncio.run(client_watch(url, client_events, models=False))
        rows.append(
            (
                f"kubernetes-asyncio Watch, raw dicts ({client_events:,} events)",
                f"{dicts:,.0f} events/s",
            )
        )
        models = asyncio.run(client_watch(url, client_events // 5, models=True))
        rows.append(
            (
                f"kubernetes-asyncio Watch, V1Pod models ({client_events // 5:,} events)",
                f"{models:,.0f} events/s",
            )
        )
    finally:
        stop.set()
        server.join(10)

    urls, stop = context.Queue(), context.Event()
    server = context.Process(target=server_main, args=(memory_pods, urls, stop), daemon=True)
    server.start()
    try:
        url = urls.get(timeout=300)
        seconds, count = asyncio.run(list_all(url))
        rows.append(
            (f"LIST of {count:,} pods, unpaginated (client parse included)", f"{seconds:.2f} s")
        )
    finally:
        stop.set()
        server.join(10)

    results = context.Queue()
    measure = context.Process(target=memory_main, args=(memory_pods, results), daemon=True)
    measure.start()
    rss, traced = results.get(timeout=600)
    measure.join(10)
    rows.append(
        (
            f"store holding {memory_pods:,} pods: RSS growth",
            f"{rss / 2**20:,.0f} MiB ({rss / memory_pods / 1024:.1f} KiB/pod)",
        )
    )
    rows.append(
        (
            f"store holding {memory_pods:,} pods: tracemalloc",
            f"{traced / 2**20:,.0f} MiB ({traced / memory_pods / 1024:.1f} KiB/pod)",
        )
    )

    print(
        f"Watch benchmark — {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}\n"
    )
    print("| measurement | result |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print(
        f"\nCommand: `{shlex.join([sys.executable.rsplit('/', 1)[-1], 'bench/watch_bench.py', *sys.argv[1:]])}`"
    )


if __name__ == "__main__":
    main()
