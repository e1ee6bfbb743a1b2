"""`python -m agent run` is the production entry point: started as a process against the
simulator, it scales the pool, serves /status to `python -m agent status`, and exits cleanly on
SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
import urllib.request
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from agent.sim.cloud.credentials import TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET
from agent.sim.cloud.cs_api import scale_requests_of, writes_of
from agent.sim.cluster import SimCluster
from tests.support.builders import build_test_pod
from tests.support.network import client_environment
from tests.support.sim_pools import cluster_with_a_pool
from tests.support.waiting import until

CLUSTER_ID = "c-entry"
REGION = "cn-hangzhou"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env() -> dict[str, str]:
    """No proxy, and no agent setting from the developer's shell."""
    env = client_environment()
    return {k: v for k, v in env.items() if not k.startswith("RAY_ACK_SCALER_")}


@pytest.fixture
async def sim() -> AsyncIterator[tuple[SimCluster, web.Application, str]]:
    async with cluster_with_a_pool(CLUSTER_ID) as box:
        yield box.cluster, box.cs_app, f"http://{box.cs_endpoint}"


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    return int(process.returncode or 0), out.decode(), err.decode()


async def test_run_scales_reports_status_and_stops_on_sigterm(
    sim: tuple[SimCluster, web.Application, str],
) -> None:
    """The agent process serves a burst, `status` prints it, SIGTERM ends it with exit 0."""
    cluster, cs_app, cs_url = sim
    ops = f"127.0.0.1:{free_port()}"
    env = {
        **clean_env(),
        "ALIBABA_CLOUD_ACCESS_KEY_ID": TEST_ACCESS_KEY_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": TEST_ACCESS_KEY_SECRET,
        "RAY_ACK_SCALER_CLUSTER_ID": CLUSTER_ID,
        "RAY_ACK_SCALER_REGION": REGION,
    }
    agent = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent",
        "run",
        "--api-url",
        cluster.url,
        "--cs-endpoint",
        cs_url,
        "--credentials",
        "access-key",
        "--ops-address",
        ops,
        "--batch-idle-seconds",
        "0.05",
        "--prices",
        "ecs.g7.xlarge=1.0",
        "--managed-pools",
        "np-cpu:0:10",
        "--no-eci-enabled",
        "--log-format",
        "json",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        for i in range(3):
            worker = build_test_pod(
                f"w{i}",
                namespace="ray",
                labels={"ray.io/node-type": "worker", "ray.io/cluster": "rc"},
                container="w",
                image=None,
                cpu="1",
            )
            cluster.store.create("pods", worker, namespace="ray")
        # the emulator journal is plain state: nothing to await
        await until(lambda: scale_requests_of(cs_app), timeout=30, interval=0.05)
        code, out, err = await run_cli("status", "--url", ops, env=clean_env())
        assert code == 0, err
        assert "Autoscaler status: c-entry" in out
        assert "np-cpu" in out
        reader = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        metrics = await asyncio.to_thread(
            lambda: reader.open(f"http://{ops}/metrics", timeout=10).read().decode()
        )
        assert (
            'ray_ack_scaler_cs_calls_total{action="ModifyClusterNodePool",outcome="ok"}' in metrics
        )
        assert 'ray_ack_scaler_actuation_total{outcome="pool_writes"} 1.0' in metrics
        agent.send_signal(signal.SIGTERM)
        _, agent_err = await asyncio.wait_for(agent.communicate(), 20)
        assert agent.returncode == 0, agent_err.decode()[-2000:]
        assert b'"event": "agent stopped"' in agent_err
    finally:
        if agent.returncode is None:
            agent.kill()
            await agent.wait()
    assert [w.summary.get("desired_size") for w in scale_requests_of(cs_app)] == [1]


async def test_run_rejects_bad_configuration() -> None:
    """A bad setting is reported with its name and exit code 2, before anything connects."""
    code, _, err = await run_cli(
        "run", "--cluster-id", "c", "--region", "r", "--strategy", "x", env=clean_env()
    )
    assert code == 2
    assert "strategy: invalid value 'x' from flag --strategy" in err


async def test_without_companion_pools_run_refuses_a_pool_that_ack_autoscales() -> None:
    """--no-companion-pools: a managed pool with ACK's own node autoscaling on stops the start,
    exit 2, saying how to fix it (as before companion mode); nothing is written to the pool."""
    async with cluster_with_a_pool(CLUSTER_ID, ack_autoscaling=True) as box:
        env = {
            **clean_env(),
            "ALIBABA_CLOUD_ACCESS_KEY_ID": TEST_ACCESS_KEY_ID,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": TEST_ACCESS_KEY_SECRET,
        }
        code, _, err = await run_cli(
            "run",
            *("--cluster-id", CLUSTER_ID, "--region", REGION, "--api-url", box.cluster.url),
            *("--cs-endpoint", f"http://{box.cs_endpoint}", "--credentials", "access-key"),
            *("--managed-pools", "np-cpu:0:10", "--ops-address", f"127.0.0.1:{free_port()}"),
            "--no-companion-pools",
            env=env,
        )
        assert code == 2, err
        assert "node pool np-cpu (cpu) has ACK node autoscaling enabled" in err
        assert "allow_ack_autoscaled_pools" in err
        assert writes_of(box.cs_app) == []


async def test_status_of_an_absent_agent_fails_cleanly() -> None:
    """`status` against an address nobody listens on says so and exits 1."""
    code, _, err = await run_cli("status", "--url", f"127.0.0.1:{free_port()}", env=clean_env())
    assert code == 1
    assert "cannot read" in err
