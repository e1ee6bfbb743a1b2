"""Burst benchmark: the burst scenario through dev mode at several speeds, medians over repeats.

Each run is `python -m agent dev --scenario burst --json --quiet --speed S --run-dir DIR` in a
fresh process (the embedded ACK, the agent through its production wiring, the FC decider), so
one run's leftovers never slow the next. From the `--json` summary line: reaction p50 / p99 (real
ms, per pod: Unschedulable → the write serving it), simulated seconds to all workers Running,
pods that ran on ECI, whether the run ended at rest or at its time limit. From the run's
agent.log (`decision round ... seconds=`): the wall time of the first and of the longest decision
round, and the number of rounds. CPU is the run's user + system seconds.

`--repo DIR` runs another checkout's code (e.g. `git archive <commit> | tar -x -C DIR`), for a
before/after table from one invocation; speeds and repos alternate, so drift in the machine's
load hits both alike.

Usage: python bench/burst_bench.py [--speeds 20,50,100] [--repeat 3] [--repo DIR ...]
       [--scenario burst] [--decider fc]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROUND = re.compile(r"\bdecision round\b.*?\bseconds=([0-9.]+)")


@dataclass(frozen=True)
class Run:
    repo: str
    speed: float
    p50_ms: float
    p99_ms: float
    all_running_s: float | None
    running: int
    pods: int
    eci_pods: int
    unplaceable: int  # worker pods whose last word from the agent was "unplaceable"
    given_back: bool  # every node added was removed, every pool at 0
    ending: str
    rounds: int
    first_round_s: float
    longest_round_s: float
    wall_s: float
    cpu_s: float


def one_run(repo: Path, speed: float, *, scenario: str, decider: str) -> Run:
    with tempfile.TemporaryDirectory(prefix="burst-bench-") as run_dir:
        env = {**os.environ, "PYTHONPATH": str(repo)}
        for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            env.pop(proxy, None)
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
            str(speed),
            "--decider",
            decider,
            "--run-dir",
            run_dir,
        ]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if not lines:
            raise RuntimeError(f"no JSON summary (exit {done.returncode}): {done.stderr[-2000:]}")
        summary = json.loads(lines[-1])
        rounds = [
            float(m.group(1))
            for line in (Path(run_dir) / "agent.log").read_text().splitlines()
            if (m := ROUND.search(line))
        ]
    reaction = summary["reactionMs"]
    return Run(
        repo=str(repo),
        speed=speed,
        p50_ms=reaction["p50"],
        p99_ms=reaction["p99"],
        all_running_s=summary.get("timeToAllRunningSeconds"),
        running=summary["running"],
        pods=summary["pods"],
        eci_pods=summary["eciPods"],
        unplaceable=summary["unplaceable"],
        given_back=summary["nodesAdded"] == summary["nodesRemoved"]
        and all(p == {"desired": 0, "nodes": 0} for p in summary["poolsAtEnd"].values()),
        ending=summary["ending"],
        rounds=len(rounds),
        first_round_s=rounds[0] if rounds else 0.0,
        longest_round_s=max(rounds, default=0.0),
        wall_s=wall,
        cpu_s=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
    )


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):,.1f}" if values else "–"


def table(runs: list[Run]) -> str:
    rows = [
        "| code | speed | runs | reaction p50 ms | reaction p99 ms | sim s to all Running "
        "| all Running | ECI pods | first round s | longest round s | rounds | ended at rest "
        "| CPU s |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---:|",
    ]
    keys = sorted({(r.repo, r.speed) for r in runs}, key=lambda k: (k[1], k[0]))
    for repo, speed in keys:
        group = [r for r in runs if (r.repo, r.speed) == (repo, speed)]
        times = [r.all_running_s for r in group if r.all_running_s is not None]
        rows.append(
            f"| {Path(repo).name} | x{speed:g} | {len(group)} "
            f"| {_median([r.p50_ms for r in group])} | {_median([r.p99_ms for r in group])} "
            f"| {_median(times)} "
            f"| {sum(r.running == r.pods for r in group)}/{len(group)} "
            f"| {_median([float(r.eci_pods) for r in group])} "
            f"| {_median([r.first_round_s for r in group])} "
            f"| {_median([r.longest_round_s for r in group])} "
            f"| {_median([float(r.rounds) for r in group])} "
            f"| {sum(r.ending == 'rest' for r in group)}/{len(group)} "
            f"| {_median([r.cpu_s for r in group])} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--speeds", default="20,50,100")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--repo", action="append", default=None, help="checkout to run (repeatable)"
    )
    parser.add_argument("--scenario", default="burst")
    parser.add_argument("--decider", default="fc", choices=("local", "fc", "http"))
    args = parser.parse_args()
    repos = [Path(r).resolve() for r in (args.repo or [str(REPO)])]
    speeds = [float(s) for s in args.speeds.split(",") if s]
    runs: list[Run] = []
    for _ in range(args.repeat):
        for speed in speeds:
            for repo in repos:
                run = one_run(repo, speed, scenario=args.scenario, decider=args.decider)
                runs.append(run)
                print(json.dumps(run.__dict__), file=sys.stderr, flush=True)
    print(table(runs))


if __name__ == "__main__":
    main()
