"""The RayCluster watch loop (the agent's `Watcher` on ray.io/v1 rayclusters, through
kubernetes-asyncio's CustomObjectsApi) against the simulated API server behind a proxy that can
go silent: a 410 on resume re-LISTs, and RayClusters created, changed or deleted while the watch
was down end up in the demand as they are on the server."""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

from agent.clients.kube import RAYCLUSTERS, KubeClient
from agent.ingest.rayclusters import RayClusterDemand
from agent.ingest.watching import EXPIRED, TIMEOUT, Backoff, Watcher, WatchTarget
from tests.agent.test_watch_resilience import Api, api  # noqa: F401 (the fixture)
from tests.support.builders import build_test_raycluster
from tests.support.waiting import until

NS = "default"


def add_cluster(api: Api, name: str, replicas: int) -> None:  # noqa: F811
    api.store.create(
        "rayclusters", build_test_raycluster(name, namespace=NS, replicas=replicas), namespace=NS
    )


def set_replicas(api: Api, name: str, replicas: int) -> None:  # noqa: F811
    def change(body: dict[str, Any]) -> None:
        body["spec"]["workerGroupSpecs"][0]["replicas"] = replicas

    api.store.mutate("rayclusters", name, change, namespace=NS)


def missing_by_cluster(demand: RayClusterDemand) -> dict[str, int]:
    counts: dict[str, int] = {}
    for worker in demand.missing():
        cluster = worker.labels["ray.io/cluster"]
        counts[cluster] = counts.get(cluster, 0) + 1
    return counts


async def test_expired_raycluster_watch_relists_and_reconciles(api: Api) -> None:  # noqa: F811
    add_cluster(api, "rc-a", 1)
    add_cluster(api, "rc-b", 1)
    demand = RayClusterDemand()
    client = await KubeClient.connect(api_url=api.url, request_timeout=5)
    watcher = Watcher(
        client,
        WatchTarget("rayclusters", RAYCLUSTERS, namespace=NS),
        sink=demand.sink,
        timeout_seconds=30,
        read_timeout=0.3,
        backoff=Backoff(initial=0.01, maximum=0.05),
        rng=random.Random(7),
    )
    task = asyncio.create_task(watcher.run())
    try:
        await asyncio.wait_for(watcher.synced.wait(), 10)
        assert missing_by_cluster(demand) == {"rc-a": 1, "rc-b": 1}
        set_replicas(api, "rc-a", 2)
        await until(lambda: missing_by_cluster(demand) == {"rc-a": 2, "rc-b": 1})
        api.proxy.freeze()
        await until(lambda: watcher.restarts[TIMEOUT] >= 1)
        set_replicas(api, "rc-a", 4)
        api.store.delete("rayclusters", "rc-b", namespace=NS)
        add_cluster(api, "rc-c", 3)
        api.store.compact()
        api.proxy.thaw()
        await until(lambda: missing_by_cluster(demand) == {"rc-a": 4, "rc-c": 3})
        assert watcher.restarts[EXPIRED] >= 1
        assert watcher.lists >= 2
        assert not task.done(), "the watch loop ended"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.close()
