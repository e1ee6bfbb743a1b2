"""The live terminal view of a dev-mode run: plain text lines (no curses, so it can be piped or
logged), one status line when the counts change — at most every `min_interval` real seconds, and
at least every `heartbeat` — plus one line per decision (and one `why:` line per action under
it), per change ACK's own autoscaler makes, per agent error and per agent warning as the run
sees them.

Every line is stamped with the simulated time at which it is printed, and never an earlier one,
so the `[t+…]` column only goes forward: a decision round is shown when it has ended, not at the
moment it started (which a status line printed meanwhile may already have passed)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from agent.dev.summary import Decision, Sample


def status_text(
    sample: Sample, *, pools: Mapping[str, int], tasks_done: int, task_count: int
) -> str:
    """`workers 15 wanted: 2 pending, 3 starting, 10 running | np-cpu 5 wanted: 2 NotReady,
    3 Ready | ECI 0 | tasks 4/15 done` — the workers wanted are the RayCluster's replicas, per
    worker group in brackets when there are several."""
    nodes = {pool: (not_ready, ready) for pool, not_ready, ready in sample.nodes}
    wanted = ""
    if sample.replicas:
        groups = ", ".join(f"{group} {count}" for group, count in sample.replicas)
        per_group = f" ({groups})" if len(sample.replicas) > 1 else ""
        wanted = f" {sample.workers_wanted} wanted{per_group}:"
    parts = [
        f"workers{wanted} {sample.pending} pending, {sample.starting} starting, "
        f"{sample.running} running"
    ]
    for pool in sorted(set(pools) | set(nodes)):
        not_ready, ready = nodes.get(pool, (0, 0))
        wanted = f" {pools[pool]} wanted:" if pool in pools else ":"
        parts.append(f"{pool}{wanted} {not_ready} NotReady, {ready} Ready")
    parts.append(f"ECI {sample.eci}")
    parts.append(f"tasks {tasks_done}/{task_count} done")
    return " | ".join(parts)


def stamp(t: float) -> str:
    return f"[t+{t:5.0f}s]"


def decision_text(record: Mapping[str, Any]) -> str:
    """What one decision round (the fields of the agent's `decision round` log line) decided,
    on one line."""
    what = [f"{w['pool']} {w['from']}→{w['to']}" for w in record.get("pools_written") or ()]
    if record.get("eci_placed"):
        what.append(f"{record['eci_placed']} pods on ECI")
    if record.get("left_for_ack_autoscaler"):  # the round log's text: "3 left for ACK ... np-x"
        what.append(str(record["left_for_ack_autoscaler"]))
    reasons: dict[str, int] = {}
    for item in record.get("unplaceable") or ():
        reasons[item["reason"]] = reasons.get(item["reason"], 0) + 1
    what.extend(f"{n} unplaceable ({reason})" for reason, n in reasons.items())
    if record.get("error"):
        what.append(f"error: {record['error']}")
    outcome = record.get("outcome")
    detail = "; ".join(what) or {
        "covered": "capacity already on its way",
        "noop": "nothing to do",
    }.get(str(outcome), "")
    return f"{record.get('reason')} round, {record.get('pods', 0)} pending pods → {outcome}" + (
        f": {detail}" if detail else ""
    )


def scale_in_text(record: Mapping[str, Any]) -> str:
    """What one scale-in round (the fields of the agent's ScaleInRecord) did, on one line."""
    what = []
    if record.get("removed"):
        what.append(f"{len(record['removed'])} nodes " + ", ".join(record["removed"]))
    if record.get("kept"):
        what.append(f"kept {len(record['kept'])} nodes")
    if record.get("error"):
        what.append(f"error: {record['error']}")
    return f"scale-in round → {record.get('outcome')}" + (f": {'; '.join(what)}" if what else "")


class LiveView:
    """Writes the view's lines to `out` as the run goes."""

    def __init__(
        self,
        out: TextIO,
        *,
        task_count: int,
        min_interval: float = 0.5,
        heartbeat: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._out = out
        self._task_count = task_count
        self._min_interval = min_interval
        self._heartbeat = heartbeat
        self._monotonic = monotonic
        self._last_line: str | None = None
        self._last_counts: tuple[Any, ...] | None = None
        self._printed_at = float("-inf")
        self._last_t = 0.0

    def show(
        self, sample: Sample, *, pools: Mapping[str, int], tasks_done: int, final: bool = False
    ) -> None:
        """A status line if due; `final` prints the closing state unless it is already shown."""
        now = self._monotonic()
        counts = (sample.counts(), tuple(sorted(pools.items())), tasks_done)
        changed = counts != self._last_counts
        due = now - self._printed_at >= (self._min_interval if changed else self._heartbeat)
        if not (due or (final and changed)):
            return
        self._last_counts = counts
        self._printed_at = now
        self._write(
            sample.t,
            status_text(sample, pools=pools, tasks_done=tasks_done, task_count=self._task_count),
        )

    def decision(self, t: float, decision: Decision) -> None:
        """`decision` (a round that may have started earlier), seen at simulated `t`, then one
        `why:` line per action with the decision's reason for it."""
        self._write(t, f"decision: {decision.text}")
        for reason in decision.reasons:
            self._write(t, f"  why: {reason}")

    def ack_autoscaler(self, t: float, text: str) -> None:
        """A change ACK's own autoscaler made (a pool with auto scaling on), not the agent."""
        self._write(t, f"ACK autoscaler: {text}")

    def error(self, t: float, message: str) -> None:
        self._write(t, f"agent error: {message}")

    def warning(self, t: float, message: str) -> None:
        self._write(t, f"agent warning: {message}")

    def _write(self, t: float, text: str) -> None:
        self._last_t = max(self._last_t, t)
        print(f"{stamp(self._last_t)} {text}", file=self._out, flush=True)
