"""The operations server answers health, readiness, status and metrics over real HTTP; it binds
loopback by default, the opt-in probe listener serves only /healthz, /readyz and /metrics, and
/status redacts pod names and error texts unless --status-details is set."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agent.app.config import ConfigError, load_config
from agent.app.ops import PROBE_ENDPOINTS, REDACTED, OpsServer, serving
from agent.app.settings import AgentConfig
from agent.metrics import AgentMetrics

REQUIRED = {"RAY_ACK_SCALER_CLUSTER_ID": "c-1", "RAY_ACK_SCALER_REGION": "cn-hangzhou"}


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
    _, _, server = served
    status, body = await get(server.url + "/status")
    assert status == 200
    assert json.loads(body) == {
        "pendingPods": 3,
        "pools": [{"desired": 2, "id": "np-a"}],
        "statusDetails": False,
    }


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


# --- where it listens ---------------------------------------------------------------------------


async def refused(url: str) -> bool:
    """True when nothing accepts a connection at `url` (loopback only: 127.0.0.0/8)."""
    try:
        await get(url)
    except aiohttp.ClientConnectionError:
        return True
    return False


async def test_the_ops_listener_binds_loopback_by_default() -> None:
    """Defaults: the ops address is 127.0.0.1, there is no probe listener, and a server started
    without a host answers on 127.0.0.1 but not on another loopback address (127.0.0.2), which a
    wildcard bind would accept."""
    config = AgentConfig()
    assert config.ops_host_port == ("127.0.0.1", 8080)
    assert config.probe_address is None and not config.status_details
    server = OpsServer(Source(), AgentMetrics(), port=0)
    await server.start()
    try:
        assert (await get(f"http://127.0.0.1:{server.port}/healthz"))[0] == 200
        assert await refused(f"http://127.0.0.2:{server.port}/healthz")
    finally:
        await server.stop()


async def test_the_probe_listener_serves_probes_and_metrics_only() -> None:
    """With --probe-address, a second listener at that address answers /healthz, /readyz and
    /metrics, and 404 on /status; /status stays on the ops listener alone."""
    config = load_config(
        environ={
            **REQUIRED,
            "RAY_ACK_SCALER_OPS_ADDRESS": "127.0.0.1:0",
            "RAY_ACK_SCALER_PROBE_ADDRESS": "127.0.0.2:0",
        }
    )
    source, metrics = Source(), AgentMetrics()
    metrics.pending_pods.set(4)
    async with serving(config, source, metrics) as (ops, probe):
        assert probe.endpoints == PROBE_ENDPOINTS
        base = f"http://127.0.0.2:{probe.port}"
        assert (await get(base + "/healthz"))[0] == 200
        assert (await get(base + "/readyz"))[0] == 503
        source.is_ready = True
        assert (await get(base + "/readyz"))[0] == 200
        status, body = await get(base + "/metrics")
        assert status == 200 and "ray_ack_scaler_pending_pods 4.0" in body
        assert (await get(base + "/status"))[0] == 404
        assert await refused(f"http://127.0.0.2:{ops.port}/status")
        assert (await get(f"http://127.0.0.1:{ops.port}/status"))[0] == 200
    assert await refused(base + "/healthz")  # stopped with the block


def test_the_probe_address_is_opt_in_and_needs_its_own_port() -> None:
    """Unset by default; set by flag, env or file like every setting; never ops_address's port."""
    assert load_config(environ=REQUIRED).probe_host_port is None
    config = load_config(environ={**REQUIRED, "RAY_ACK_SCALER_PROBE_ADDRESS": "0.0.0.0:8081"})
    assert config.probe_host_port == ("0.0.0.0", 8081)
    with pytest.raises(ConfigError, match="probe_address: port 8080"):
        load_config(environ={**REQUIRED, "RAY_ACK_SCALER_PROBE_ADDRESS": "0.0.0.0:8080"})
    with pytest.raises(ConfigError, match="probe_address: invalid value"):
        load_config(environ={**REQUIRED, "RAY_ACK_SCALER_PROBE_ADDRESS": "0.0.0.0"})


