"""Agentless vs sidecar on a scenario (the seed walkthrough by default): how much later the first
node is asked for and the workers run, how many function invocations it takes, and what they
cost on Function Compute.

Each run is `python -m agent dev --scenario S --json --quiet --speed X [--mode agentless]` in
a fresh process. In agentless mode the EventBridge stand-in delivers each FailedScheduling Event
2 simulated seconds after it is written and the Timer ticks every simulated minute; every
invocation runs a whole `once` round (a kubeconfig on an instance's first call, the LISTs, the CS
reads, a decision) in real time, which the simulated clock multiplies by the speed — so a low
speed shows the function's latency closest to what it is. The sidecar agent is measured the
same way.

Cost: FC 3.0 pay-as-you-go converts usage to CU (75 CU per 10,000 invocations, 1 CU per active
vCPU-second, 0.15 CU per GB-second) at CNY 0.00011 per CU (tier 1 list price, FC
"Pay-as-you-go" page). Billed seconds are the invocations' real run times here, a stand-in for
FC's; the function is priced at --vcpu and --memory-gb (template.yml gives it 1 GB). The
Timer's idle cost — 1,440 invocations a day whatever the cluster does — is reported apart.

Usage: python bench/agentless_bench.py [--scenario seed] [--repeat 2] [--speed 10] [--vcpu 1] [--memory-gb 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CNY_PER_CU = 0.00011
CU_PER_INVOCATION = 75 / 10_000
CU_PER_VCPU_SECOND = 1.0
CU_PER_GB_SECOND = 0.15
EXIT_TIME_LIMIT = 1  # python -m agent dev: the run did not end within the scenario's limit


def run(mode: str, *, scenario: str, speed: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="agentless-bench-") as run_dir:
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        command = [sys.executable, "-m", "agent", "dev", "--scenario", scenario, "--json"]
        command += ["--quiet", "--speed", f"{speed:g}", "--run-dir", run_dir, "--mode", mode]
        done = subprocess.run(
            command, cwd=REPO, env=env, capture_output=True, text=True, timeout=3600
        )
    # exit 1 is the scenario's time limit: the run's summary is still its measurement
    lines = done.stdout.strip().splitlines()
    if done.returncode not in (0, EXIT_TIME_LIMIT) or not lines:
        raise SystemExit(f"{mode} run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    summary: dict[str, Any] = json.loads(lines[-1])
    return summary


def function_cny(invocations: int, seconds: float, *, vcpu: float, memory_gb: float) -> float:
    cu = (
        invocations * CU_PER_INVOCATION
        + seconds * vcpu * CU_PER_VCPU_SECOND
        + seconds * memory_gb * CU_PER_GB_SECOND
    )
    return cu * CNY_PER_CU


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="seed", help="built-in scenario (default seed)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--speed", type=float, default=10.0)
    parser.add_argument("--vcpu", type=float, default=1.0)
    parser.add_argument("--memory-gb", type=float, default=1.0)
    args = parser.parse_args()
    rows: dict[str, list[dict[str, Any]]] = {"sidecar": [], "agentless": []}
    for _ in range(args.repeat):
        for mode in rows:  # alternating, so both see the machine's load alike
            rows[mode].append(run(mode, scenario=args.scenario, speed=args.speed))
    print(
        f"{args.scenario}, speed {args.speed:g}, {args.repeat} runs each (median; simulated seconds)"
    )
    print("mode       first node  all Running  nodes  writes  end   invocations (event/timer)")
    for mode, runs in rows.items():
        first = statistics.median(r["firstNodeRequestedSeconds"] for r in runs)
        running = statistics.median(r["timeToAllRunningSeconds"] for r in runs)
        nodes = statistics.median(r["nodesAdded"] for r in runs)
        writes = statistics.median(r["scaleWrites"] for r in runs)
        endings = ",".join(sorted({r["ending"] for r in runs}))
        line = (
            f"{mode:<10} {first:>9.1f}  {running:>11.1f}  {nodes:>5g}  {writes:>6g}  {endings:<5}"
        )
        if mode == "agentless":
            events = statistics.median(
                r["agentless"]["invocations"].get("eventbridge", 0) for r in runs
            )
            ticks = statistics.median(r["agentless"]["invocations"].get("timer", 0) for r in runs)
            line += f" {events:g}/{ticks:g}"
        print(line)
    agentless = rows["agentless"]
    outcomes = {
        key: statistics.median(r["agentless"].get("outcomes", {}).get(key, 0) for r in agentless)
        for key in ("rounds", "covered", "turnedAway")
    }
    peak = statistics.median(r["agentless"].get("peakConcurrent", 0) for r in agentless)
    throttled = statistics.median(r["agentless"].get("throttledAttempts", 0) for r in agentless)
    delivered = statistics.median(r["agentless"].get("eventsDelivered", 0) for r in agentless)
    events_run = statistics.median(
        r["agentless"]["invocations"].get("eventbridge", 0) for r in agentless
    )
    queued = max(0.0, delivered - events_run)
    print(
        f"EventBridge delivered {delivered:g} events; {queued:g} were still queued in FC "
        f"(throttled) at the end, each billed once it runs (at least CNY "
        f"{function_cny(int(queued), 0.0, vcpu=args.vcpu, memory_gb=args.memory_gb):.5f})"
    )
    print(
        f"agentless invocations came to: {outcomes['rounds']:g} full rounds, "
        f"{outcomes['covered']:g} covered by a round (one read each), "
        f"{outcomes['turnedAway']:g} turned away; at most {peak:g} at once, "
        f"{throttled:g} throttled attempts"
    )
    invocations = statistics.median(sum(r["agentless"]["invocations"].values()) for r in agentless)
    seconds = statistics.median(r["agentless"]["secondsBilled"] for r in agentless)
    per_run = function_cny(int(invocations), seconds, vcpu=args.vcpu, memory_gb=args.memory_gb)
    # a tick always runs a full round: priced at the ticks' own mean (all runs' before that
    # figure was reported)
    per_tick = statistics.median(
        r["agentless"]
        .get("secondsBilledByTrigger", {})
        .get("timer", r["agentless"]["secondsBilled"])
        / max(
            1,
            r["agentless"]["invocations"].get("timer", 0)
            or sum(r["agentless"]["invocations"].values()),
        )
        for r in agentless
    )
    idle_day = function_cny(1440, 1440 * per_tick, vcpu=args.vcpu, memory_gb=args.memory_gb)
    print(
        f"agentless function: {invocations:g} invocations, {seconds:.1f} s billed per run "
        f"-> CNY {per_run:.5f} at {args.vcpu:g} vCPU / {args.memory_gb:g} GB; the Timer alone "
        f"(1,440 ticks a day at {per_tick:.2f} s) -> CNY {idle_day:.4f} a day"
    )
    cost = {m: statistics.median(r["costEstimate"] for r in runs) for m, runs in rows.items()}
    print(
        f"node cost per run (CNY): sidecar {cost['sidecar']:.4f}, agentless {cost['agentless']:.4f}"
    )


if __name__ == "__main__":
    main()
