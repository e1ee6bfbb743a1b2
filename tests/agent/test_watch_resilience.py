"""The watch loop against the simulated API server over real HTTP with kubernetes-asyncio: it
follows changes, survives cut streams, 410 Expired and a server that stops answering, and never
loses a pending pod."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from agent.clients.kube import KubeClient
from agent.ingest.view import ClusterView
from agent.ingest.watching import EXPIRED, TIMEOUT, Backoff, Watcher, WatchTarget
from agent.sim.faults import FaultPlan
from agent.sim.kube.apiserver import build_app
from agent.sim.kube.store import ObjectStore
from agent.sim.world.clock import SimClock
from tests.support.waiting import until

SELECTOR = "ray.io/node-type=worker"
UNBOUND = "spec.nodeName="
FAST_BACKOFF = Backoff(initial=0.01, maximum=0.05)


class FreezableProxy:
    """A TCP relay in front of the API server that can stop forwarding bytes while keeping every
    connection open — a server (or network path) that stops answering without a FIN."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream_port = upstream_port
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._upstream_port)
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()


@dataclass
class Api:
    store: ObjectStore
    faults: FaultPlan
    url: str
    proxy: FreezableProxy
    names: list[str] = field(default_factory=list)

    def add_pending(self, name: str, *, labels: dict[str, str] | None = None) -> str:
        pod = self.store.create(
            "pods",
            {
                "metadata": {
                    "name": name,
                    "namespace": "default",
                    "labels": labels or {"ray.io/node-type": "worker", "ray.io/cluster": "a"},
                },
                "spec": {"containers": [{"name": "w", "resources": {"requests": {"cpu": "1"}}}]},
                "status": {
                    "phase": "Pending",
                    "conditions": [
                        {
                            "type": "PodScheduled",
                            "status": "False",
                            "reason": "Unschedulable",
                            "message": "0/1 nodes are available: 1 Insufficient cpu.",
                            "lastTransitionTime": "2026-11-29T05:00:00Z",
                        }
                    ],
                },
            },
            namespace="default",
        )
        return str(pod["metadata"]["uid"])

    def bind(self, name: str) -> None:
        def change(pod: dict[str, Any]) -> None:
            pod["spec"]["nodeName"] = "n1"
            pod["status"]["conditions"] = [{"type": "PodScheduled", "status": "True"}]

        self.store.mutate("pods", name, change, namespace="default")

    def delete(self, name: str) -> None:
        self.store.delete("pods", name, namespace="default")

    def pending_uids(self) -> set[str]:
        items, _ = self.store.list("pods")
        return {
            p["metadata"]["uid"]
            for p in items
            if not p["spec"].get("nodeName")
            and (p.get("metadata", {}).get("labels") or {}).get("ray.io/node-type") == "worker"
        }


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    clock = SimClock(speed=1)
    store = ObjectStore(now=clock.iso)
    faults = FaultPlan()
    # open watch handlers would hold cleanup for their liveness check; cancel them instead
    runner = web.AppRunner(build_app(store, faults=faults, now=clock.now), shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    proxy = FreezableProxy(port)
    await proxy.start()
    try:
        yield Api(store, faults, f"http://127.0.0.1:{proxy.port}", proxy)
    finally:
        await proxy.stop()
        await runner.cleanup()


@contextlib.asynccontextmanager
async def watching(
    api: Api, *, read_timeout: float = 5.0, page_size: int = 500
) -> AsyncIterator[tuple[ClusterView, Watcher]]:
    view = ClusterView()
    client = await KubeClient.connect(api_url=api.url, request_timeout=5)
    watcher = Watcher(
        client,
        WatchTarget("pending-pods", "pods", label_selector=SELECTOR, field_selector=UNBOUND),
        sink=view.pods,
        page_size=page_size,
        timeout_seconds=30,
        read_timeout=read_timeout,
        backoff=FAST_BACKOFF,
        rng=random.Random(7),
    )
    task = asyncio.create_task(watcher.run())
    try:
        await asyncio.wait_for(watcher.synced.wait(), 10)
        yield view, watcher
        assert not task.done(), "the watch loop ended"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.close()


async def test_list_then_follow_changes(api: Api) -> None:
    """A paginated LIST fills the view; the watch then adds, binds away and deletes pods."""
    for i in range(7):
        api.add_pending(f"w{i}")
    api.add_pending("head", labels={"ray.io/node-type": "head"})
    async with watching(api, page_size=3) as (view, watcher):
        assert set(view.pending) == api.pending_uids()
        assert len(view.pending) == 7
        new = api.add_pending("w7")
        api.bind("w0")
        api.delete("w1")
        await until(lambda: set(view.pending) == api.pending_uids())
        assert new in view.pending
        assert watcher.restarts.total() == 0


async def test_cut_streams_resume_without_loss(api: Api) -> None:
    """The server closes the stream every few events; the loop resumes and sees every pod."""
    api.faults.watch_cut_every_events = 3
    async with watching(api) as (view, watcher):
        for i in range(25):
            api.add_pending(f"w{i}")
            await asyncio.sleep(0)
        for i in range(0, 25, 4):
            api.delete(f"w{i}")
        await until(lambda: set(view.pending) == api.pending_uids())
        assert watcher.restarts["eof"] >= 3
        assert watcher.lists == 1  # resumed from the last version each time, no re-LIST


async def test_expired_version_relists_and_reconciles_deletions(api: Api) -> None:
    """A 410 on resume re-LISTs: pods deleted while disconnected leave the view, new ones join."""
    uids = [api.add_pending(f"w{i}") for i in range(6)]
    async with watching(api, read_timeout=0.3) as (view, watcher):
        assert set(view.pending) == set(uids)
        api.proxy.freeze()
        await until(lambda: watcher.restarts[TIMEOUT] >= 1)
        api.delete("w0")
        api.delete("w1")
        api.bind("w2")
        added = api.add_pending("w9")
        api.store.compact()
        api.proxy.thaw()
        await until(lambda: set(view.pending) == api.pending_uids())
        assert watcher.restarts[EXPIRED] >= 1
        assert watcher.lists >= 2
        assert added in view.pending and uids[0] not in view.pending


async def test_silent_server_is_noticed_by_the_read_timeout(api: Api) -> None:
    """A silent connection is dropped at the read timeout; the watch reconnects and catches up."""
    async with watching(api, read_timeout=0.3) as (view, watcher):
        api.proxy.freeze()
        created = api.add_pending("during-silence")
        await until(lambda: watcher.restarts[TIMEOUT] >= 1)
        api.proxy.thaw()
        await until(lambda: created in view.pending)


async def test_unreachable_server_is_retried_with_backoff(api: Api) -> None:
    """Connection errors while the server is down are retried until it is back."""
    async with watching(api) as (view, watcher):
        await api.proxy.stop()
        port = api.proxy.port
        created = api.add_pending("while-down")
        await until(lambda: watcher.restarts.total() >= 2)
        # bring the relay back on the same port
        server = await asyncio.start_server(api.proxy._accept, "127.0.0.1", port)
        try:
            await until(lambda: created in view.pending)
        finally:
            server.close()


async def test_no_pending_pod_lost_under_cuts_and_expiry(api: Api) -> None:
    """Under random cuts and compaction, the view ends equal to the API's pending pods."""
    api.faults.watch_cut_every_events = 5
    rng = random.Random(3)
    live: list[str] = []
    async with watching(api, read_timeout=2) as (view, watcher):
        for step in range(120):
            if live and rng.random() < 0.3:
                name = live.pop(rng.randrange(len(live)))
                (api.delete if rng.random() < 0.5 else api.bind)(name)
            else:
                name = f"p{step}"
                api.add_pending(name)
                live.append(name)
            if step % 30 == 29:
                api.store.compact()
            if step % 7 == 0:
                await asyncio.sleep(0.005)
        await until(lambda: set(view.pending) == api.pending_uids())
        assert watcher.restarts["eof"] >= 1
        assert watcher.restarts[EXPIRED] >= 1, watcher.restarts


class FlakySink:
    """The view's pod sink, failing on one object the first time it sees it."""

    def __init__(self, view: ClusterView, poison: str) -> None:
        self._inner = view.pods
        self._poison = poison
        self.failed = False

    def key(self, obj: Any) -> str:
        return self._inner.key(obj)

    def apply(self, event_type: str, obj: Any) -> None:
        if obj["metadata"]["name"] == self._poison and not self.failed:
            self.failed = True
            raise RuntimeError("fold bug")
        self._inner.apply(event_type, obj)

    def relisted(self, keys: set[str]) -> None:
        self._inner.relisted(keys)


async def test_a_failing_fold_restarts_from_a_full_list(api: Api) -> None:
    """An exception while folding an event does not end the loop: it re-LISTs and catches up."""
    view = ClusterView()
    sink = FlakySink(view, "poison")
    client = await KubeClient.connect(api_url=api.url, request_timeout=5)
    watcher = Watcher(
        client,
        WatchTarget("pending-pods", "pods", label_selector=SELECTOR, field_selector=UNBOUND),
        sink=sink,
        timeout_seconds=30,
        read_timeout=5,
        backoff=FAST_BACKOFF,
        rng=random.Random(1),
    )
    task = asyncio.create_task(watcher.run())
    try:
        await asyncio.wait_for(watcher.synced.wait(), 10)
        api.add_pending("poison")
        api.add_pending("after")
        await until(lambda: set(view.pending) == api.pending_uids() and len(view.pending) == 2)
        assert sink.failed and watcher.restarts["internal_error"] == 1
        assert watcher.lists == 2
        assert not task.done()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.close()
