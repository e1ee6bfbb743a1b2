"""Scale-in benchmark: idle node-seconds of the seed walkthrough (node time paid for with no
workload pod on the node) with the agent's defaults, side by side with cluster-autoscaler's
scale-down defaults modelled by the same agent.

Both runs are the same machinery end to end — the embedded ACK (API server, scheduler, kubelet,
node pools, the Ray driver with its 60 s idle timeout), the real agent over kubernetes-asyncio
and the CS SDK, the in-process decider — on the same scenario and seed; only the scale-in
settings differ:

| setting                          | ours (defaults) | cluster-autoscaler defaults |
|----------------------------------|-----------------|-----------------------------|
| scan interval                    | 10 s            | 10 s                        |
| scaleDownUnneeded                | 60 s            | 10 min                      |
| scaleDownDelayAfterAdd           | 120 s           | 10 min                      |
| utilization threshold            | 0.5             | 0.5                         |
| drain non-empty underutilized    | no              | yes                         |

Idle time is exact, from the node pools' own billing: per node, billed seconds (launch to
removal) minus seconds with at least one workload pod bound. "After the job" is what accrues
from the moment the last task finishes until the pool is back at its min. Intervals that the
agent measures in real time are scaled by the speed factor, so they are simulated seconds.

Usage: python bench/scale_in_bench.py [--speed 200] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import time
from typing import Any

for _proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_proxy, None)

from agent.app.logs import configure_logging  # noqa: E402
from agent.app.settings import AgentConfig  # noqa: E402
from agent.app.wiring import connect_agent  # noqa: E402
from agent.sim.cloud.credentials import TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET  # noqa: E402
from agent.sim.embedded import EmbeddedAck  # noqa: E402
from agent.sim.scenario import load_scenario  # noqa: E402

POOL = "np-cpu"
SCAN_SECONDS = 10.0
PROFILES: dict[str, dict[str, Any]] = {
    "ray-ack-scaler defaults": {},
    "cluster-autoscaler defaults": {
        "scale_down_unneeded_seconds": 600.0,
        "scale_down_delay_after_add_seconds": 600.0,
        "scale_down_utilization_threshold": 0.5,
        "scale_in_drain_non_empty": True,
    },
}


@dataclasses.dataclass(frozen=True)
class Outcome:
    profile: str
    nodes: int
    job_seconds: float
    back_at_min_seconds: float  # from the job's start
    billed_node_seconds: float
    idle_node_seconds: float
    idle_after_job_node_seconds: float
    idle_cost: float
    tasks_requeued: int


def _idle(ack: EmbeddedAck) -> dict[str, float]:
    return {u.node_name: u.idle_seconds for u in ack.world.pools.usage() if u.pool_id == POOL}


async def run(profile: str, overrides: dict[str, Any], *, speed: float, seed: int) -> Outcome:
    scenario = load_scenario("seed")
    async with EmbeddedAck(scenario, speed=speed, seed=seed, faults=False) as ack:
        info = ack.info()
        cs = info["cs"]
        os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"] = TEST_ACCESS_KEY_ID
        os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = TEST_ACCESS_KEY_SECRET
        config = AgentConfig(
            api_url=info["kubernetes"]["url"],
            cluster_id=cs["clusterId"],
            region=cs["regionId"],
            cs_endpoint=f"http://{cs['endpoint']}",
            credentials="access-key",
            decider="local",
            eci_enabled=False,
            batch_idle_seconds=0.05,
            batch_max_seconds=0.5,
            scale_in_interval_seconds=SCAN_SECONDS / speed,
            pool_refresh_seconds=60.0 / speed,
            **overrides,
        )
        clock = ack.cluster.clock
        start = clock.now()
        stop = asyncio.Event()
        async with connect_agent(config, now=clock.now) as agent:
            task = asyncio.create_task(agent.run(stop))
            try:
                limit = time.monotonic() + 3000.0 / speed + 30
                while not ack.world.ray.finished():
                    await _tick(limit)
                job_end = clock.now()
                idle_at_job_end = _idle(ack)
                while ack.world.pools.describe_pool(POOL).total_nodes > 0:
                    await _tick(limit)
                back = clock.now()
            finally:
                stop.set()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(task, 10)
        usage = [u for u in ack.world.pools.usage() if u.pool_id == POOL]
        idle_final = _idle(ack)
        return Outcome(
            profile=profile,
            nodes=len(usage),
            job_seconds=job_end - start,
            back_at_min_seconds=back - start,
            billed_node_seconds=sum(u.billed_seconds for u in usage),
            idle_node_seconds=sum(u.idle_seconds for u in usage),
            idle_after_job_node_seconds=sum(
                idle_final[n] - idle_at_job_end.get(n, 0.0) for n in idle_final
            ),
            idle_cost=sum(u.idle_seconds / 3600 * u.price_per_hour for u in usage),
            tasks_requeued=ack.world.ray.tasks_requeued,
        )


async def _tick(limit: float) -> None:
    if time.monotonic() > limit:
        raise TimeoutError("the run did not reach its end state in time")
    await asyncio.sleep(0.01)


def table(outcomes: list[Outcome]) -> str:
    rows = [
        "| profile | nodes | job done (s) | pool back at min (s) | billed node-s | idle node-s "
        "| idle node-s after the job | idle cost (CNY) | tasks re-queued |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        rows.append(
            f"| {o.profile} | {o.nodes} | {o.job_seconds:.0f} | {o.back_at_min_seconds:.0f} "
            f"| {o.billed_node_seconds:.0f} | {o.idle_node_seconds:.0f} "
            f"| {o.idle_after_job_node_seconds:.0f} | {o.idle_cost:.3f} | {o.tasks_requeued} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--speed", type=float, default=200.0, help="simulated seconds per real second (default 200)"
    )
    parser.add_argument("--seed", type=int, default=1, help="scenario seed (default 1)")
    options = parser.parse_args()
    configure_logging(level="warning")

    async def both() -> list[Outcome]:
        return [
            await run(name, overrides, speed=options.speed, seed=options.seed)
            for name, overrides in PROFILES.items()
        ]

    outcomes = asyncio.run(both())
    print(
        f"Seed walkthrough (15 tasks x 1 CPU x 120 s, Ray idleTimeoutSeconds 60), seed "
        f"{options.seed}, speed {options.speed:g}; times in simulated seconds from the job's "
        "start.\n"
    )
    print(table(outcomes))
    print(
        f"\nCommand: python bench/scale_in_bench.py --speed {options.speed:g} --seed {options.seed}"
    )


if __name__ == "__main__":
    main()
