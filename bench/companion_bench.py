"""Companion benchmark: seed-companion (the ACK walkthrough on a pool with ACK node autoscaling
on) through dev mode with the agent and without it (`--no-agent`: ACK's own autoscaler stand-in
alone, the walkthrough as documented), medians over repeats.

Each run is `python -m agent dev --scenario S --json --quiet --speed X [--strategy S | --no-agent]
[--time-limit T] --run-dir DIR` in a fresh process; the modes alternate, so drift in the
machine's load hits both alike. From the `--json` summary line: simulated seconds from the first
worker pod to all workers Running, the run's cost (pool nodes + ECI, CNY), idle node-seconds
(pool node-seconds with no workload pod on the node), the CS write calls the agent made, the
pods that ran on ECI, and how the run ended.

Read with care: the agent's reaction is real time (its batching windows) while the world runs
`--speed` times faster, so at x100 a 0.2 s reaction is 20 simulated seconds, inside which a
30 s scan of ACK's autoscaler may fall and raise the pool for pods the agent is about to send
to ECI; a production agent reacts well within a scan. A lower speed shrinks that window.

Usage: python bench/companion_bench.py [--scenario seed-companion] [--repeat 3] [--speed 50]
       [--strategies latency,cost,pool-first] [--time-limit SECONDS]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NO_AGENT = "no-agent"


@dataclass(frozen=True)
class Run:
    mode: str  # "no-agent", or "agent (STRATEGY)"
    all_running_s: float | None
    cost: float
    idle_node_s: float
    agent_cs_writes: int
    eci_pods: int
    ending: str


def one_run(strategy: str | None, *, scenario: str, speed: float, time_limit: float | None) -> Run:
    """One dev run: with the agent deciding under `strategy`, or with no agent (None)."""
    mode = NO_AGENT if strategy is None else f"agent ({strategy})"
    with tempfile.TemporaryDirectory(prefix="companion-bench-") as run_dir:
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        env["PYTHONPATH"] = str(REPO)
        command = [
            sys.executable,
            "-m",
            "agent",
            "dev",
            "--scenario",
            scenario,
            "--json",
            "--quiet",
            "--speed",
            f"{speed:g}",
            "--run-dir",
            run_dir,
        ]
        if strategy is None:
            command.append("--no-agent")
        else:
            command += ["--strategy", strategy]
        if time_limit is not None:
            command += ["--time-limit", f"{time_limit:g}"]
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"no JSON summary (exit {done.returncode}): {done.stderr[-2000:]}")
    summary = json.loads(lines[-1])
    return Run(
        mode=mode,
        all_running_s=summary.get("timeToAllRunningSeconds"),
        cost=summary["costEstimate"],
        idle_node_s=summary["idleNodeSeconds"],
        agent_cs_writes=summary["agentCsWrites"],
        eci_pods=summary["eciPods"],
        ending=summary["ending"],
    )


def _median(values: list[float], fmt: str = ",.1f") -> str:
    return format(statistics.median(values), fmt) if values else "–"


def table(runs: list[Run]) -> str:
    rows = [
        "| mode | runs | sim s to all Running | cost CNY | idle node·s | agent CS writes "
        "| ECI pods | ended at rest |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for mode in dict.fromkeys(r.mode for r in runs):
        group = [r for r in runs if r.mode == mode]
        times = [r.all_running_s for r in group if r.all_running_s is not None]
        rows.append(
            f"| {mode} | {len(group)} | {_median(times)} "
            f"| {_median([r.cost for r in group], '.3f')} "
            f"| {_median([r.idle_node_s for r in group])} "
            f"| {_median([float(r.agent_cs_writes) for r in group], 'g')} "
            f"| {_median([float(r.eci_pods) for r in group], 'g')} "
            f"| {sum(r.ending == 'rest' for r in group)}/{len(group)} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scenario", default="seed-companion")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--speed", type=float, default=50.0)
    parser.add_argument(
        "--time-limit",
        type=float,
        default=None,
        metavar="SECONDS",
        help="simulated seconds before a run gives up (default: the scenario's)",
    )
    parser.add_argument(
        "--strategies",
        default="latency",
        help="comma-separated strategies the agent runs under, each a row of its own "
        "(default: latency; e.g. latency,cost,pool-first)",
    )
    args = parser.parse_args()
    strategies: list[str | None] = [*args.strategies.split(","), None]
    runs = []
    for i in range(args.repeat):
        for strategy in strategies:
            run = one_run(
                strategy, scenario=args.scenario, speed=args.speed, time_limit=args.time_limit
            )
            print(f"run {i + 1}/{args.repeat} {run.mode}: {run}", file=sys.stderr, flush=True)
            runs.append(run)
    print(f"{args.scenario} at x{args.speed:g}, medians over {args.repeat} runs per mode\n")
    print(table(runs))


if __name__ == "__main__":
    main()
