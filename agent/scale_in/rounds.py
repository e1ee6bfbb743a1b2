"""One scale-in round: follow the removals in flight → view → scale-in/v1 request → decider →
ScaleInActuator, and its record.

The agent runs a round every `scale_in_interval_seconds`, holding the same lock as its
scale-out rounds, so a removal never interleaves with a raise (across agents, the pool Lease
does that). Each round — and `recover`, once at start — first asks CS about the removals still
running (a drain may fail long after RemoveNodePoolNodes was accepted) and takes removal marks
left behind off nodes (`agent.scale_in.removals`); a failed removal makes the round's outcome
`failed`. The unneeded-time tracker is fed on every change of a node's pods
(`node_changed`, the view's hook) and swept once per round. Failures become data: the round is
recorded with outcome `error` and the next one tries again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

from agent.clients.cs import CloudCallError
from agent.decide.deciders import DecisionFailed
from agent.decide.request_builder import RequestSettings
from agent.ingest.view import ClusterView
from agent.metrics import AgentMetrics
from agent.model import PoolActivity, PoolInfo
from agent.scale_in.actuation import ScaleInActuator, ScaleInResult
from agent.scale_in.removals import FailedRemoval
from agent.scale_in.tracking import (
    ScaleInPolicy,
    ScaleUpLog,
    UnneededTracker,
    build_scale_in_request,
    rfc3339,
)

log = logging.getLogger(__name__)


class Decides(Protocol):
    async def decide(self, request: dict[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ScaleInRecord:
    """What the last scale-in round did, for /status."""

    at: str
    outcome: str  # idle | none | removed | kept | dry_run | failed | error
    decision_id: str = ""
    removed: tuple[str, ...] = ()
    kept: tuple[dict[str, str], ...] = ()
    error: str | None = None
    seconds: float = 0.0


def outcome_of(result: ScaleInResult) -> str:
    if result.dry_run:
        return "dry_run"
    if result.failed:
        return "failed"
    if result.removed:
        return "removed"
    return "kept"


class ScaleInRounds:
    """Scale-in for one agent: the trackers, and `run_round()`."""

    def __init__(
        self,
        view: ClusterView,
        *,
        read_pools: Callable[[], Awaitable[list[PoolInfo]]],
        activity: Callable[[], Mapping[str, PoolActivity]],
        decider: Decides,
        actuator: ScaleInActuator,
        settings: RequestSettings,
        policy: ScaleInPolicy,
        metrics: AgentMetrics,
        now: Callable[[], float],
        dry_run: bool,
    ) -> None:
        self._view = view
        self._read_pools = read_pools
        self._activity = activity
        self._decider = decider
        self._actuator = actuator
        self._settings = settings
        self._policy = policy
        self._metrics = metrics
        self._now = now
        self._dry_run = dry_run
        self.tracker = UnneededTracker(threshold=policy.utilization_threshold)
        self.scale_ups = ScaleUpLog()
        self.last_round: ScaleInRecord | None = None
        self.last_result: ScaleInResult | None = None
        self.rounds = 0

    def node_changed(self, name: str) -> None:
        """The view's hook: a node's pods (or the node) changed."""
        node = self._view.nodes.get(name)
        if node is None or node.virtual:
            self.tracker.forget(name)
            return
        self.tracker.observe(
            name, self._view.node_pods.on_node(name), node.allocatable, now=self._now()
        )

    def sweep(self, now: float) -> None:
        nodes = self._view.nodes
        for name, node in nodes.items():
            if not node.virtual:
                self.tracker.observe(
                    name, self._view.node_pods.on_node(name), node.allocatable, now=now
                )
        self.tracker.keep_only(nodes)

    async def run_round(self) -> ScaleInRecord:
        started = time.monotonic()
        at = self._now()
        record = ScaleInRecord(at=rfc3339(at), outcome="idle")
        try:
            record = await self._round(record, at=at)
        except (CloudCallError, DecisionFailed) as error:
            api = "cs" if isinstance(error, CloudCallError) else "decider"
            self._metrics.api_error(api, error.code)
            record = replace(record, outcome="error", error=f"{api}: {error}")
        except Exception as error:  # a bug in one round must not end the loop
            log.exception("scale-in round failed")
            record = replace(record, outcome="error", error=f"{type(error).__name__}: {error}")
        record = replace(record, seconds=round(time.monotonic() - started, 4))
        self._metrics.scale_in_decisions.labels(outcome=record.outcome).inc()
        self.rounds += 1
        self.last_round = record
        if record.outcome not in ("idle", "none"):
            log.info("scale-in round", extra={k: v for k, v in asdict(record).items() if v})
        return record

    async def recover(self) -> ScaleInRecord:
        """At start, before the first round: follow the removals the nodes' marks name and clear
        the marks a stopped agent left behind (`Removals.recover`), without deciding anything.
        Every round does the same first."""
        at = self._now()
        record = ScaleInRecord(at=rfc3339(at), outcome="idle")
        try:
            return await self._follow_removals(record, at=at)
        except Exception as error:  # the rounds try again; a start must not fail on it
            log.exception("scale-in recovery failed")
            return replace(record, outcome="error", error=f"{type(error).__name__}: {error}")

    async def _follow_removals(self, record: ScaleInRecord, *, at: float) -> ScaleInRecord:
        """The ends of earlier removals: a failed one is this round's outcome until a decision
        has something newer to say. Dry-run writes nothing, so it has nothing to follow."""
        if self._dry_run:
            return record
        removals = self._actuator.removals
        retry_after = self._policy.delay_after_failure_seconds
        failures: list[FailedRemoval] = await removals.follow(
            now=at, present=lambda name: name in self._view.nodes, retry_after=retry_after
        )
        failures += await removals.recover(
            self._view.node_pods.facts,
            pools={name: node.pool_id for name, node in self._view.nodes.items()},
            now=at,
            retry_after=retry_after,
        )
        removals.keep_only(self._view.nodes)
        if not failures:
            return record
        return replace(
            record,
            outcome="failed",
            kept=tuple(
                {"node": node, "reason": f"removal failed: {f.error}"}
                for f in failures
                for node in f.nodes_back
            ),
            error="; ".join(
                f"{f.removal.pool_id} task {f.removal.task_id}: {f.error}" for f in failures
            ),
        )

    async def _round(self, record: ScaleInRecord, *, at: float) -> ScaleInRecord:
        self.sweep(at)
        record = await self._follow_removals(record, at=at)
        pools = await self._read_pools()
        self.scale_ups.observe_pools(pools, now=at)
        activity = self._activity()
        view = self._view
        request = build_scale_in_request(
            [view.nodes[name] for name in sorted(view.nodes)],
            pools,
            facts=view.node_pods.facts,
            pods_on=view.node_pods.on_node,
            tracker=self.tracker,
            last_scale_up=lambda pool_id: self.scale_ups.last(pool_id, activity.get(pool_id)),
            settings=self._settings,
            policy=self._policy,
            now=at,
            leaving=self._actuator.removals.leaving(),
            failed_at=self._actuator.removals.failed_at.get,
        )
        if not any(node.get("poolId") for node in request["nodes"]):
            return record  # no managed node: nothing to ask about
        reply = await self._decider.decide(request)
        record = replace(record, decision_id=str(reply.get("decisionId", "")))
        if record.outcome == "idle":
            record = replace(record, outcome="none")
        if not reply.get("remove"):
            return record
        result = await self._actuator.apply(
            reply, request, dry_run=self._dry_run, now=rfc3339(self._now())
        )
        self.last_result = result
        for failure in result.failed:
            self._metrics.api_error("cs", failure.code)
        if not result.dry_run:
            for removed in result.removed:
                self._metrics.nodes_removed.labels(pool=removed.pool_id).inc()
                self.tracker.forget(removed.node)
            self._metrics.scale_in_kept.inc(len(result.kept))
        errors = [record.error] if record.error else []
        errors += [f"{f.pool_id}: {f.code} {f.message}" for f in result.failed]
        return replace(
            record,
            outcome="failed" if record.outcome == "failed" else outcome_of(result),
            removed=tuple(r.node for r in result.removed),
            kept=(*record.kept, *({"node": k.node, "reason": k.reason} for k in result.kept)),
            error="; ".join(errors) or None,
        )

    def status(self) -> dict[str, Any]:
        """The /status block: settings, timers and the last round."""
        return {
            "policy": self._policy.to_json(),
            "removals": self._actuator.removals.status(),
            "rounds": self.rounds,
            "lastRound": None if self.last_round is None else asdict(self.last_round),
            "emptySince": {
                name: rfc3339(t)
                for name in sorted(self._view.nodes)
                if (t := self.tracker.empty_since(name)) is not None
            },
        }
