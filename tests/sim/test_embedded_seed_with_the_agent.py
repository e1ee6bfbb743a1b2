"""The product against the embedded ACK, wired only from `info()` exactly as in production: the
agent's own client wiring (connect_agent) with decisions from the FC emulator runs the seed
walkthrough to the end — the pool grows through the CS API and all 15 tasks finish."""

from __future__ import annotations

from agent.app.wiring import connect_agent
from agent.sim.embedded import EmbeddedAck
from agent.sim.scenario import load_scenario
from agent.sim.world.nodepools import POOL_LABEL
from tests.support.cluster import agent_config, running
from tests.support.waiting import until

SPEED = 100  # 120 s tasks after 60-90 s boots: the walkthrough in ~2-3 real seconds


async def test_the_agent_runs_the_seed_walkthrough_to_completion(access_keys):
    """Pending Ray workers → FC decisions → CS desired raises → Ready nodes → 15 tasks done."""
    scenario = load_scenario("seed")
    async with EmbeddedAck(scenario, speed=SPEED, faults=False) as ack:
        config = agent_config(
            ack,
            decider="fc",
            fallback_to_local=False,  # a broken FC path must fail the test, not be papered over
            eci_enabled=False,
            strategy=dict(scenario.policy).get("strategy", "cost"),
        )
        async with connect_agent(config) as agent, running(agent):
            await until(ack.world.ray.finished, timeout=30, what="the job", interval=0.05)
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
