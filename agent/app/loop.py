"""The agent's main loop: watchers → view → batcher → request builder → decider → actuation.

`Agent` owns the loops and nothing else: every client (Kubernetes, CS node pools, decider,
actuator) comes in through its constructor, so the simulator and the real cloud are the same code
path. Three watches keep the view current (unbound pods in scope, bound pods in scope for the ECI
count, all nodes), plus the pods bound anywhere for scale-in and free room, and the RayClusters
whose wanted workers without a pod yet join each round as anticipated entries
(agent/ingest/rayclusters.py); a decision round runs when a batch window closes or the resync
tick fires; node
pools are re-read every `pool_refresh_seconds` and at every round with pending pods (actuation
re-reads each pool once more right before writing), and each read says again which are managed
and which are companions, left to ACK's own autoscaler (agent/app/managed_pools.py). SIGTERM
(the `stop` event) lets an in-flight round finish its writes, then the loops end and the pod
Events still queued get a few seconds.

A round is `scale_out_round` and `scale_in_round` over the view, whatever filled it: the watches
here, or one LIST of each (`list_once`) for `python -m agent once` (agent/app/once.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from typing import Any, Protocol

import structlog

from agent.actuate.actuation import PLACED_LABEL, ApplyResult, follow_up_reason
from agent.app.managed_pools import (
    ManagedPools,
    companions_event,
    companions_text,
    left_for_ack_text,
)
from agent.app.own_pod import agent_pod
from agent.app.settings import AgentConfig
from agent.clients.cs import CloudCallError
from agent.clients.kube import (
    RAY_GROUP,
    RAY_VERSION,
    RAYCLUSTERS,
    KubeClient,
    KubeError,
    KubeUnreachable,
)
from agent.decide.deciders import DecisionFailed
from agent.decide.pod_entries import PodEntryCache
from agent.decide.request_builder import EciSettings, PolicySettings, RequestSettings, build_request
from agent.ingest.batching import Batch, Batcher, BatchWindow
from agent.ingest.free_room import beyond_free_room
from agent.ingest.rayclusters import RayClusterDemand
from agent.ingest.view import ClusterView
from agent.ingest.watching import Backoff, Tee, Watcher, WatchSink, WatchTarget
from agent.metrics import AgentMetrics
from agent.model import PendingPod, PoolActivity, PoolInfo, Snapshot
from agent.scale_in.actuation import ScaleInActuator
from agent.scale_in.rounds import ScaleInRecord, ScaleInRounds
from agent.scale_in.tracking import ScaleInPolicy

log = structlog.get_logger(__name__)

RETRY_AFTER_ERROR_SECONDS = 5.0
# A round cut short by a per-decision cap, ECI's capacity or a busy pool Lease continues this
# soon, not at the resync (a 1,000-pod burst would otherwise wait 30 s per 100 nodes). Short:
# in dev mode at x100 one real second is 100 simulated ones. Early is safe: pool raises are
# absolute, and a pod placed on ECI that the view has not caught up with yet is refused by the
# patch's resourceVersion guard, re-read, and skipped (it already tolerates ECI).
FOLLOW_UP_SECONDS = 0.05
RECENT_ERRORS = 20
PENDING_STREAM = "pending-pods"  # the watch of unbound pods in scope


class PoolSource(Protocol):
    async def describe_pools(self) -> list[PoolInfo]: ...

    async def describe_node_quota(self) -> int: ...


class Decides(Protocol):
    async def decide(self, request: dict[str, Any]) -> dict[str, Any]: ...


class Actuates(Protocol):
    @property
    def activity(self) -> Mapping[str, PoolActivity]: ...

    async def refresh(self, pools: list[PoolInfo]) -> Mapping[str, PoolActivity]: ...

    async def apply(
        self,
        reply: Mapping[str, Any],
        request: Mapping[str, Any],
        *,
        dry_run: bool,
        now: str | None = None,
    ) -> ApplyResult: ...

    async def close(self) -> None: ...


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def epoch_of(text: str) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def request_settings(config: AgentConfig) -> RequestSettings:
    """What the request builder needs from the configuration. A price key is a pool id or an
    instance type; one never matches the other, so the map serves both lookups."""
    return RequestSettings(
        cluster_id=config.cluster_id,
        region=config.region,
        managed_pools=None,  # the agent hands over only the pools it decides with (ManagedPools)
        pool_prices=config.prices,
        instance_type_prices=config.prices,
        eci=EciSettings(
            enabled=config.eci_enabled,
            price_per_vcpu_second=config.eci_price_per_vcpu_second,
            price_per_gib_second=config.eci_price_per_gib_second,
            start_seconds=config.eci_start_seconds,
            max_pods=config.eci_max_pods,
        ),
        policy=PolicySettings(
            strategy=config.strategy,
            latency_budget_seconds=config.latency_budget_seconds,
            expected_run_seconds=config.expected_run_seconds,
            max_new_nodes_per_decision=config.max_new_nodes_per_decision,
            max_provision_seconds=config.max_provision_seconds,
        ),
        ack_scan_interval_seconds=config.ack_scan_interval_seconds,
    )


def scale_in_policy(config: AgentConfig) -> ScaleInPolicy:
    """The scale-in/v1 policy block from the configuration."""
    return ScaleInPolicy(
        unneeded_seconds=config.scale_down_unneeded_seconds,
        utilization_threshold=config.scale_down_utilization_threshold,
        delay_after_add_seconds=config.scale_down_delay_after_add_seconds,
        delay_after_failure_seconds=config.scale_down_delay_after_failure_seconds,
        max_nodes_per_decision=config.scale_in_max_nodes_per_decision,
        drain_non_empty=config.scale_in_drain_non_empty,
        max_provision_seconds=config.max_provision_seconds,
    )


@dataclass(frozen=True)
class RoundRecord:
    """What the last decision round did, for /status."""

    at: str
    reason: str
    pods: int
    outcome: str
    anticipated: int = 0  # workers a RayCluster wants that have no pod yet, decided with the pods
    decision_id: str = ""
    seconds: float = 0.0
    pools_written: tuple[dict[str, Any], ...] = ()
    eci_placed: int = 0
    unplaceable: tuple[dict[str, str], ...] = ()
    error: str | None = None
    # the reply's actions: kind, pool ("" for ECI), pod count and the decide/v1 reason text
    actions: tuple[dict[str, Any], ...] = ()
    # pods the decision left for ACK's autoscaler, per companion pool: {"pool", "pods"}
    left_for_ack_autoscaler: tuple[dict[str, Any], ...] = ()
    # scale-outs the reply asked of a companion pool, refused: {"pool", "reason"}
    refused: tuple[dict[str, str], ...] = ()


@dataclass(frozen=True)
class RoundPlan:
    """The last scale-out round's decide/v1 reply and what applying it did (or, in dry-run,
    would do): what `python -m agent once` prints."""

    reply: Mapping[str, Any]
    result: ApplyResult


class Agent:
    """One agent for one cluster. `run(stop)` until `stop` is set."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        kube: KubeClient,
        pools: PoolSource,
        decider: Decides,
        actuator: Actuates,
        metrics: AgentMetrics | None = None,
        now: Callable[[], float] = time.time,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
        scale_in: ScaleInActuator | None = None,
    ) -> None:
        """`scale_in` applies scale-in replies; without it (or with scale_in_enabled off) the
        agent only scales out."""
        self.config = config
        self.metrics = metrics or AgentMetrics()
        self._kube = kube
        self._pools = pools
        self._decider = decider
        self._actuator = actuator
        self._now = now
        self._settings = request_settings(config)
        self.managed = ManagedPools(
            config.managed_pools,
            allow_ack_autoscaled=config.allow_ack_autoscaled_pools,
            companion_pools=config.companion_pools,
        )
        self.node_quota: int | None = None  # DescribeUserQuota node_quota, else the fallback
        self.batcher = Batcher(
            BatchWindow(
                idle_seconds=config.batch_idle_seconds, max_seconds=config.batch_max_seconds
            ),
            resync_seconds=config.resync_seconds,
        )
        self.view = ClusterView(on_pending=self._on_pending, on_node_pods=self._on_node_pods)
        # The pending pods' decide/v1 entries, kept built (and encoded) between rounds.
        self._entries = PodEntryCache()
        # One write round at a time: a removal never interleaves with a raise of the same pool.
        self._writes = asyncio.Lock()
        self.scale_in: ScaleInRounds | None = None
        if config.scale_in_enabled and scale_in is not None:
            self.scale_in = ScaleInRounds(
                self.view,
                read_pools=self._read_pools,
                activity=lambda: actuator.activity,
                decider=decider,
                actuator=scale_in,
                settings=self._settings,
                policy=scale_in_policy(config),
                metrics=self.metrics,
                now=now,
                dry_run=config.dry_run,
            )
        # read at scrape time, so the gauge is current between decision rounds too
        self.metrics.pending_pods.set_function(lambda: len(self.view.pending))
        self.pool_infos: list[PoolInfo] = []
        self._pools_read_at: float | None = None
        self.last_round: RoundRecord | None = None
        self.last_plan: RoundPlan | None = None
        self.rounds = 0
        self.errors: deque[dict[str, str]] = deque(maxlen=RECENT_ERRORS)
        self._tasks: list[asyncio.Task[None]] = []
        self._in_round = False
        rng = rng or random.Random()
        backoff = backoff or Backoff()
        namespace, selector = config.namespace, config.label_selector
        # RayCluster demand counts the worker pods the two scoped pod watches deliver.
        self.rayclusters: RayClusterDemand | None = None
        pending_sink: WatchSink = self.view.pods
        bound_sink: WatchSink = self.view.bound
        if config.raycluster_watch:
            self.rayclusters = RayClusterDemand(
                on_raise=self.batcher.trigger, selector=selector, ray_cluster=config.ray_cluster
            )
            pending_sink = Tee(self.view.pods, self.rayclusters.pods.unbound)
            bound_sink = Tee(self.view.bound, self.rayclusters.pods.bound)
        targets: tuple[tuple[WatchTarget, WatchSink], ...] = (
            (
                WatchTarget(
                    PENDING_STREAM,
                    "pods",
                    namespace=namespace,
                    label_selector=selector,
                    field_selector="spec.nodeName=",
                ),
                pending_sink,
            ),
            (
                WatchTarget(
                    "bound-pods",
                    "pods",
                    namespace=namespace,
                    label_selector=selector,
                    field_selector="spec.nodeName!=",
                ),
                bound_sink,
            ),
            (WatchTarget("nodes", "nodes"), self.view.nodes_sink),
        )
        if self.scale_in is not None or self.rayclusters is not None:
            # Scale-in judges every pod on a node, whoever owns it; the RayCluster demand leaves
            # out workers that fit the free room running nodes have (agent/ingest/free_room.py).
            targets = (
                *targets,
                (
                    WatchTarget("node-pods", "pods", field_selector="spec.nodeName!="),
                    self.view.node_pods_sink,
                ),
            )

        def watcher(
            target: WatchTarget,
            sink: WatchSink,
            on_relisted: Callable[[str], None] | None = None,
        ) -> Watcher:
            return Watcher(
                kube,
                target,
                sink=sink,
                page_size=config.list_page_size,
                timeout_seconds=config.watch_timeout_seconds,
                read_timeout=config.watch_read_timeout_seconds or None,
                backoff=backoff,
                rng=rng,
                on_restart=self._watch_restarted,
                on_api_error=lambda code: self.metrics.api_error("kubernetes", code),
                on_relisted=on_relisted,
            )

        self.watchers = [watcher(target, sink) for target, sink in targets]
        # Apart from `watchers`: rounds never wait for it (a cluster without KubeRay, or RBAC
        # without rayclusters, still scales for pods); its demand counts once it has listed.
        self.raycluster_watcher: Watcher | None = None
        if self.rayclusters is not None:
            self.raycluster_watcher = watcher(
                WatchTarget("rayclusters", RAYCLUSTERS, namespace=namespace),
                self.rayclusters.sink,
                # workers wanted before the agent started (or while the watch was down and the
                # history expired) fire no trigger: decide on them once listed
                on_relisted=lambda _: self.batcher.request_resync(),
            )

    # --- the loops -----------------------------------------------------------------------------

    async def check_pools(self) -> None:
        """Start-up: refuse pools that cannot be managed (raises `PoolsRefused`), read the node
        quota. An unreachable CS API does not stop the start; the pool refresh keeps trying."""
        await self._read_node_quota()
        try:
            pools = await self._pools.describe_pools()
        except CloudCallError as error:
            self._error("cs", f"DescribeClusterNodePools at start-up: {error}")
            return
        for warning in self.managed.check(pools):
            log.warning(warning)
        selected = await self._select(pools)
        self._remember_pools(selected)
        log.info(
            "managed pools",
            pools={p.pool_id: f"{p.min_size}..{p.max_size}" for p in selected if not p.companion},
            node_quota=self.node_quota,
        )

    async def _select(self, pools: list[PoolInfo]) -> list[PoolInfo]:
        """The pools to decide with (ManagedPools.select); the first time, the companion pools
        among them are announced."""
        first = self.managed.owners is None
        selected = self.managed.select(pools)
        if first:
            await self._announce_companions([p for p in selected if p.companion])
        return selected

    async def _announce_companions(self, companions: list[PoolInfo]) -> None:
        """One log line and one Event (on the agent's own Pod) naming the pools left to ACK's
        autoscaler and their ACK bounds: the Event is what `kubectl describe pod` shows whoever
        wonders why the agent never scales them."""
        if not companions:
            return
        log.info(
            companions_text(companions),
            companion_pools={p.pool_id: f"{p.min_size}..{p.max_size}" for p in companions},
        )
        involved = agent_pod(self.config)
        event = companions_event(involved, companions, now=rfc3339(self._now()))
        try:
            await self._kube.create_event(str(event["metadata"]["namespace"]), event)
        except (KubeError, KubeUnreachable) as error:
            log.info("event not recorded", reason=event["reason"], error=type(error).__name__)

    async def check_rayclusters(self) -> None:
        """Start-up: turn the RayCluster watch off, saying so once, when discovery shows
        `ray.io/v1 rayclusters` is not served (no KubeRay CRD). A discovery that fails otherwise
        leaves the watch on: it retries with its backoff like every other watch."""
        if self.raycluster_watcher is None:
            return
        try:
            served = await self._kube.served(RAY_GROUP, RAY_VERSION, RAYCLUSTERS)
        except (KubeError, KubeUnreachable) as error:
            log.warning("RayCluster discovery failed; watching anyway", error=str(error))
            return
        if not served:
            log.warning(
                "ray.io/v1 rayclusters is not served (no KubeRay CRD): RayCluster watch off, "
                "scaling for pending pods only"
            )
            self.raycluster_watcher = None
            self.rayclusters = None

    @property
    def kube(self) -> KubeClient:
        """The Kubernetes client the agent was given (the reconcile function's scale-in timers
        live on node annotations: agent/agentless/unneeded_marks.py)."""
        return self._kube

    @property
    def all_watchers(self) -> list[Watcher]:
        """Every watch this agent runs: the pod and node watches, and the RayCluster one."""
        extra = [] if self.raycluster_watcher is None else [self.raycluster_watcher]
        return [*self.watchers, *extra]

    async def list_once(self) -> None:
        """Fill the view from one LIST of each watch instead of running them (`once`). A pod or
        node LIST that fails raises (KubeError, KubeUnreachable); a RayCluster LIST that fails
        is recorded as an error and leaves the demand out, as rounds never wait for that watch
        either.

        The LISTs are separate reads, not one snapshot (the API server offers none across
        resources), so the order is chosen for what a change between them can do. The unbound
        pods come first, the bound pods and nodes after: a pod the scheduler binds in between
        is then in both, which the view reads as bound (ClusterView), never in neither. Listed
        together, a pod could be read pending and, a moment later, bound to a Ready node whose
        room it took: a round raised a pool for it. What is left errs towards not scaling: a
        node turning Ready between the node and pod LISTs shows more room than it has, or
        counts as a node still to come (desired above Ready); the pool sizes are read after
        all of them, in the round."""
        unbound = [w for w in self.watchers if w.target.name == PENDING_STREAM]
        await asyncio.gather(*(w.relist() for w in unbound))
        await asyncio.gather(*(w.relist() for w in self.watchers if w not in unbound))
        if self.raycluster_watcher is not None:
            try:
                await self.raycluster_watcher.relist()
            except (KubeError, KubeUnreachable) as error:
                self._error("kubernetes", f"RayCluster LIST failed; deciding without: {error}")

    def anticipated(self) -> tuple[PendingPod, ...]:
        """Workers the RayClusters want that have no pod yet (none before their first LIST)."""
        if self.rayclusters is None or self.raycluster_watcher is None:
            return ()
        if not self.raycluster_watcher.synced.is_set():
            return ()
        nodes = tuple(self.view.nodes.values())
        return beyond_free_room(self.rayclusters.missing(), nodes, self.view.node_pods)

    async def _read_node_quota(self) -> None:
        try:
            self.node_quota = await self._pools.describe_node_quota()
        except CloudCallError as error:
            self.metrics.api_error("cs", error.code)
            if self.node_quota is None:
                self.node_quota = self.config.node_quota_fallback
                log.warning(
                    "node quota unreadable; assuming the configured fallback",
                    code=error.code,
                    node_quota=self.node_quota,
                )

    async def run(self, stop: asyncio.Event) -> None:
        """Run every loop until `stop` is set; then let an in-flight round finish and return.
        Raises `PoolsRefused` before starting when the configured pools cannot be managed."""
        await self.check_pools()
        await self.check_rayclusters()
        loops: list[tuple[str, Callable[[], Coroutine[Any, Any, None]]]] = [
            *((f"watch:{w.target.name}", w.run) for w in self.all_watchers),
            ("pool-refresh", self._pool_refresh_loop),
        ]
        self._tasks = [asyncio.create_task(run(), name=name) for name, run in loops]
        decisions = asyncio.create_task(self._decision_loop(stop), name="decisions")
        self._tasks.append(decisions)
        finishing = [decisions]
        if self.scale_in is not None:
            finishing.append(asyncio.create_task(self._scale_in_loop(stop), name="scale-in"))
            self._tasks.append(finishing[-1])
        log.info(
            "agent started",
            cluster=self.config.cluster_id,
            dry_run=self.config.dry_run,
            selector=self.config.label_selector,
            decider=self.config.decider,
            raycluster_watch=self.raycluster_watcher is not None,
        )
        try:
            await stop.wait()
            # The decision loops see `stop` themselves; a round in progress completes its writes.
            await asyncio.gather(*finishing)
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.close()
            log.info("agent stopped", rounds=self.rounds)

    async def close(self) -> None:
        """The pod Events still queued get a few seconds, then the rest is dropped (counted)."""
        await self._actuator.close()

    async def _synced_unless(self, stopping: asyncio.Future[Any]) -> bool:
        """Wait until every watcher has finished its first LIST; False if `stopping` came first."""
        synced = asyncio.ensure_future(asyncio.gather(*(w.synced.wait() for w in self.watchers)))
        await asyncio.wait({synced, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if synced.done():
            return not stopping.done()
        synced.cancel()
        # Retrieve the cancellation, or asyncio logs "exception was never retrieved" on Ctrl-C.
        with contextlib.suppress(asyncio.CancelledError):
            await synced
        return False

    async def _decision_loop(self, stop: asyncio.Event) -> None:
        stopping: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        try:
            if not await self._synced_unless(stopping):
                return
            log.info("view synced", pending=len(self.view.pending), nodes=len(self.view.nodes))
            self.batcher.request_resync()  # pods pending before we started never fire a trigger
            while not stop.is_set():
                waiting: asyncio.Future[Any] = asyncio.ensure_future(self.batcher.next_batch())
                await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not waiting.done():
                    waiting.cancel()
                    return
                await self.scale_out_round(waiting.result())
        finally:
            stopping.cancel()

    async def _scale_in_loop(self, stop: asyncio.Event) -> None:
        """Every scale_in_interval_seconds, one scale-in round (after the view is synced)."""
        assert self.scale_in is not None
        stopping: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        try:
            if not await self._synced_unless(stopping):
                return
            async with self._writes:  # marks a stopped agent left: cleared now, not a round later
                await self.scale_in.recover()
            while not stop.is_set():
                await asyncio.wait({stopping}, timeout=self.config.scale_in_interval_seconds)
                if stop.is_set():
                    return
                await self.scale_in_round()
        finally:
            stopping.cancel()

    async def scale_out_round(self, batch: Batch) -> RoundRecord:
        """One scale-out round over the view, the loop's and `once`'s: decided and applied under
        the write lock; a pool it raised starts scale-in's cool-down for that pool."""
        async with self._writes:
            record = await self.run_round(batch)
        if self.scale_in is not None and record.outcome == "scaled":
            for write in record.pools_written:
                self.scale_in.scale_ups.raised(write["pool"], at=self._now())
        return record

    async def scale_in_round(self) -> ScaleInRecord | None:
        """One scale-in round over the view under the write lock (None with scale-in off)."""
        if self.scale_in is None:
            return None
        async with self._writes:
            return await self.scale_in.run_round()

    async def run_round(self, batch: Batch) -> RoundRecord:
        """One decision round over the current view. Failures become data: recorded, counted,
        retried by a resync shortly after."""
        self._in_round = True
        started = time.monotonic()
        at = self._now()
        snapshot = self._eligible(placed_on_eci(self.view.snapshot()), at)
        # Taken with the snapshot: a version belongs to the pod object the snapshot holds.
        versions = dict(self.view.versions)
        anticipated = self.anticipated()
        record = RoundRecord(
            at=rfc3339(at),
            reason=batch.reason,
            pods=len(snapshot.pending),
            outcome="idle",
            anticipated=len(anticipated),
        )
        try:
            if snapshot.pending or anticipated:
                record = await self._decide_and_apply(
                    snapshot, record, at=at, versions=versions, anticipated=anticipated
                )
        except (CloudCallError, DecisionFailed) as error:
            api = "cs" if isinstance(error, CloudCallError) else "decider"
            record = replace(record, outcome="error", error=f"{api}: {error}")
            self.metrics.api_error(api, error.code)
            self._error(api, str(error))
            self._retry_soon()
        except Exception as error:  # a bug in one round must not end the loop
            record = replace(record, outcome="error", error=f"{type(error).__name__}: {error}")
            self._error("agent", str(record.error))
            log.exception("decision round failed")
            self._retry_soon()
        finally:
            self._in_round = False
        record = replace(record, seconds=round(time.monotonic() - started, 4))
        self.metrics.decisions.labels(outcome=record.outcome).inc()
        self.rounds += 1
        self.last_round = record
        if record.outcome != "idle":
            fields = {k: v for k, v in asdict(record).items() if v}
            if record.left_for_ack_autoscaler:
                fields["left_for_ack_autoscaler"] = left_for_ack_text(
                    record.left_for_ack_autoscaler
                )
            log.info("decision round", **fields)
        return record

    async def _decide_and_apply(
        self,
        snapshot: Snapshot,
        record: RoundRecord,
        *,
        at: float,
        versions: Mapping[str, str] | None = None,
        anticipated: tuple[PendingPod, ...] = (),
    ) -> RoundRecord:
        pools = await self._read_pools()
        activity = await self._actuator.refresh(pools)
        request = build_request(
            snapshot,
            pools,
            activity,
            settings=self._settings,
            now=rfc3339(at),
            node_quota=self.node_quota,
            entries=self._entries,
            versions=versions,
            anticipated=anticipated,
        )
        with self.metrics.decision_seconds.time():
            reply = await self._decider.decide(request)
        result = await self._actuator.apply(
            reply, request, dry_run=self.config.dry_run, now=rfc3339(self._now())
        )
        self.last_plan = RoundPlan(reply=reply, result=result)
        record = replace(
            record,
            decision_id=result.decision_id,
            pools_written=tuple(
                {"pool": w.pool_id, "from": w.from_desired, "to": w.to_desired}
                for w in result.pools_written
            ),
            eci_placed=len(result.eci_placed),
            unplaceable=tuple(
                {"pod": f"{p.namespace}/{p.name}", "reason": p.reason} for p in result.unplaceable
            ),
            outcome=_outcome(result, reply),
            left_for_ack_autoscaler=tuple(
                {"pool": left.pool_id, "pods": left.pods} for left in result.left_for_ack
            ),
            refused=tuple({"pool": r.pool_id, "reason": r.reason} for r in result.pools_refused),
            actions=tuple(
                {
                    "kind": str(action.get("kind", "")),
                    "pool": str(action.get("poolId", "")),
                    "pods": len(action.get("pods") or ()),
                    "reason": str(action.get("reason", "")),
                }
                for action in reply.get("actions") or ()
            ),
        )
        for refusal in result.pools_refused:
            self._error("agent", f"decision {result.decision_id}: {refusal.reason}: not written")
        for failure in result.pools_failed:
            self.metrics.api_error("cs", failure.code)
            self._error("cs", f"{failure.pool_id}: {failure.code} {failure.message}")
        for failed in result.eci_failed:
            self._error("kubernetes", f"{failed.namespace}/{failed.name}: {failed.reason}")
        if result.pools_failed or result.eci_failed:
            self._retry_soon()
        elif follow_up := follow_up_reason(result):
            log.info("follow-up round soon", reason=follow_up)
            delay = min(FOLLOW_UP_SECONDS, self.config.resync_seconds)
            asyncio.get_running_loop().call_later(delay, self.batcher.request_resync)
        if not self.config.dry_run:
            self._observe_reaction(snapshot, reply, result=result)
            self.metrics.eci_pods_placed.inc(len(result.eci_placed))
            for write in result.pools_written:
                self.metrics.pool_desired.labels(pool=write.pool_id).set(write.to_desired)
        return record

    def _observe_reaction(
        self, snapshot: Snapshot, reply: Mapping[str, Any], *, result: ApplyResult
    ) -> None:
        """Unschedulable since → the write that serves the pod (pool raise or ECI patch)."""
        written = {w.pool_id for w in result.pools_written}
        served = {
            uid
            for action in reply.get("actions", ())
            if action.get("kind") == "scale-pool" and action.get("poolId") in written
            for uid in action.get("pods", ())
        }
        served.update(p.uid for p in result.eci_placed)
        if not served:
            return
        now = self._now()
        for pod in snapshot.pending:
            if pod.uid in served and (since := epoch_of(pod.unschedulable_since)) is not None:
                self.metrics.reaction_seconds.observe(max(0.0, now - since))

    def _eligible(self, snapshot: Snapshot, at: float) -> Snapshot:
        """Leave out pods younger than the configured grace; look again when it has passed."""
        grace = self.config.new_pod_grace_seconds
        if not grace:
            return snapshot
        keep: list[PendingPod] = []
        young: list[PendingPod] = []
        for pod in snapshot.pending:
            since = epoch_of(pod.unschedulable_since)
            (young if since is not None and at - since < grace else keep).append(pod)
        if young:
            # Look again when the first of them comes of age; capped at the batch window so an
            # agent on a sped-up simulated clock (where `now` runs faster than the event loop's
            # time) still looks again soon.
            remaining = min(grace - (at - (epoch_of(p.unschedulable_since) or at)) for p in young)
            delay = min(max(remaining, 0.0), self.config.batch_max_seconds)
            asyncio.get_running_loop().call_later(delay, self.batcher.request_resync)
        return Snapshot(
            pending=tuple(keep), nodes=snapshot.nodes, eci_running_pods=snapshot.eci_running_pods
        )

    async def _read_pools(self) -> list[PoolInfo]:
        """The pools to decide with (managed and companions), read fresh (or the last list when
        CS fails and there is one)."""
        try:
            pools = await self._select(await self._pools.describe_pools())
        except CloudCallError as error:
            if not self.pool_infos:
                raise
            # Actuation re-reads each pool before writing, so a slightly stale list only costs
            # the decision some precision, never a wrong write.
            self.metrics.api_error("cs", error.code)
            self._error("cs", f"DescribeClusterNodePools: {error}; using the last list")
            return self.pool_infos
        self._remember_pools(pools)
        return pools

    def _remember_pools(self, pools: list[PoolInfo]) -> None:
        self.pool_infos = pools
        if self.scale_in is not None:
            self.scale_in.scale_ups.observe_pools(pools, now=self._now())
        self._pools_read_at = time.monotonic()
        ready = {
            pool_id: sum(1 for n in nodes if n.ready)
            for pool_id, nodes in self.view.nodes_by_pool().items()
        }
        for pool in pools:
            self.metrics.pool_desired.labels(pool=pool.pool_id).set(pool.desired)
            self.metrics.pool_ready.labels(pool=pool.pool_id).set(ready.get(pool.pool_id, 0))

    async def _pool_refresh_loop(self) -> None:
        while True:
            try:
                pools = await self._select(await self._pools.describe_pools())
                self._remember_pools(pools)
                await self._actuator.refresh(pools)
                await self._read_node_quota()
            except CloudCallError as error:
                self.metrics.api_error("cs", error.code)
                self._error("cs", f"DescribeClusterNodePools: {error}")
            except Exception as error:  # keep refreshing whatever one attempt did
                self._error("agent", f"pool refresh: {type(error).__name__}: {error}")
                log.exception("pool refresh failed")
            await asyncio.sleep(self.config.pool_refresh_seconds)

    # --- small helpers -------------------------------------------------------------------------

    def _on_pending(self, pod: PendingPod) -> None:
        # A pod its RayCluster announced was decided for as an anticipated worker: it still
        # gets a round (an ECI placement needs its pod), but it does not hold an open window
        # longer — KubeRay's pods arrive right after the replicas change that opened it.
        demand = self.rayclusters
        announced = demand is not None and demand.announced(pod.namespace, pod.labels)
        self.batcher.trigger(pod.uid, extend=not announced)

    def _on_node_pods(self, node_name: str) -> None:
        if self.scale_in is not None:
            self.scale_in.node_changed(node_name)

    def _watch_restarted(self, stream: str, reason: str) -> None:
        self.metrics.watch_restarted(stream, reason)

    def _retry_soon(self) -> None:
        delay = min(RETRY_AFTER_ERROR_SECONDS, self.config.resync_seconds)
        asyncio.get_running_loop().call_later(delay, self.batcher.request_resync)

    def _error(self, source: str, message: str) -> None:
        self.errors.append({"at": rfc3339(self._now()), "source": source, "message": message})
        log.warning("error", source=source, message=message)

    # --- what /healthz, /readyz and /status read -----------------------------------------------

    def healthy(self) -> bool:
        """False once a loop has ended by itself (they are meant to run until stopped)."""
        return all(not task.done() or task.cancelled() for task in self._tasks) and bool(
            self._tasks
        )

    def ready(self) -> bool:
        return self.not_ready_reason() is None

    def not_ready_reason(self) -> str | None:
        """Why /readyz says not ready: the first full LIST still to come, or a decider that
        refuses the agent's credentials (agent.app.remote_deciders.CredentialWatch)."""
        if not all(w.synced.is_set() for w in self.watchers):
            return "waiting for the first full LIST"
        problem: str | None = getattr(self._decider, "configuration_problem", None)
        return problem

    def status(self) -> dict[str, Any]:
        by_pool = self.view.nodes_by_pool()
        activity = self._actuator.activity
        pending = self.view.snapshot().pending
        return {
            "cluster": self.config.cluster_id,
            "region": self.config.region,
            "ready": self.ready(),
            "notReadyReason": self.not_ready_reason(),
            "dryRun": self.config.dry_run,
            "decider": self.config.decider,
            "pendingPods": len(pending),
            "pending": [
                {
                    "pod": f"{p.namespace}/{p.name}",
                    "since": p.unschedulable_since,
                    "requests": p.requests,
                    "message": p.message,
                }
                for p in pending[:50]
            ],
            "pools": [
                {
                    "id": pool.pool_id,
                    "name": pool.name,
                    "owner": self.managed.owner(pool),
                    "instanceTypes": list(pool.instance_types),
                    "min": pool.min_size,
                    "max": pool.max_size,
                    "desired": pool.desired,
                    "readyNodes": sum(1 for n in by_pool.get(pool.pool_id, ()) if n.ready),
                    "nodes": len(by_pool.get(pool.pool_id, ())),
                    "scalingSince": activity.get(pool.pool_id, PoolActivity()).scaling_since,
                    "lastError": activity.get(pool.pool_id, PoolActivity()).last_error,
                }
                for pool in self.pool_infos
            ],
            "eci": {
                "enabled": self.config.eci_enabled,
                "virtualNodes": sorted(n.name for n in self.view.nodes.values() if n.virtual),
                "runningPods": self.view.eci_running_pods,
            },
            "rounds": self.rounds,
            "lastDecision": None if self.last_round is None else asdict(self.last_round),
            "watches": {
                w.target.name: {
                    "synced": w.synced.is_set(),
                    "resourceVersion": w.resource_version,
                    "lists": w.lists,
                    "events": w.events,
                    "restarts": dict(w.restarts),
                    "lastError": w.last_error,
                }
                for w in self.all_watchers
            },
            "anticipatedWorkers": len(self.anticipated()),
            "errors": list(self.errors),
            "scaleIn": None if self.scale_in is None else self.scale_in.status(),
        }


def placed_on_eci(snapshot: Snapshot) -> Snapshot:
    """Pods this agent already placed on ECI (its label and the toleration patched in) that the
    scheduler has not bound yet are ECI's: counted among ECI's pods and left out of the next
    decision. Without this a follow-up round right after the placements saw ECI with room for
    them again (only bound pods counted) and could send them to a pool, or more pods to ECI
    than its maxPods."""
    on_way = [p for p in snapshot.pending if p.labels.get(PLACED_LABEL) == "eci"]
    if not on_way:
        return snapshot
    return Snapshot(
        pending=tuple(p for p in snapshot.pending if p.labels.get(PLACED_LABEL) != "eci"),
        nodes=snapshot.nodes,
        eci_running_pods=snapshot.eci_running_pods + len(on_way),
    )


def _outcome(result: ApplyResult, reply: Mapping[str, Any]) -> str:
    """One label per round, most telling first."""
    if result.dry_run:
        return "dry_run"
    if result.pools_failed or result.eci_failed:
        return "failed"
    if result.pools_refused:
        return "refused"
    if result.pools_written:
        return "scaled"
    if result.eci_placed:
        return "eci"
    if reply.get("covered") or result.pools_skipped:
        return "covered"
    if result.unplaceable:
        return "unplaceable"
    return "noop"
