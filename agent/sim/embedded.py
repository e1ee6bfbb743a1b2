"""The embedded ACK: one scenario's whole simulated cloud on 127.0.0.1, as one async context.

`EmbeddedAck` composes the parts built elsewhere in `agent.sim`: the Kubernetes API server
(SimCluster), the scenario's world (system nodes, node pools, ECI, the Ray workload), and the
cloud emulators the agent reaches through the official SDKs — the CS node-pool API over the
world's pools and Function Compute (2.0 and 3.0 APIs, and each version's HTTP trigger, the 3.0
one on a port of its own as it has a domain of its own on FC) hosting `functions.fc` — plus a
credentials-URI endpoint issuing STS keys the emulators accept. Everything shares the scenario's fault plan.

It hands out only addresses and keys (`info()`), the same things an ACK cluster gives an
operator, so whatever is pointed at it — kubectl, the SDKs, the agent in dev mode — runs its
production code path. It never imports the agent.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml
from aiohttp import web

from agent.sim.cloud.credentials import (
    TEST_ACCESS_KEY_ID,
    TEST_ACCESS_KEY_SECRET,
    KeyRing,
    build_credentials_app,
    static_test_keys,
)
from agent.sim.cloud.cs_api import WriteRecord, build_cs_app, scale_requests_of, writes_of
from agent.sim.cloud.eventbridge import EventBridgeStandIn, EventRule
from agent.sim.cloud.fc_api import (
    FC_STATE,
    FcSettings,
    Handler,
    InvocationRecord,
    build_fc3_trigger_app,
    build_fc_app,
    http_trigger_path,
    invocations_of,
    invoke_from_trigger,
)
from agent.sim.cloud.fc_runtime import FcState, InvocationKind
from agent.sim.cloud.fc_timer import TimerTrigger
from agent.sim.cluster import SHUTDOWN_SECONDS, SimCluster
from agent.sim.faults import FaultPlan
from agent.sim.kube.kubeconfig import kubeconfig, write_kubeconfig
from agent.sim.scenario import Scenario, World, attach_world
from functions.fc import handler as fc_event_handler
from functions.fc import http_handler as fc_http_handler
from functions.fc import wsgi_handler as fc_wsgi_handler

FC_SERVICE = "ray-ack-scaler"
FC_FUNCTION = "decide"
RECONCILE_FUNCTION = "reconcile"  # agentless mode's function (template.yml ReconcileFunction)
# template.yml's ReconcileConcurrency (reserved concurrency) at instance concurrency 1
RECONCILE_MAX_CONCURRENCY = 2
# The account the emulated function lives in: handed to it as `context.account_id` and put in
# HTTP-trigger events. Callers never need it: they are given the endpoint itself.
FC_ACCOUNT_ID = "1234567890123456"


class ServedApp:
    """An aiohttp app on its own 127.0.0.1 port, as a SimCluster component."""

    def __init__(
        self, name: str, build: Callable[[], web.Application], *, host: str, port: int = 0
    ) -> None:
        self.name = name
        self._build = build  # built at start, inside the running loop
        self._host = host
        self._port = port
        self.app: web.Application | None = None
        self._runner: web.AppRunner | None = None
        self._endpoint: str | None = None

    @property
    def endpoint(self) -> str:
        """ "127.0.0.1:PORT", the form the Alibaba Cloud SDKs take as `Config.endpoint`."""
        if self._endpoint is None:
            raise RuntimeError(f"the {self.name} emulator is not started")
        return self._endpoint

    async def start(self) -> None:
        app = self._build()
        # handler_cancellation: a held request (an injected FC timeout) must not delay stopping.
        runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=SHUTDOWN_SECONDS
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self.app, self._runner = app, runner
        self._endpoint = f"{self._host}:{runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        self._endpoint = None

    def __repr__(self) -> str:
        return f"ServedApp({self.name!r})"


class EmbeddedAck:
    """A scenario's simulated ACK cluster with its CS and FC emulators, started and stopped as one.

    Start order: Kubernetes API server (with scheduler and kubelet), the scenario's world, then
    the cloud emulators; stop in reverse. `speed` and `seed` override the scenario's; with
    `faults=False` the scenario's fault plan is replaced by an empty one (still mutable through
    `.faults`, shared by every part).
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        speed: float | None = None,
        seed: int | None = None,
        faults: bool = True,
        host: str = "127.0.0.1",
        kubernetes_port: int = 0,
        cs_port: int = 0,
        fc_port: int = 0,
        credentials_port: int = 0,
        fc_service: str = FC_SERVICE,
        fc_function: str = FC_FUNCTION,
        reconcile: Handler | None = None,
        timer_interval_seconds: float = 60.0,
    ) -> None:
        if seed is not None:
            scenario = dataclasses.replace(scenario, seed=seed)
        self.scenario = scenario
        self.speed = scenario.speed if speed is None else float(speed)
        self.faults = scenario.fault_plan() if faults else FaultPlan(seed=scenario.seed)
        self.keys = KeyRing(static_test_keys())
        self.fc_service = fc_service
        self.fc_function = fc_function
        self.kubeconfig_path: Path | None = None
        self._host = host
        self.cluster = SimCluster(
            speed=self.speed, faults=self.faults, host=host, port=kubernetes_port
        )
        self.world: World = attach_world(scenario, self.cluster)
        self._cs = ServedApp("CS", self._build_cs, host=host, port=cs_port)
        self._fc = ServedApp("FC", self._build_fc, host=host, port=fc_port)
        self._fc_trigger = ServedApp("FC 3.0 HTTP trigger", self._build_fc_trigger, host=host)
        self._credentials = ServedApp(
            "credentials", self._build_credentials, host=host, port=credentials_port
        )
        # The trigger shares the FC app's function, so it starts after it.
        for emulator in (self._credentials, self._cs, self._fc, self._fc_trigger):
            self.cluster.add(emulator)
        self.timer: TimerTrigger | None = None
        self.eventbridge: EventBridgeStandIn | None = None
        self._reconcile_fc: ServedApp | None = None
        if reconcile is not None:
            self._add_agentless(reconcile, timer_interval_seconds)

    def _add_agentless(self, reconcile: Handler, interval: float) -> None:
        """Agentless mode: the reconcile function on an FC endpoint of its own (it is a function
        of its own, deployed from its own code package), its Timer trigger on simulated time and
        the EventBridge rule feeding it the scheduler's FailedScheduling Events."""
        settings = FcSettings(
            region=self.scenario.cluster.region,
            account_id=FC_ACCOUNT_ID,
            handler="index.reconcile",
            timeout_seconds=120,
            max_concurrency=RECONCILE_MAX_CONCURRENCY,
        )
        served = ServedApp(
            "FC reconcile",
            lambda: build_fc_app(
                reconcile,
                keys=self.keys,
                service=self.fc_service,
                function=RECONCILE_FUNCTION,
                faults=self.faults,
                now=self.cluster.clock.now,
                settings=settings,
                sleep=self.cluster.clock.sleep,
            ),
            host=self._host,
        )
        self._reconcile_fc = served

        def invoker(kind: InvocationKind) -> Callable[[bytes], Awaitable[Any]]:
            return lambda event: invoke_from_trigger(self._app(served), event, kind=kind)

        self.timer = TimerTrigger(self.cluster.clock, invoker("timer"), interval_seconds=interval)
        self.eventbridge = EventBridgeStandIn(
            self.cluster.store,
            self.cluster.clock,
            invoker("eventbridge"),
            region=self.scenario.cluster.region,
            account_id=FC_ACCOUNT_ID,
            cluster_id=self.scenario.cluster.cluster_id,
            rule=EventRule(namespaces=frozenset({self.scenario.ray.namespace})),
        )
        for part in (served, self.timer, self.eventbridge):
            self.cluster.add(part)

    # -- the emulators ----------------------------------------------------------------------------

    def _build_cs(self) -> web.Application:
        return build_cs_app(
            self.world.pools,
            keys=self.keys,
            faults=self.faults,
            now=self.cluster.clock.now,
            user_kubeconfig=self._user_kubeconfig,
        )

    def _user_kubeconfig(self) -> str:
        """What DescribeClusterUserKubeconfig hands out: the kubeconfig `write_kubeconfig`
        writes (the API server's address; over TLS its CA and token)."""
        tls = self.cluster.tls
        config = kubeconfig(
            self.kubernetes_url,
            ca_pem=None if tls is None else tls.ca_pem,
            token=None if tls is None else tls.token,
        )
        return yaml.safe_dump(config, sort_keys=False)

    def _build_fc(self) -> web.Application:
        # Both triggers are deployed as template.yml and s.yaml deploy them: signed (function).
        settings = FcSettings(
            region=self.scenario.cluster.region,
            account_id=FC_ACCOUNT_ID,
            handler="index.handler",
            http_auth="function",
        )
        return build_fc_app(
            fc_event_handler,
            keys=self.keys,
            service=self.fc_service,
            function=self.fc_function,
            faults=self.faults,
            http_handler=fc_http_handler,
            wsgi_handler=fc_wsgi_handler,
            now=self.cluster.clock.now,
            settings=settings,
        )

    def _build_fc_trigger(self) -> web.Application:
        return build_fc3_trigger_app(self._app(self._fc))

    def _build_credentials(self) -> web.Application:
        # alibabacloud-credentials checks Expiration against the host's wall clock, not ours.
        return build_credentials_app(self.keys, now=time.time)

    # -- lifetime -------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.cluster.start()

    async def stop(self) -> None:
        await self.cluster.stop()

    async def __aenter__(self) -> EmbeddedAck:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- where things are -----------------------------------------------------------------------

    @property
    def kubernetes_url(self) -> str:
        return self.cluster.url

    @property
    def cs_endpoint(self) -> str:
        return self._cs.endpoint

    @property
    def fc_endpoint(self) -> str:
        return self._fc.endpoint

    @property
    def http_trigger_url(self) -> str:
        """The FC 3.0 HTTP trigger (an event handler; ACS3-signed requests)."""
        return f"http://{self._fc_trigger.endpoint}/"

    @property
    def http_trigger_url_fc2(self) -> str:
        """The FC 2.0 HTTP trigger (a WSGI handler; `FC ak:signature` requests)."""
        return f"http://{self.fc_endpoint}{http_trigger_path(self.fc_service, self.fc_function)}"

    @property
    def credentials_uri(self) -> str:
        """An `ALIBABA_CLOUD_CREDENTIALS_URI` serving STS keys both emulators accept."""
        return f"http://{self._credentials.endpoint}/credentials"

    @property
    def region_id(self) -> str:
        return self.scenario.cluster.region

    @property
    def cluster_id(self) -> str:
        return self.scenario.cluster.cluster_id

    def write_kubeconfig(self, path: str | Path) -> Path:
        """Write a kubeconfig for the API server; `info()` reports the latest path written."""
        tls = self.cluster.tls  # with `sim serve --tls`: the CA to trust and the token to send
        self.kubeconfig_path = write_kubeconfig(
            self.kubernetes_url,
            path,
            ca_pem=None if tls is None else tls.ca_pem,
            token=None if tls is None else tls.token,
        )
        return self.kubeconfig_path

    def info(self) -> dict[str, Any]:
        """Where everything listens and the keys it accepts (the `sim serve --info-out` JSON, which
        `agent run --sim-info` reads). `url` is a service's full address with its scheme;
        `endpoint` the host:port alone, the form the Alibaba Cloud SDKs take as Config.endpoint
        (with protocol http)."""
        return {
            "kubernetes": {
                "url": self.kubernetes_url,
                "kubeconfig": None if self.kubeconfig_path is None else str(self.kubeconfig_path),
            },
            "cs": {
                "url": f"http://{self.cs_endpoint}",
                "endpoint": self.cs_endpoint,
                "regionId": self.region_id,
                "clusterId": self.cluster_id,
                "accessKeyId": TEST_ACCESS_KEY_ID,
                "accessKeySecret": TEST_ACCESS_KEY_SECRET,
                # The agent's managed_pools setting for the scenario's pools with ACK's own
                # autoscaling off (the ones the agent may manage), bounds as the scenario says.
                "managedPools": ",".join(
                    f"{p.pool_id}:{p.min_size}:{p.max_size}"
                    for p in self.scenario.pools
                    if not p.auto_scaling
                ),
            },
            "fc": {
                "url": f"http://{self.fc_endpoint}",
                "endpoint": self.fc_endpoint,
                "service": self.fc_service,  # FC 2.0 only: FC 3.0 functions have no service
                "function": self.fc_function,
                "accessKeyId": TEST_ACCESS_KEY_ID,
                "accessKeySecret": TEST_ACCESS_KEY_SECRET,
                "httpTriggerUrl": self.http_trigger_url,
                "httpTriggerUrlFc2": self.http_trigger_url_fc2,
            },
            "credentialsUri": self.credentials_uri,
            "eci": {
                "enabled": self.scenario.eci.enabled,
                "virtualNode": self.scenario.eci.node_name if self.scenario.eci.enabled else None,
            },
        }

    # -- what happened --------------------------------------------------------------------------

    def cs_writes(self) -> list[WriteRecord]:
        """Every write the CS emulator received (accepted or refused), oldest first."""
        return list(writes_of(self._app(self._cs)))

    def cs_scale_requests(self) -> list[WriteRecord]:
        """Accepted CS writes that changed a pool's size target."""
        return scale_requests_of(self._app(self._cs))

    def fc_invocations(self) -> list[InvocationRecord]:
        """Every run of the decision function (SDK invocations and HTTP trigger), oldest first."""
        return list(invocations_of(self._app(self._fc)))

    def reconcile_invocations(self) -> list[InvocationRecord]:
        """Every run of the reconcile function (agentless mode; [] without it), oldest first."""
        if self._reconcile_fc is None:
            return []
        return list(invocations_of(self._app(self._reconcile_fc)))

    def reconcile_fc_state(self) -> FcState | None:
        """The reconcile function's FC state (its concurrency and throttling; None without it)."""
        if self._reconcile_fc is None:
            return None
        return self._app(self._reconcile_fc)[FC_STATE]

    @staticmethod
    def _app(served: ServedApp) -> web.Application:
        if served.app is None:
            raise RuntimeError(f"the {served.name} emulator has not started")
        return served.app
