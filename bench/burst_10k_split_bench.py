"""burst-10k (or `--scenario`) with the simulated world in its own process: the agent's decision
rounds measured on an event loop it does not share with the simulator.

`python -m agent sim serve --scenario burst-10k --speed S` serves the world (Kubernetes API, CS
and FC emulators, the Ray workload) in one process; `python -m agent run --sim-info FILE` runs
the agent against it in another, with the settings dev mode gives it (`agent.dev.run
.agent_environment`: the scenario's policy, the periodic settings in simulated time) and JSON
logs. One difference stays: a separate agent measures policy durations on the wall clock, not the
simulated one, so its scale-in timers run `S` times slower in simulated terms and its reaction
times (Unschedulable, stamped by the simulated clock, to a write) mean nothing; scale-out
decisions do not depend on that clock (the request's budget and boot seconds are numbers).

This process polls the API server (worker pods and pool nodes, every `--poll` real seconds)
until the run is at rest — at least `--workers` worker pods seen, none left (the job done, its
workers gone) and no pool node left (every node given back) — or the scenario's time limit.
Then both get SIGTERM. Reported: the agent's `decision round` lines (count, first, longest, every
round over 2 s with its pods, outcome and when its `decision applied` line came), ECI pods, worker
pods seen Running (a poll can miss a pod that comes up after the last task was handed out and
idles out between two polls) and seen to vanish while Pending, each process's CPU seconds
(/proc/PID/stat just before the stop), simulated seconds (real × speed) to the first poll with
every worker seen and none Pending, and the world's own summary of the Ray job.

Usage: python bench/burst_10k_split_bench.py [--scenario burst-10k] [--speed 20] [--repeat 1]
       [--poll 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from agent.dev.run import agent_environment  # noqa: E402
from agent.sim.scenario import load_scenario  # noqa: E402
from functions.contract import POOL_LABEL  # noqa: E402

DEFAULT_SCENARIO = "burst-10k"
WORKER_SELECTOR = "ray.io/node-type=worker"
SLOW_ROUND_SECONDS = 2.0  # issue 13: a decision round takes at most 2 s of wall time
READY_SECONDS = 120.0
STOP_SECONDS = 60.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Progress:
    """What the polls saw of the worker pods."""

    seen: set[str] = field(default_factory=set)
    ran: set[str] = field(default_factory=set)
    on_eci: set[str] = field(default_factory=set)
    pending: set[str] = field(default_factory=set)  # Pending at the last poll
    vanished_pending: set[str] = field(default_factory=set)  # gone while last seen Pending
    running_now: int = 0
    pool_nodes_now: int = 0
    all_running_at: float | None = None  # simulated seconds since the start, poll resolution


@dataclass(frozen=True)
class SplitRun:
    speed: float
    rounds: int
    first_round_s: float
    longest_round_s: float
    slow_rounds: list[dict[str, Any]]
    round_seconds: list[float]
    eci_pods: int
    pods_seen: int
    pods_ran: int
    vanished_pending: int
    running_at_end: int
    pending_at_end: int
    pool_nodes_at_end: int
    sim_s_to_all_running: float | None
    ended: str
    wall_s: float
    agent_cpu_s: float
    world_cpu_s: float
    agent_cpu_share: float
    ray_job: str


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, from /proc (fields 14 and 15 of its stat line)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def list_workers(api: str, namespace: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"labelSelector": WORKER_SELECTOR})
    with urllib.request.urlopen(f"{api}/api/v1/namespaces/{namespace}/pods?{query}") as reply:
        return list(json.load(reply)["items"])


def pool_nodes(api: str) -> int:
    query = urllib.parse.urlencode({"labelSelector": POOL_LABEL})
    with urllib.request.urlopen(f"{api}/api/v1/nodes?{query}") as reply:
        return len(json.load(reply)["items"])


def observe(progress: Progress, pods: list[dict[str, Any]], eci_node: str | None) -> None:
    progress.running_now = 0
    pending: set[str] = set()
    names: set[str] = set()
    for pod in pods:
        name = pod["metadata"]["name"]
        names.add(name)
        phase = pod.get("status", {}).get("phase")
        if phase == "Running":
            progress.ran.add(name)
            progress.running_now += 1
        elif phase == "Pending":
            pending.add(name)
        if eci_node and pod.get("spec", {}).get("nodeName") == eci_node:
            progress.on_eci.add(name)
    progress.vanished_pending |= progress.pending - names
    progress.pending = pending
    progress.seen |= names


def wait_for_file(path: Path, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise RuntimeError(f"sim serve exited ({process.returncode}) before writing {path}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {path} after {timeout:.0f} s")
        time.sleep(0.2)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then wait; SIGKILL if it does not end in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _stamp(line: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(line["timestamp"]).replace("Z", "+00:00")).timestamp()


def read_rounds(log: Path) -> list[dict[str, Any]]:
    """The agent's `decision round` lines, each with the `decision applied` line logged inside
    it (by decision id): when the apply ended, so the time from round start to that is build +
    decide + apply, and what is left after it is the round's own bookkeeping."""
    rounds: list[dict[str, Any]] = []
    applied: dict[str, dict[str, Any]] = {}
    for text in log.read_text().splitlines():
        if not text.startswith("{"):
            continue
        line = json.loads(text)
        if line.get("event") == "decision applied" and line.get("decision_id"):
            applied[str(line["decision_id"])] = line
        elif line.get("event") == "decision round":
            line["applied"] = applied.get(str(line.get("decision_id")))
            rounds.append(line)
    return rounds


