"""The simulated cluster as one object: clock, store, API server, scheduler, kubelet (with its node
Leases), node lifecycle controller, and whatever
other simulated parts (node pools, ECI, cloud emulators, workloads) are plugged into it.

Components are started in the order they were added, after the built-in ones, and stopped in
reverse, so a part may rely on everything added before it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Protocol

from aiohttp import web

from agent.sim.faults import FaultPlan
from agent.sim.kube.apiserver import build_app
from agent.sim.kube.authn import authenticator
from agent.sim.kube.in_cluster import InClusterAccess
from agent.sim.kube.store import ApiError, ObjectStore
from agent.sim.kube.tls import ServingCredentials
from agent.sim.world.clock import SimClock
from agent.sim.world.kubelet import Kubelet
from agent.sim.world.node_lifecycle import NodeLifecycle
from agent.sim.world.scheduler import Scheduler

log = logging.getLogger(__name__)

SHUTDOWN_SECONDS = 0.1


class SimComponent(Protocol):
    """A part of the simulated cluster with a lifetime."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class SimCluster:
    """A Kubernetes-compatible cluster on 127.0.0.1, driven by a simulated clock."""

    def __init__(
        self,
        *,
        speed: float = 1.0,
        faults: FaultPlan | None = None,
        start_time: float | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        namespaces: Iterable[str] = (),
        history_limit: int = 50_000,
    ) -> None:
        self.clock = SimClock(speed=speed, start=start_time)
        self.faults = faults if faults is not None else FaultPlan()
        self.store = ObjectStore(now=self.clock.iso, history_limit=history_limit)
        self.scheduler = Scheduler(self.store, self.clock)
        self.kubelet = Kubelet(self.store, self.clock, faults=self.faults)
        self.node_lifecycle = NodeLifecycle(self.store, self.clock)
        self._host = host
        self._port = port
        self._components: list[SimComponent] = []
        # (method, path) of every API request goes to each of these (see apiserver.build_app)
        self.request_listeners: list[Callable[[str, str], None]] = []
        self._started: list[SimComponent] = []
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self.tls: ServingCredentials | None = None
        for name in namespaces:
            self.add_namespace(name)

    @property
    def url(self) -> str:
        """The API server's base URL, e.g. http://127.0.0.1:41234, or https:// after `serve_tls`
        (once started)."""
        if self._url is None:
            raise RuntimeError("the simulated cluster is not started")
        return self._url

    def in_cluster_access(self) -> InClusterAccess:
        """What a pod of this cluster would be given to reach its API server (once started)."""
        if self.tls is None:
            return InClusterAccess(self.url)
        return InClusterAccess(self.url, self.tls.client_context(), self.tls.token)

    @property
    def port(self) -> int:
        return int(self.url.rpartition(":")[2])

    def add(self, component: SimComponent) -> SimComponent:
        """Plug in a part to start after the ones before it (and stop before them)."""
        if self._runner is not None:
            raise RuntimeError("add components before the cluster starts")
        self._components.append(component)
        return component

    def serve_tls(self, credentials: ServingCredentials) -> None:
        """Serve the API over HTTPS with these credentials, and ask every request for them (a
        client certificate or the bearer token: agent.sim.kube.authn). Before `start`."""
        if self._runner is not None:
            raise RuntimeError("choose TLS before the cluster starts")
        self.tls = credentials

    def add_namespace(self, name: str) -> None:
        """Create a namespace (default, kube-system, kube-public and kube-node-lease always exist)."""
        with contextlib.suppress(ApiError):  # already there
            self.store.create("namespaces", {"metadata": {"name": name}})

    async def start(self) -> None:
        """Serve the API, then start the scheduler, the kubelet and the added parts in order."""
        if self._runner is not None:
            return
        app = build_app(
            self.store,
            faults=self.faults,
            now=self.clock.now,
            request_listeners=self.request_listeners,
        )
        if self.tls is not None:
            # outermost: a request without credentials reaches neither the logs nor the faults
            app.middlewares.insert(0, authenticator(self.tls.token))
        # Watches never end on their own: on stop, give open requests a moment, then cancel them
        # (handler_cancellation) instead of aiohttp's default wait of a minute.
        runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=SHUTDOWN_SECONDS
        )
        await runner.setup()
        self._runner = runner
        try:
            context = None if self.tls is None else self.tls.server_context()
            site = web.TCPSite(runner, self._host, self._port, ssl_context=context)
            await site.start()
            scheme = "http" if context is None else "https"
            self._url = f"{scheme}://{self._host}:{runner.addresses[0][1]}"
            builtin: list[SimComponent] = [self.scheduler, self.kubelet, self.node_lifecycle]
            for component in (*builtin, *self._components):
                await component.start()
                self._started.append(component)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop the parts in reverse order, then the API server (open watches end)."""
        while self._started:
            component = self._started.pop()
            try:
                await component.stop()
            except Exception:  # the others must still stop
                log.exception("stopping %r failed", component)
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        self._url = None

    async def __aenter__(self) -> SimCluster:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
