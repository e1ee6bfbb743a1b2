"""The operations endpoints: an aiohttp server with /healthz, /readyz, /status (JSON, read by
`python -m agent status`) and /metrics (Prometheus text format).

None of them is authenticated, so the ops listener binds 127.0.0.1 by default (`kubectl exec`
and `kubectl port-forward` reach it). The kubelet's probes and Prometheus reach the pod IP: they
get a second listener only when one is configured (`--probe-address`), and it serves /healthz,
/readyz and /metrics only — never /status. /status redacts pod names and error texts (which can
quote a decider's or the CS API's error body) unless `--status-details` is set.

It reads state through the small `StatusSource` protocol, so it knows nothing of how the agent
is wired.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
from collections.abc import AsyncIterator, Collection
from typing import Any, Protocol

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from agent.app.settings import AgentConfig
from agent.metrics import AgentMetrics

log = structlog.get_logger(__name__)

ALL_ENDPOINTS = ("/healthz", "/readyz", "/status", "/metrics")
PROBE_ENDPOINTS = ("/healthz", "/readyz", "/metrics")  # what may face the pod network
REDACTED = "(redacted: --status-details shows it)"
# Keys of the status document whose text names pods (`namespace/name`) or quotes an error
# (a decider's reply body, a CS API message, an exception text). Counts under them stay.
POD_KEYS = frozenset({"pod", "pods"})
TEXT_KEYS = frozenset({"error", "lastError", "message"})


class StatusSource(Protocol):
    def healthy(self) -> bool: ...

    def ready(self) -> bool: ...

    def status(self) -> dict[str, Any]: ...


def redact_status(document: Any) -> Any:
    """The status document without pod names and error texts: each such string becomes
    REDACTED; numbers, timestamps, pool ids and the document's shape stay."""
    if isinstance(document, dict):
        return {key: _redact_value(key, value) for key, value in document.items()}
    if isinstance(document, (list, tuple)):
        return [redact_status(item) for item in document]
    return document


def _redact_value(key: str, value: Any) -> Any:
    if key in POD_KEYS or key in TEXT_KEYS:
        if isinstance(value, str):
            return REDACTED if value else value
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return [REDACTED for _ in value]
    return redact_status(value)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OpsServer:
    """Serves one StatusSource and one metrics registry until stopped: every endpoint, or only
    `endpoints` (PROBE_ENDPOINTS for the listener on the pod IP)."""

    def __init__(
        self,
        source: StatusSource,
        metrics: AgentMetrics,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        endpoints: Collection[str] = ALL_ENDPOINTS,
        status_details: bool = False,
    ) -> None:
        unknown = set(endpoints) - set(ALL_ENDPOINTS)
        if unknown:
            raise ValueError(f"unknown endpoints {sorted(unknown)}")
        self._source = source
        self._metrics = metrics
        self._host = host
        self._port = port
        self.endpoints = tuple(e for e in ALL_ENDPOINTS if e in endpoints)
        self.status_details = status_details
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def app(self) -> web.Application:
        handlers = {
            "/healthz": self._healthz,
            "/readyz": self._readyz,
            "/status": self._status,
            "/metrics": self._metrics_text,
        }
        app = web.Application()
        for path in self.endpoints:
            app.router.add_get(path, handlers[path])
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        if "/status" in self.endpoints and not is_loopback(self._host):
            log.warning(
                "ops endpoints reachable beyond loopback, without authentication",
                address=f"{self._host}:{self.port}",
                hint="keep ops_address on 127.0.0.1; use probe_address for probes and metrics",
            )

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        ok = self._source.healthy()
        return web.Response(status=200 if ok else 503, text="ok\n" if ok else "unhealthy\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        ok = self._source.ready()
        # A source may say why it is not ready (the Agent does: no full LIST yet, or a decider
        # refusing its credentials); one that does not gets the start-up reason.
        why = getattr(self._source, "not_ready_reason", None)
        reason = (why() if callable(why) else None) or "waiting for the first full LIST"
        return web.Response(status=200 if ok else 503, text="ready\n" if ok else f"{reason}\n")

    async def _status(self, request: web.Request) -> web.Response:
        document = self._source.status()
        if not self.status_details:
            document = redact_status(document)
        document = {**document, "statusDetails": self.status_details}
        body = json.dumps(document, indent=2, sort_keys=True, default=str)
        return web.Response(text=body + "\n", content_type="application/json")

    async def _metrics_text(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self._metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )


def ops_servers(
    config: AgentConfig, source: StatusSource, metrics: AgentMetrics
) -> list[OpsServer]:
    """The configured listeners: the ops listener (every endpoint), and the probe listener
    (PROBE_ENDPOINTS) when `probe_address` is set."""
    host, port = config.ops_host_port
    servers = [
        OpsServer(source, metrics, host=host, port=port, status_details=config.status_details)
    ]
    probe = config.probe_host_port
    if probe is not None:
        servers.append(
            OpsServer(source, metrics, host=probe[0], port=probe[1], endpoints=PROBE_ENDPOINTS)
        )
    return servers


@contextlib.asynccontextmanager
async def serving(
    config: AgentConfig, source: StatusSource, metrics: AgentMetrics
) -> AsyncIterator[list[OpsServer]]:
    """Every configured listener, started for the block and stopped after it."""
    servers = ops_servers(config, source, metrics)
    try:
        for server in servers:
            await server.start()
        yield servers
    finally:
        for server in servers:
            await server.stop()