def slow_round(line: dict[str, Any]) -> dict[str, Any]:
    ended = _stamp(line)
    started = ended - float(line["seconds"])
    applied = line.get("applied") or {}
    return {
        "seconds": line["seconds"],
        "pods": line.get("pods", 0),
        "outcome": line.get("outcome"),
        "eci_placed": line.get("eci_placed", 0),
        "pools_written": line.get("pools_written", []),
        "actions": [f"{a['kind']} {a['pool']} {a['pods']}" for a in line.get("actions", [])],
        "eci_refused": applied.get("eci_refused"),
        "eci_retries": applied.get("eci_retries"),
        "applied_after_s": round(_stamp(applied) - started, 3) if applied else None,
    }


def one_run(
    repo: Path,
    speed: float,
    *,
    scenario_name: str,
    poll: float,
    workers: int | None,
    keep: Path | None,
) -> SplitRun:
    scenario = load_scenario(scenario_name)
    workers = workers or scenario.task_count  # one Ray worker per task in these scenarios
    run_dir = Path(tempfile.mkdtemp(prefix="split-bench-"))
    info = run_dir / "info.json"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(PYTHONPATH=str(repo), NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    serve_out = (run_dir / "serve.out").open("wb")
    agent_log = (run_dir / "agent.log").open("wb")
    started = time.monotonic()  # the world's clock, and its Ray job, start with its process
    world = subprocess.Popen(
        [sys.executable, "-m", "agent", "sim", "serve", "--scenario", scenario_name,
         "--speed", str(speed), "--info-out", str(info),
         "--kubeconfig-out", str(run_dir / "kubeconfig")],
        cwd=repo, env=env, stdout=serve_out, stderr=subprocess.STDOUT,
    )  # fmt: skip
    agent: subprocess.Popen[bytes] | None = None
    try:
        wait_for_file(info, world, READY_SECONDS)
        served = json.loads(info.read_text())
        agent_env = agent_environment(
            served,
            kubeconfig=Path(served["kubernetes"]["kubeconfig"]),
            decider="fc",
            policy=scenario.policy,
            eci_enabled=scenario.eci.enabled,
            speed=speed,
        )
        agent = subprocess.Popen(
            [sys.executable, "-m", "agent", "run", "--log-format", "json"],
            cwd=repo, env={**env, **agent_env}, stdout=agent_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        api = served["kubernetes"]["url"]
        eci_node = (served.get("eci") or {}).get("virtualNode")
        progress = Progress()
        limit = scenario.time_limit_seconds
        ended = "time-limit"
        while (sim := (time.monotonic() - started) * speed) < limit:
            if world.poll() is not None or agent.poll() is not None:
                ended = "a process exited"
                break
            pods = list_workers(api, scenario.ray.namespace)
            observe(progress, pods, eci_node)
            progress.pool_nodes_now = pool_nodes(api)
            all_came = len(progress.seen) >= workers
            if all_came and not progress.pending and progress.all_running_at is None:
                progress.all_running_at = sim
            if all_came and not pods and not progress.pool_nodes_now:
                ended = "rest"
                break
            time.sleep(poll)
        wall = time.monotonic() - started
        agent_cpu, world_cpu = cpu_seconds(agent.pid), cpu_seconds(world.pid)
    finally:
        for process in (agent, world):
            if process is not None:
                stop(process)
        serve_out.close()
        agent_log.close()
    rounds = read_rounds(run_dir / "agent.log")
    serve_text = (run_dir / "serve.out").read_text(errors="replace")
    job = next((s for s in serve_text.splitlines() if s.startswith("Ray job:")), "(no summary)")
    seconds = [float(r["seconds"]) for r in rounds]
    result = SplitRun(
        speed=speed,
        rounds=len(rounds),
        first_round_s=seconds[0] if seconds else 0.0,
        longest_round_s=max(seconds, default=0.0),
        slow_rounds=[slow_round(r) for r in rounds if float(r["seconds"]) > SLOW_ROUND_SECONDS],
        round_seconds=seconds,
        eci_pods=len(progress.on_eci),
        pods_seen=len(progress.seen),
        pods_ran=len(progress.ran),
        vanished_pending=len(progress.vanished_pending),
        running_at_end=progress.running_now,
        pending_at_end=len(progress.pending),
        pool_nodes_at_end=progress.pool_nodes_now,
        sim_s_to_all_running=progress.all_running_at,
        ended=ended,
        wall_s=round(wall, 1),
        agent_cpu_s=round(agent_cpu, 1),
        world_cpu_s=round(world_cpu, 1),
        agent_cpu_share=round(agent_cpu / max(agent_cpu + world_cpu, 1e-9), 3),
        ray_job=job,
    )
    if keep is not None:
        shutil.copytree(run_dir, keep / run_dir.name)
    shutil.rmtree(run_dir, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--speed", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--repo", default=str(REPO), help="checkout to run")
    parser.add_argument("--poll", type=float, default=3.0, help="real seconds between lists")
    parser.add_argument(
        "--scenario",
        default=DEFAULT_SCENARIO,
        help="built-in scenario name or scenario file (default burst-10k)",
    )
    parser.add_argument(
        "--workers", type=int, help="worker pods to see run (default: the scenario's task count)"
    )
    parser.add_argument("--keep", type=Path, help="copy each run's folder (logs) here")
    args = parser.parse_args()
    for _ in range(args.repeat):
        run = one_run(
            Path(args.repo).resolve(),
            args.speed,
            scenario_name=args.scenario,
            poll=args.poll,
            workers=args.workers,
            keep=args.keep,
        )
        print(json.dumps(asdict(run)), flush=True)


if __name__ == "__main__":
    main()
