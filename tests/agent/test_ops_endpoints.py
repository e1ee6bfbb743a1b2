"""The operations server answers health, readiness, status and metrics over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from agent.app.ops import OpsServer
from agent.metrics import AgentMetrics


class Source:
    def __init__(self) -> None:
        self.is_ready = False
        self.is_healthy = True

    def healthy(self) -> bool:
        return self.is_healthy

    def ready(self) -> bool:
        return self.is_ready

    def status(self) -> dict[str, Any]:
        return {"pendingPods": 3, "pools": [{"id": "np-a", "desired": 2}]}


@pytest.fixture
async def served() -> AsyncIterator[tuple[Source, AgentMetrics, OpsServer]]:
    source, metrics = Source(), AgentMetrics()
    server = OpsServer(source, metrics, host="127.0.0.1", port=0)
    await server.start()
    try:
        yield source, metrics, server
    finally:
        await server.stop()


async def get(url: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.get(url) as response,
    ):
        return response.status, await response.text()


async def test_readyz_turns_ready_after_the_first_list(served: Any) -> None:
    """/readyz is 503 until the source says the first full LIST is folded, then 200."""
    source, _, server = served
    assert (await get(server.url + "/readyz"))[0] == 503
    source.is_ready = True
    assert (await get(server.url + "/readyz"))[0] == 200


async def test_healthz_reflects_the_loops(served: Any) -> None:
    """/healthz is 200 while the agent's loops run and 503 once one has died."""
    source, _, server = served
    assert (await get(server.url + "/healthz"))[0] == 200
    source.is_healthy = False
    assert (await get(server.url + "/healthz"))[0] == 503


async def test_status_is_json(served: Any) -> None:
    """/status returns the source's status document as JSON."""
    import json

    _, _, server = served
    status, body = await get(server.url + "/status")
    assert status == 200
    assert json.loads(body) == {"pendingPods": 3, "pools": [{"desired": 2, "id": "np-a"}]}


async def test_metrics_exposition(served: Any) -> None:
    """/metrics serves the agent's registry in Prometheus text format."""
    _, metrics, server = served
    metrics.pending_pods.set(7)
    metrics.watch_restarted("pods", "expired")
    metrics.api_error("ModifyClusterNodePool", "Throttling.User")
    status, body = await get(server.url + "/metrics")
    assert status == 200
    assert "ray_ack_scaler_pending_pods 7.0" in body
    assert 'ray_ack_scaler_watch_restarts_total{reason="expired",stream="pods"} 1.0' in body
    assert (
        'ray_ack_scaler_api_errors_total{api="ModifyClusterNodePool",code="Throttling.User"} 1.0'
        in body
    )