# --- what /status tells ---------------------------------------------------------------------------

SECRET_POD = "ray/secret-project-worker-7f9c"
SECRET_ERROR = "AccessDenied: acs:ram::1234567890:role/ray-ack-scaler may not InvokeFunction"


class DetailedSource(Source):
    def status(self) -> dict[str, Any]:
        return {
            "cluster": "c-1",
            "pendingPods": 1,
            "pending": [
                {
                    "pod": SECRET_POD,
                    "since": 1.0,
                    "requests": {"cpu": "1"},
                    "message": "0/3 nodes are available",
                }
            ],
            "pools": [{"id": "np-a", "desired": 2, "lastError": SECRET_ERROR}],
            "lastDecision": {
                "outcome": "error",
                "pods": 1,
                "unplaceable": [{"pod": SECRET_POD, "reason": "too big"}],
                "error": SECRET_ERROR,
                "pools_written": [{"pool": "np-a", "from": 1, "to": 2}],
            },
            "watches": {"pending-pods": {"synced": True, "lastError": SECRET_ERROR}},
            "errors": [
                {"at": "2026-01-01T00:00:00Z", "source": "decider", "message": SECRET_ERROR}
            ],
            "scaleIn": {"lastRound": {"outcome": "error", "error": SECRET_ERROR, "pods": []}},
        }


@pytest.mark.parametrize("details", [False, True])
async def test_status_redacts_pod_names_and_error_texts_unless_asked(details: bool) -> None:
    """By default no pod name and no error text leaves /status; counts, pool ids and the shape
    stay. --status-details (env RAY_ACK_SCALER_STATUS_DETAILS) shows them."""
    config = load_config(
        environ={
            **REQUIRED,
            "RAY_ACK_SCALER_OPS_ADDRESS": "127.0.0.1:0",
            "RAY_ACK_SCALER_STATUS_DETAILS": str(details).lower(),
        }
    )
    async with serving(config, DetailedSource(), AgentMetrics()) as (ops,):
        status, body = await get(ops.url + "/status")
    assert status == 200
    document = json.loads(body)
    assert document["statusDetails"] is details
    assert document["pendingPods"] == 1 and document["lastDecision"]["pods"] == 1
    assert document["pools"][0]["id"] == "np-a"
    assert document["lastDecision"]["pools_written"] == [{"pool": "np-a", "from": 1, "to": 2}]
    assert document["errors"][0]["source"] == "decider"
    if details:
        assert SECRET_POD in body and SECRET_ERROR in body
        return
    assert "secret-project" not in body and "1234567890" not in body and "AccessDenied" not in body
    assert document["pending"][0]["pod"] == REDACTED
    assert document["pending"][0]["requests"] == {"cpu": "1"}
    assert document["lastDecision"]["unplaceable"] == [{"pod": REDACTED, "reason": "too big"}]
    assert document["errors"][0]["message"] == REDACTED


def test_dev_mode_shows_details() -> None:
    """`python -m agent dev` is a sandbox on this machine: its agent's /status is not redacted."""
    from agent.dev.run import agent_environment

    info = {
        "cs": {
            "accessKeyId": "k",
            "accessKeySecret": "s",
            "clusterId": "c",
            "regionId": "r",
            "url": "http://127.0.0.1:1",
            "endpoint": "127.0.0.1:1",
            "managedPools": "np:0:1",
        },
        "fc": {
            "url": "http://127.0.0.1:2",
            "endpoint": "127.0.0.1:2",
            "function": "f",
            "service": "s",
        },
    }
    env = agent_environment(
        info,
        kubeconfig=Path("kubeconfig"),
        decider="local",
        fc_api_version="3.0",
        policy={},
        eci_enabled=False,
        speed=1.0,
    )
    config = load_config(environ=env)
    assert config.status_details and config.ops_host_port == ("127.0.0.1", 0)
