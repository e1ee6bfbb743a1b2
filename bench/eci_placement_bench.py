"""ECI placement benchmark: how many of the pods a round sends to ECI are placed in that round.

Runs `python -m agent dev --json --quiet` in-process (the embedded ACK with its scheduler, the
agent through its production wiring, the FC decider) on a scenario (default: burst), once per
speed × arm × repeat. An arm is the bound on re-reads of a pod whose ECI patch was refused
(`Actuator(eci_retries=...)`, set through the constructor's default, since the production wiring
builds the Actuator): 0 is the old behaviour (a refused patch leaves the pod for a later round), 3
the default. The arms of one speed alternate, so drift in the machine's load hits both alike.

Each run keeps every `ApplyResult` the actuator returns (one per decision round) and, at its end,
the dev run's record of the cluster and the Ray job. For the first round that sends pods to ECI
it reports: pods sent, placed on ECI in that round, skipped because the scheduler bound them to a
node meanwhile (not patched; they run there), given up (still changing after the last retry) or
skipped for another reason, patches refused, retries. For the whole run: pods placed on ECI that
never reached Running (lost; must be 0), Ray tasks failed or not done, patches refused.

Usage: python bench/eci_placement_bench.py [--scenario burst] [--speeds 20,100] [--arms 0,3]
       [--repeat 3] [--decider fc] [--time-limit SECONDS]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from agent.actuate.actuation import Actuator, ApplyResult
from agent.dev import run as dev_run


@dataclass(frozen=True)
class Run:
    speed: float
    arm: int
    seconds: float
    rounds: tuple[ApplyResult, ...]
    ran: frozenset[str]  # worker pods that reached Running
    tasks: int
    tasks_done: int
    tasks_failed: int

    @property
    def first(self) -> ApplyResult | None:
        return next((r for r in self.rounds if _sent(r)), None)

    @property
    def eci_rounds(self) -> int:
        return sum(1 for r in self.rounds if _sent(r))

    @property
    def lost(self) -> int:
        placed = {p.name for r in self.rounds for p in r.eci_placed}
        return len(placed - self.ran)

    @property
    def refused(self) -> int:
        return sum(r.eci_refused for r in self.rounds)


def _sent(result: ApplyResult | None) -> int:
    if result is None:
        return 0
    return len(result.eci_placed) + len(result.eci_skipped) + len(result.eci_failed)


def _skips(result: ApplyResult | None) -> dict[str, int]:
    kinds = {"bound": 0, "gave up": 0, "other": 0}
    for pod in result.eci_skipped if result is not None else ():
        if " meanwhile" in pod.reason and "bound to" in pod.reason:
            kinds["bound"] += 1
        elif "still changing" in pod.reason:
            kinds["gave up"] += 1
        else:
            kinds["other"] += 1
    return kinds


@contextlib.contextmanager
def recording(arm: int) -> Iterator[tuple[list[ApplyResult], dict[str, Any]]]:
    """While inside: Actuators are built with eci_retries=`arm`, and what they apply and what
    the dev run recorded at its end are kept."""
    results: list[ApplyResult] = []
    end: dict[str, Any] = {}
    defaults = Actuator.__init__.__kwdefaults__
    assert defaults is not None and "eci_retries" in defaults
    saved_retries, apply, summary = defaults["eci_retries"], Actuator.apply, dev_run.DevRun._summary

    async def kept_apply(self: Actuator, *args: Any, **kwargs: Any) -> ApplyResult:
        result = await apply(self, *args, **kwargs)
        if not result.dry_run:
            results.append(result)
        return result

    def kept_summary(self: dev_run.DevRun, *args: Any) -> dict[str, Any]:
        end["ran"] = frozenset(self.record.ran)
        end["job"] = self.ack.world.ray.summary()
        return summary(self, *args)

    defaults["eci_retries"] = arm
    Actuator.apply = kept_apply  # type: ignore[method-assign]
    dev_run.DevRun._summary = kept_summary  # type: ignore[method-assign]
    try:
        yield results, end
    finally:
        defaults["eci_retries"] = saved_retries
        Actuator.apply = apply  # type: ignore[method-assign]
        dev_run.DevRun._summary = summary  # type: ignore[method-assign]


def run_once(
    scenario: str, speed: float, arm: int, *, decider: str, time_limit: float | None
) -> Run:
    # the dev command's own parser, so its defaults (run directory, keep, ...) follow it
    parser = argparse.ArgumentParser()
    dev_run.register(parser.add_subparsers())
    argv = ["dev", "--scenario", scenario, "--speed", str(speed), "--decider", decider]
    argv += ["--fc-api-version", "3.0", "--json", "--quiet"]
    if time_limit is not None:
        argv += ["--time-limit", str(time_limit)]
    args = parser.parse_args(argv)
    started = time.monotonic()
    with (
        recording(arm) as (results, end),
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        dev_run.dev_command(args)
    job = end["job"]
    return Run(
        speed=speed,
        arm=arm,
        seconds=time.monotonic() - started,
        rounds=tuple(results),
        ran=end["ran"],
        tasks=job.tasks,
        tasks_done=job.done,
        tasks_failed=job.failed,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scenario", default="burst")
    parser.add_argument("--speeds", default="20,100")
    parser.add_argument("--arms", default="0,3", help="re-read bounds to compare")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--decider", default="fc", choices=("local", "fc", "http"))
    parser.add_argument("--time-limit", type=float, default=None)
    args = parser.parse_args()
    speeds = [float(s) for s in args.speeds.split(",")]
    arms = [int(a) for a in args.arms.split(",")]
    runs: list[Run] = []
    print(
        "speed retries rep | first ECI round: sent on-ECI bound gave-up other refused retries"
        " | run: lost tasks-failed tasks-not-done refused eci-rounds real-s",
        flush=True,
    )
    for speed in speeds:
        for rep in range(args.repeat):
            for arm in arms:
                run = run_once(
                    args.scenario, speed, arm, decider=args.decider, time_limit=args.time_limit
                )
                runs.append(run)
                first, skips = run.first, _skips(run.first)
                print(
                    f"x{speed:<4g} {arm:>7} {rep + 1:>3} | {_sent(first):>20} "
                    f"{len(first.eci_placed) if first else 0:>6} {skips['bound']:>5} "
                    f"{skips['gave up']:>7} {skips['other']:>5} "
                    f"{first.eci_refused if first else 0:>7} {first.eci_retries if first else 0:>7}"
                    f" | {run.lost:>9} {run.tasks_failed:>12} "
                    f"{run.tasks - run.tasks_done - run.tasks_failed:>14} {run.refused:>7} "
                    f"{run.eci_rounds:>10} {run.seconds:>6.1f}",
                    flush=True,
                )
    print()
    print(
        "speed retries runs | first round: on ECI (median, min-max) | on ECI or bound elsewhere"
        " (median, min-max) | lost (max) | refused (median)"
    )
    for speed in speeds:
        for arm in arms:
            group = [r for r in runs if r.speed == speed and r.arm == arm]
            on_eci = [len(r.first.eci_placed) / _sent(r.first) if r.first else 0.0 for r in group]
            placed = [
                (len(r.first.eci_placed) + _skips(r.first)["bound"]) / _sent(r.first)
                if r.first
                else 0.0
                for r in group
            ]
            print(
                f"x{speed:<4g} {arm:>7} {len(group):>4} | {statistics.median(on_eci):>6.1%} "
                f"({min(on_eci):.1%}-{max(on_eci):.1%}) | {statistics.median(placed):>6.1%} "
                f"({min(placed):.1%}-{max(placed):.1%}) | {max(r.lost for r in group):>3} | "
                f"{statistics.median(r.refused for r in group):g}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
