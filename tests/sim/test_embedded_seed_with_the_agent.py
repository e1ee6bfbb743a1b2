"""The product against the embedded ACK, wired only from `info()` exactly as in production: the
agent's own client wiring (connect_agent) with decisions from the FC emulator runs the seed
walkthrough to the end — the pool grows through the CS API and all 15 tasks finish."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from agent.app.config import AgentConfig
from agent.app.wiring import connect_agent
from agent.sim.embedded import EmbeddedAck
from agent.sim.scenario import load_scenario
from agent.sim.world.nodepools import POOL_LABEL

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
SPEED = 100  # 120 s tasks after 60-90 s boots: the walkthrough in ~2-3 real seconds


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK transports and kubernetes-asyncio read proxy variables from the environment."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def agent_config(info: dict, policy: dict) -> AgentConfig:
    """What an operator would configure from the info JSON (endpoints are plain-HTTP emulators)."""
    cs, fc = info["cs"], info["fc"]
    return AgentConfig(
        api_url=info["kubernetes"]["url"],
        cluster_id=cs["clusterId"],
        region=cs["regionId"],
        cs_endpoint=f"http://{cs['endpoint']}",
        credentials="access-key",
        decider="fc",
        fc_endpoint=f"http://{fc['endpoint']}",
        fc_service=fc["service"],
        fc_function=fc["function"],
        fallback_to_local=False,  # a broken FC path must fail the test, not be papered over
        eci_enabled=False,
        strategy=policy.get("strategy", "cost"),
        batch_idle_seconds=0.05,
        batch_max_seconds=0.5,
    )


async def test_the_agent_runs_the_seed_walkthrough_to_completion(monkeypatch):
    """Pending Ray workers → FC decisions → CS desired raises → Ready nodes → 15 tasks done."""
    scenario = load_scenario("seed")
    async with EmbeddedAck(scenario, speed=SPEED, faults=False) as ack:
        info = ack.info()
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", info["cs"]["accessKeyId"])
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", info["cs"]["accessKeySecret"])
        stop = asyncio.Event()
        async with connect_agent(agent_config(info, dict(scenario.policy))) as agent:
            running = asyncio.create_task(agent.run(stop))
            try:

                async def job_done() -> None:
                    while True:
                        if ack.world.ray.finished() or running.done():
                            return
                        await asyncio.sleep(0.05)

                await asyncio.wait_for(job_done(), 30)
            finally:
                stop.set()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(running, 10)
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
        summary = ack.world.ray.summary()
        assert (summary.done, summary.failed) == (15, 0), agent.status()["errors"]
        scale = ack.cs_scale_requests()
        assert scale and all(w.summary["nodepool_id"] == "np-cpu" for w in scale)
        desired = max(w.summary["desired_size"] for w in scale)
        assert 5 <= desired <= 10  # 15 one-CPU workers, three to a 4 vCPU node
        nodes, _ = ack.cluster.store.list("nodes")
        assert sum(1 for n in nodes if n["metadata"]["labels"].get(POOL_LABEL) == "np-cpu") >= 5
        invocations = ack.fc_invocations()
        assert invocations and all(i.kind == "sync" and i.error_type is None for i in invocations)
