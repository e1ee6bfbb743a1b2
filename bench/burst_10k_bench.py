"""burst-10k benchmark: 10,080 Ray workers through dev mode, and whose CPU the run is.

Timed runs: `python -m agent dev --scenario burst-10k --json --quiet --speed S` in a fresh
process, as `burst_bench.one_run` does (wall time, simulated seconds to all Running, decision
rounds and the longest round's wall time, reaction p50/p99, ECI pods, pods still unplaceable at
the end, CPU seconds).

Then one more run of the same command under cProfile (which slows it, so its own times are not
reported) splits the process's CPU between the agent and the simulated world: each function's
own time goes to the package whose code it is — agent.sim.* (the embedded ACK: API server, world,
cloud emulators), agent.dev.* (the dev run's bookkeeping and live view), the rest of agent.*
(the agent), functions.* (the decision function the FC emulator hosts) — and the time of library
code (json, aiohttp, dict methods, ...) goes to its callers in proportion to the time each call
path spent there, up to the first of our frames. Time in the event loop's poll is idle. cProfile
sees the main thread only; the run has no other thread doing work.

The same scenario with the world and the agent in separate processes, so the agent's rounds are
measured on a loop of their own: bench/burst_10k_split_bench.py.

Usage: python bench/burst_10k_bench.py [--speed 20] [--repeat 1] [--no-profile] [--repo DIR]
       [--profile FILE.prof] [--files N]
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from burst_bench import REPO, one_run

SCENARIO = "burst-10k"
IDLE = "<method 'poll' of 'select.epoll' objects>"
PARTS = ("agent", "sim", "dev", "functions")


def _part(repo: str, function: tuple[str, int, str]) -> str | None:
    """Which part of the run a function's own code is, or None for library code."""
    path, _, name = function
    if name == IDLE:
        return "idle"
    if not path.startswith(repo):
        return None
    relative = path[len(repo) :].lstrip("/")
    if relative.startswith("agent/sim/"):
        return "sim"
    if relative.startswith("agent/dev/"):
        return "dev"
    if relative.startswith("agent/"):
        return "agent"
    if relative.startswith("functions/"):
        return "functions"
    return "other"


def _file(repo: str, function: tuple[str, int, str]) -> str | None:
    """The checkout's file a function is in, or None for library code."""
    if function[2] == IDLE:
        return "idle"
    return function[0][len(repo) :].lstrip("/") if function[0].startswith(repo) else None


def cpu_split(profile: Path, repo: Path, *, by_file: bool = False) -> dict[str, float]:
    """Seconds of CPU per part (see the module docstring), or per file of the checkout, from a
    cProfile dump."""
    stats = pstats.Stats(str(profile)).stats  # type: ignore[attr-defined]
    root = str(repo)
    owner = _file if by_file else _part
    shares: dict[tuple[str, int, str], dict[str, float]] = {}

    def share(function: tuple[str, int, str], seen: frozenset) -> dict[str, float]:
        if function in shares:
            return shares[function]
        part = owner(root, function)
        if part is not None:
            shares[function] = {part: 1.0}
            return shares[function]
        if function in seen:  # recursion among library frames: leave it to the outer call
            return {}
        callers = stats[function][4] if function in stats else {}
        total = sum(edge[2] for edge in callers.values())
        result: dict[str, float] = defaultdict(float)
        if total <= 0:
            result["unattributed"] = 1.0
        else:
            for caller, edge in callers.items():
                upstream = share(caller, seen | {function}) or {"unattributed": 1.0}
                for name, weight in upstream.items():
                    result[name] += weight * edge[2] / total
        shares[function] = dict(result)
        return shares[function]

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 100_000))
    seconds: dict[str, float] = defaultdict(float)
    for function, row in stats.items():
        for name, weight in share(function, frozenset()).items():
            seconds[name] += row[2] * weight  # row[2]: the function's own time
    return dict(seconds)


def profiled_run(repo: Path, speed: float, profile: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="burst-10k-profile-") as run_dir:
        env = {**os.environ, "PYTHONPATH": str(repo)}
        command = [
            sys.executable,
            "-m",
            "cProfile",
            "-o",
            str(profile),
            "-m",
            "agent",
            "dev",
            "--scenario",
            SCENARIO,
            "--json",
            "--quiet",
            "--speed",
            str(speed),
            "--run-dir",
            run_dir,
        ]
        subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--speed", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--repo", default=str(REPO), help="checkout to run")
    parser.add_argument("--no-profile", action="store_true", help="skip the CPU split run")
    parser.add_argument("--profile", help="keep the profiled run's cProfile dump here")
    parser.add_argument("--files", type=int, default=0, help="also list the N costliest files")
    args = parser.parse_args()
    repo = Path(args.repo).resolve()
    for _ in range(args.repeat):
        run = one_run(repo, args.speed, scenario=SCENARIO, decider="fc")
        print(json.dumps(run.__dict__), flush=True)
        # the scenario description's "expected:" outcome
        met = (
            run.running == run.pods
            and run.unplaceable == 0
            and run.given_back
            and run.ending == "rest"
        )
        print(f"expected outcome: {'met' if met else 'NOT met'}", flush=True)
    if args.no_profile:
        return
    with tempfile.TemporaryDirectory(prefix="burst-10k-bench-") as scratch:
        profile = Path(args.profile or Path(scratch) / "run.prof").resolve()
        profiled_run(repo, args.speed, profile)
        seconds = cpu_split(profile, repo)
        files = cpu_split(profile, repo, by_file=True) if args.files else {}
        busy = sum(v for k, v in seconds.items() if k != "idle")
        print("CPU split of one profiled run (seconds, share of busy CPU):")
        for name, value in sorted(seconds.items(), key=lambda kv: -kv[1]):
            share = "" if name == "idle" else f"  {100 * value / busy:5.1f} %"
            print(f"  {name:13s} {value:7.1f} s{share}")
    if files:
        print(f"the {args.files} costliest files (seconds, library code counted to its caller):")
        ranked = sorted(files.items(), key=lambda kv: -kv[1])
        for name, value in [kv for kv in ranked if kv[0] != "idle"][: args.files]:
            print(f"  {value:7.1f} s  {name}")


if __name__ == "__main__":
    main()
