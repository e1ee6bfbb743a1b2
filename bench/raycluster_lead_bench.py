"""RayCluster-watch lead in whole scenarios: how long after Ray raises a worker group's
`replicas` the first node is requested, with the agent's RayCluster watch on and off.

Each run is `python -m agent dev --scenario S --json --quiet --speed X --time-limit T` in a
fresh process, with or without `--no-raycluster-watch`: the embedded ACK's Ray autoscaler
stand-in patches the RayCluster over HTTP, its KubeRay operator stand-in creates the pods after
its reconcile delay (the scenario's `ray.operatorDelaySeconds`), the scheduler marks them
Unschedulable, and the agent asks CS for a node. The `--json` summary's
`firstNodeRequestedSeconds` is simulated seconds from Ray's first replicas raise to the first
pool scale write. Only the start matters, so the time limit cuts each run short (the summary is
printed at the limit too).

Speed 1 by default: the agent's batch windows are real time (0.2 s quiet, 2 s at most), so at
50x they stretch to 10-100 simulated seconds and hide a lead of a second.

Usage: python bench/raycluster_lead_bench.py [--scenarios seed,burst] [--repeat 3] [--speed 1]
       [--time-limit 40]
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

REPO = Path(__file__).resolve().parent.parent


def first_node_requested(scenario: str, *, watch: bool, speed: float, limit: float) -> float:
    with tempfile.TemporaryDirectory(prefix="lead-bench-") as run_dir:
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        command = [sys.executable, "-m", "agent", "dev", "--scenario", scenario, "--json"]
        command += ["--quiet", "--speed", f"{speed:g}", "--time-limit", f"{limit:g}"]
        command += ["--run-dir", run_dir] + ([] if watch else ["--no-raycluster-watch"])
        done = subprocess.run(
            command, cwd=REPO, env=env, capture_output=True, text=True, timeout=limit / speed + 120
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if not lines:
            raise SystemExit(f"{scenario}: no --json summary\n{done.stderr[-2000:]}")
        seconds = json.loads(lines[-1])["firstNodeRequestedSeconds"]
        if seconds is None:
            raise SystemExit(f"{scenario}: no node requested within {limit:g} s")
        return float(seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default="seed,burst")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--time-limit", type=float, default=40.0, help="simulated seconds")
    args = parser.parse_args()
    print("scenario | watch | first node requested, simulated s (median, min-max) | runs")
    for scenario in args.scenarios.split(","):
        results: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.repeat):
            for watch in (True, False):  # alternate, so drift in load hits both alike
                results[watch].append(
                    first_node_requested(
                        scenario, watch=watch, speed=args.speed, limit=args.time_limit
                    )
                )
        for watch in (True, False):
            values = results[watch]
            print(
                f"{scenario} | {'on' if watch else 'off'} | {statistics.median(values):.2f} "
                f"({min(values):.2f}-{max(values):.2f}) | {len(values)}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
