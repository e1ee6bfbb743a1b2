"""The operations endpoint: an aiohttp server (127.0.0.1 by default) with /healthz, /readyz,
/status (JSON, read by `python -m agent status`) and /metrics (Prometheus text format).

It reads state through the small `StatusSource` protocol, so it knows nothing of how the agent
is wired.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from agent.metrics import AgentMetrics


class StatusSource(Protocol):
    def healthy(self) -> bool: ...

    def ready(self) -> bool: ...

    def status(self) -> dict[str, Any]: ...


class OpsServer:
    """Serves one StatusSource and one metrics registry until stopped."""

    def __init__(
        self,
        source: StatusSource,
        metrics: AgentMetrics,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
    ) -> None:
        self._source = source
        self._metrics = metrics
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/status", self._status)
        app.router.add_get("/metrics", self._metrics_text)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        ok = self._source.healthy()
        return web.Response(status=200 if ok else 503, text="ok\n" if ok else "unhealthy\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        ok = self._source.ready()
        return web.Response(
            status=200 if ok else 503, text="ready\n" if ok else "waiting for the first full LIST\n"
        )

    async def _status(self, request: web.Request) -> web.Response:
        body = json.dumps(self._source.status(), indent=2, sort_keys=True, default=str)
        return web.Response(text=body + "\n", content_type="application/json")

    async def _metrics_text(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self._metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )
