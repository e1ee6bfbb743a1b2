"""Actuation: applies one validated decide/v1 reply, idempotently, and remembers what it did.

Scale-outs are absolute: the pool is re-read right before the write and desired is raised to
max(current, toDesired) capped at the pool's max, never lowered and never written when already
there — so a retried decision, a restarted agent or a second agent watching the same pool converge
on the same size instead of adding twice. ECI placement is a JSON patch adding the virtual-node
toleration, guarded by a `test` on the pod's resourceVersion; a refused patch (409/422: typically
the scheduler rewrote the pod's status since the snapshot) is followed by a re-read and the patch
again while the decision still holds, a bounded number of times (`agent.actuate.eci_placement`);
a pod that vanished, got bound or changed what the decision read is skipped, not an error. Pod
Events say what happened, the way cluster-autoscaler's do; they are handed to an `EventSink`
(`agent.actuate.event_sink`), which writes them in the background, coalesced and rate-limited, so
a round's cost is its decision and its cloud writes, not one API write per pod. With a `PoolLock`, each pool write
happens under that pool's Lease, so two agents never interleave a read and a write of the same pool
(CS has no compare-and-set, and a lowered desired can remove a node); a pool whose Lease stays busy
is deferred, not dropped — its pods stay pending and the next round sees them. Per pool,
`PoolActivity` (when desired was raised, the CS task, its failure) is kept and fed back into the
next request.

A companion pool — ACK's own node autoscaler owns it (agent.app.managed_pools) — is never
written: a reply that asks to scale one is refused (logged as an error naming the pool and the
decision, counted), and so is a pool the re-read right before the write shows ACK owns now. Pods
the decision left for ACK's autoscaler (`covered` with `"ackAutoscaler": true`) are counted per
pool and otherwise treated as covered: nothing to write.

A scale-out task that fails (ECS out of stock: OperationDenied.NoStock) leaves the pool's
desired_size raised (whether ACK later lowers it, or keeps trying to reach it, is not documented:
docs/cloud-facts.md). The part no node came for is given back — desired lowered to the nodes CS
counts in the pool, never below, so no node goes — and the pool keeps its error for
`FAILED_POOL_BACKOFF_SECONDS`, so decisions meanwhile use other pools or ECI.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from agent.actuate.eci_placement import ECI_PATCH_RETRIES, place_on_eci
from agent.actuate.eci_placement import PLACED_LABEL as PLACED_LABEL
from agent.actuate.eci_placement import eci_patch as eci_patch
from agent.actuate.event_sink import COMPONENT as COMPONENT
from agent.actuate.event_sink import EventSink, EventWriter
from agent.actuate.pool_lock import PoolLock
from agent.clients.cs import MAX_NODES_ADDED_PER_CALL, CloudCallError, NodePoolClient
from agent.clients.kube import KubeError, KubeUnreachable
from agent.model import PoolActivity, PoolInfo
from functions.contract import (
    ACK_AUTOSCALER,
    DEFERRED,
    ECI_TAINT_EFFECT,
    ECI_TAINT_KEY,
    ECI_TAINT_VALUE,
)
from functions.contract import ECI_TOLERATION as ECI_TOLERATION  # the patch's value; tests read it

log = logging.getLogger(__name__)

# A concurrent writer may lower desired between our read and our write; re-check a few times.
MAX_LOWERED_REWRITES = 2
# How long a pool whose scale-out failed stays marked (lastError: decisions skip it) after its
# unmet size was given back: cluster-autoscaler's initial node group backoff (5 min,
# --initial-node-group-backoff-duration). Without it the next pending pod would ask the
# stocked-out pool again, and wait for another failure.
FAILED_POOL_BACKOFF_SECONDS = 300.0
PLACED_ON_ECI_MESSAGE = (
    "pod placed on the ECI virtual node (toleration "
    f"{ECI_TAINT_KEY}={ECI_TAINT_VALUE}:{ECI_TAINT_EFFECT} added)"
)


class PodWriter(EventWriter, Protocol):
    """The pod calls actuation needs (agent.clients.kube.KubeClient provides them): the ECI patch,
    the re-read of a pod whose patch was refused, and (through the event sink) Events."""

    async def get_pod(self, namespace: str, name: str) -> dict[str, Any]: ...

    async def patch_pod_json(
        self, namespace: str, name: str, ops: list[dict[str, Any]]
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class PoolWrite:
    """A scale-out written (or, in dry-run, that would be written)."""

    pool_id: str
    from_desired: int  # what the pool said right before the write
    to_desired: int
    max_size: int
    task_id: str | None = None


@dataclass(frozen=True)
class PoolSkip:
    pool_id: str
    reason: str


@dataclass(frozen=True)
class LeftForAck:
    """Pods the decision left for ACK's autoscaler on a companion pool."""

    pool_id: str
    pods: int


@dataclass(frozen=True)
class PoolFailure:
    pool_id: str
    code: str
    message: str


@dataclass(frozen=True)
class PodOutcome:
    uid: str
    namespace: str
    name: str
    reason: str = ""


@dataclass(frozen=True)
class ApplyResult:
    """What one reply turned into: written, skipped and failed, per pool and per pod."""

    decision_id: str
    dry_run: bool
    pools_written: tuple[PoolWrite, ...] = ()
    pools_skipped: tuple[PoolSkip, ...] = ()
    pools_failed: tuple[PoolFailure, ...] = ()
    # Asked again next round: another agent held the pool's Lease past the bounded wait, or the
    # raise was larger than one CS call may add.
    pools_deferred: tuple[PoolSkip, ...] = ()
    # Scale-outs the reply asked of a companion pool: never written (ACK's autoscaler owns it).
    pools_refused: tuple[PoolSkip, ...] = ()
    left_for_ack: tuple[LeftForAck, ...] = ()
    eci_placed: tuple[PodOutcome, ...] = ()
    eci_skipped: tuple[PodOutcome, ...] = ()
    eci_failed: tuple[PodOutcome, ...] = ()
    unplaceable: tuple[PodOutcome, ...] = ()
    # Left unplanned by the decision's time limit: still pending, decided again next round.
    deferred: tuple[PodOutcome, ...] = ()
    # ECI patches refused (409/422), sent again after a re-read, and pods given up on because they
    # still changed after the last retry (those are in eci_skipped too).
    eci_refused: int = 0
    eci_retries: int = 0
    eci_gave_up: int = 0

    @property
    def wrote_anything(self) -> bool:
        return bool(self.pools_written or self.eci_placed) and not self.dry_run

    def to_json(self) -> dict[str, Any]:
        """A plain summary for /status, logs and the dry-run report."""
        return {
            "decisionId": self.decision_id,
            "dryRun": self.dry_run,
            "poolsWritten": [
                {
                    "poolId": w.pool_id,
                    "from": w.from_desired,
                    "to": w.to_desired,
                    "max": w.max_size,
                    "taskId": w.task_id,
                }
                for w in self.pools_written
            ],
            "poolsSkipped": [{"poolId": s.pool_id, "reason": s.reason} for s in self.pools_skipped],
            "poolsFailed": [
                {"poolId": f.pool_id, "code": f.code, "message": f.message}
                for f in self.pools_failed
            ],
            "poolsDeferred": [
                {"poolId": s.pool_id, "reason": s.reason} for s in self.pools_deferred
            ],
            "poolsRefused": [{"poolId": s.pool_id, "reason": s.reason} for s in self.pools_refused],
            "leftForAckAutoscaler": [
                {"poolId": left.pool_id, "pods": left.pods} for left in self.left_for_ack
            ],
            "eciPlaced": [f"{p.namespace}/{p.name}" for p in self.eci_placed],
            "eciSkipped": [
                {"pod": f"{p.namespace}/{p.name}", "reason": p.reason} for p in self.eci_skipped
            ],
            "eciFailed": [
                {"pod": f"{p.namespace}/{p.name}", "reason": p.reason} for p in self.eci_failed
            ],
            "unplaceable": [
                {"pod": f"{p.namespace}/{p.name}", "reason": p.reason} for p in self.unplaceable
            ],
            "deferred": [f"{p.namespace}/{p.name}" for p in self.deferred],
            "eciRefused": self.eci_refused,
            "eciRetries": self.eci_retries,
            "eciGaveUp": self.eci_gave_up,
        }


@dataclass
class _Tally:
    decision_id: str = ""
    pools_written: list[PoolWrite] = field(default_factory=list)
    pools_skipped: list[PoolSkip] = field(default_factory=list)
    pools_failed: list[PoolFailure] = field(default_factory=list)
    pools_deferred: list[PoolSkip] = field(default_factory=list)
    pools_refused: list[PoolSkip] = field(default_factory=list)
    eci_placed: list[PodOutcome] = field(default_factory=list)
    eci_skipped: list[PodOutcome] = field(default_factory=list)
    eci_failed: list[PodOutcome] = field(default_factory=list)
    unplaceable: list[PodOutcome] = field(default_factory=list)
    deferred: list[PodOutcome] = field(default_factory=list)
    eci_refused: int = 0
    eci_retries: int = 0
    eci_gave_up: int = 0
    # Events to hand to the sink once the round's writes are sent: (pod, reason, message).
    events: list[tuple[Mapping[str, Any], str, str]] = field(default_factory=list)


# core/v1 Event messages have no length check, but events.k8s.io/v1 caps `note` at 1 KiB
# (NoteLengthLimit, pkg/apis/core/validation/events.go) and `kubectl describe` prints each
# message on one line: a long reason (one clause per pod group) is cut.
REASON_LIMIT = 600


def with_reason(message: str, reason: str) -> str:
    """An Event message followed by the decision's reason for the pod (docs/decide-contract.md),
    so `kubectl describe pod` says why, not only what."""
    reason = reason.strip()
    if not reason:
        return message
    if len(reason) > REASON_LIMIT:
        reason = reason[: REASON_LIMIT - 1] + "…"
    return f"{message}; why: {reason}"


def scale_up_message(pool_id: str, before: int, after: int, max_size: int) -> str:
    """cluster-autoscaler's TriggeredScaleUp wording."""
    return f"pod triggered scale-up: [{{{pool_id} {before}->{after} (max: {max_size})}}]"


def kube_event(
    involved: dict[str, Any],
    namespace: str,
    *,
    reason: str,
    message: str,
    now: str,
    event_type: str = "Normal",
) -> dict[str, Any]:
    """A core/v1 Event about `involved` (an involvedObject), recorded by this component."""
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "generateName": f"{involved.get('name') or 'object'}.",
            "namespace": namespace,
        },
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "type": event_type,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


class Actuator:
    """Applies replies for one cluster through the CS client and a pod writer."""

    def __init__(
        self,
        pools: NodePoolClient,
        pods: PodWriter,
        *,
        max_concurrent_pod_writes: int = 16,
        lock: PoolLock | None = None,
        eci_retries: int = ECI_PATCH_RETRIES,
        now: Callable[[], float] = time.time,
        events: EventSink | None = None,
    ) -> None:
        """`lock` serialises pool writes with other agents; without it a concurrent agent's
        write can briefly lower desired (re-read and rewritten, but ACK may act on it).
        `eci_retries` bounds the re-reads of a pod whose ECI patch was refused; every pod call
        (patch, re-read) takes one of `max_concurrent_pod_writes` slots. `now` (epoch seconds,
        the cluster's clock) times a failed pool's backoff. `events` writes the pod Events (by
        default a sink of its own over `pods`); `await actuator.events.flush()` waits for them,
        `stop()` ends it when the agent stops."""
        self.events = events if events is not None else EventSink(pods)
        self._pools = pools
        self._now = now
        self._lock = lock
        self._pods = pods
        self._pod_slots = asyncio.Semaphore(max_concurrent_pod_writes)
        self._eci_retries = eci_retries
        self._activity: dict[str, PoolActivity] = {}
        self.counters: dict[str, int] = {
            "pool_writes": 0,
            "pool_skips": 0,
            "pool_failures": 0,
            "pool_given_back": 0,
            "pool_deferrals": 0,
            "pool_writes_refused": 0,
            "pods_left_for_ack_autoscaler": 0,
            "eci_placed": 0,
            "eci_skipped": 0,
            "eci_failed": 0,
            "eci_patches_refused": 0,
            "eci_retries": 0,
            "eci_gave_up": 0,
        }

    async def close(self) -> None:
        """Write what the event sink still holds, for a few seconds at most; then stop it."""
        await self.events.stop()

    @property
    def activity(self) -> Mapping[str, PoolActivity]:
        """Per pool: when desired was raised, the CS task, its failure — for the next request."""
        return dict(self._activity)

    async def apply(
        self,
        reply: Mapping[str, Any],
        request: Mapping[str, Any],
        *,
        dry_run: bool,
        now: str | None = None,
    ) -> ApplyResult:
        """Apply a reply validated against `request`. `now` (RFC3339) defaults to the request's."""
        at = now or str(request.get("now", ""))
        requested = {p["uid"]: p for p in request.get("pods", ())}
        # Anticipated workers (a RayCluster's, no pod yet) are decided like pods, but there is
        # no pod to patch for ECI (the real pod gets its patch in its own round) and none to
        # record an Event about; their pool raises go through like any other.
        pods = {uid: p for uid, p in requested.items() if p.get("anticipated") is not True}
        decision_id = str(reply.get("decisionId", ""))
        tally = _Tally(decision_id=decision_id)
        companions = {p["id"] for p in request.get("pools", ()) if p.get(ACK_AUTOSCALER)}
        scale = []
        for action in reply.get("actions", ()):
            if action.get("kind") != "scale-pool":
                continue
            if action.get("poolId") in companions:
                refuse_companion_write(str(action.get("poolId")), tally)
            else:
                scale.append(action)
        eci = {
            uid: str(a.get("reason") or "")
            for a in reply.get("actions", ())
            if a.get("kind") == "place-on-eci"
            for uid in a.get("pods", ())
        }
        # ECI patches before pool raises: a raise can register new Nodes at once (the embedded
        # ACK does; on ACK they come with their kubelets), the scheduler then rewrites every
        # pending pod's condition, and every patch still to send is refused and costs a GET and
        # a second PATCH (burst at x100: 500 refusals, a 5.6 s round, against none and 2.4 s).
        # A pool waits for the patches only: seconds at most, against minutes of node boot.
        await asyncio.gather(
            *(
                self._place(pods[uid], tally, dry_run=dry_run, reason=reason)
                for uid, reason in eci.items()
                if uid in pods
            )
        )
        await asyncio.gather(*(self._scale(a, pods, tally, dry_run=dry_run, now=at) for a in scale))
        left = _left_for_ack(reply)
        for item in reply.get("unplaceable", ()):
            pod = requested.get(item.get("pod", ""))
            if pod is None:
                continue
            if item.get(DEFERRED) is True:
                # Not judged at all, so no NotTriggerScaleUp: the pod stays pending and the
                # follow-up round decides it.
                tally.deferred.append(_outcome(pod, item.get("reason", "")))
                continue
            tally.unplaceable.append(_outcome(pod, item.get("reason", "")))
            if not dry_run and pod["uid"] in pods:
                message = f"pod didn't trigger scale-up: {item.get('reason', '')}"
                tally.events.append((pod, "NotTriggerScaleUp", message))
        # The writes that serve pods first, then the Events that tell people about them — handed
        # to the sink, not awaited: the next round never waits for them.
        for pod, reason, message in tally.events:
            self.events.record(pod, reason=reason, message=message, now=at)
        self._add_counts(tally, dry_run=dry_run)
        if not dry_run:
            self.counters["pods_left_for_ack_autoscaler"] += sum(x.pods for x in left)
        result = ApplyResult(
            decision_id=decision_id,
            dry_run=dry_run,
            pools_written=tuple(tally.pools_written),
            pools_skipped=tuple(tally.pools_skipped),
            pools_failed=tuple(tally.pools_failed),
            pools_deferred=tuple(tally.pools_deferred),
            pools_refused=tuple(tally.pools_refused),
            left_for_ack=left,
            eci_placed=tuple(tally.eci_placed),
            eci_skipped=tuple(tally.eci_skipped),
            eci_failed=tuple(tally.eci_failed),
            unplaceable=tuple(tally.unplaceable),
            deferred=tuple(tally.deferred),
            eci_refused=tally.eci_refused,
            eci_retries=tally.eci_retries,
            eci_gave_up=tally.eci_gave_up,
        )
        log.info(
            "decision applied",
            extra={
                "decision_id": result.decision_id,
                "dry_run": dry_run,
                "pools_written": [
                    (w.pool_id, w.from_desired, w.to_desired) for w in result.pools_written
                ],
                "pools_skipped": len(result.pools_skipped),
                "pools_failed": [f.code for f in result.pools_failed],
                "pools_deferred": [d.pool_id for d in result.pools_deferred],
                "pools_refused": [r.pool_id for r in result.pools_refused],
                "left_for_ack_autoscaler": {x.pool_id: x.pods for x in result.left_for_ack},
                "eci_placed": len(result.eci_placed),
                "eci_skipped": len(result.eci_skipped),
                "eci_failed": len(result.eci_failed),
                "eci_refused": result.eci_refused,
                "eci_retries": result.eci_retries,
                "eci_gave_up": result.eci_gave_up,
                "deferred": len(result.deferred),
            },
        )
        return result

    async def refresh(self, pools: Iterable[PoolInfo]) -> Mapping[str, PoolActivity]:
        """Follow up on earlier raises: read their CS tasks, record failures and give back what a
        failed task never delivered, and forget a pool's activity once it is Ready at its desired
        size (a failed pool: once its backoff has passed too). Call with freshly described
        pools."""
        for pool in pools:
            activity = self._activity.get(pool.pool_id)
            if activity is None:
                continue
            if pool.companion:
                # ACK's autoscaler owns the pool now: nothing of ours to follow or give back.
                del self._activity[pool.pool_id]
                continue
            if activity.failed_at is not None and not activity.given_back:
                # the last refresh could not give it back (a refused call, a busy Lease)
                await self._give_back(pool.pool_id, activity)
                activity = self._activity[pool.pool_id]
            if pool.ready_nodes >= pool.desired and not self._backing_off(activity):
                del self._activity[pool.pool_id]
                continue
            if activity.task_id and activity.last_error is None:
                try:
                    task = await self._pools.describe_task(activity.task_id)
                except CloudCallError as exc:
                    log.warning(
                        "cs task unreadable", extra={"pool": pool.pool_id, "code": exc.code}
                    )
                    continue
                if task.state == "fail":
                    self._activity[pool.pool_id] = replace(
                        activity,
                        last_error=task.error or f"CS task {task.task_id} failed",
                        failed_at=self._now(),
                    )
                    log.warning(
                        "scale-out failed", extra={"pool": pool.pool_id, "error": task.error}
                    )
                    await self._give_back(pool.pool_id, self._activity[pool.pool_id])
        return self.activity

    def _backing_off(self, activity: PoolActivity) -> bool:
        failed_at = activity.failed_at
        return failed_at is not None and self._now() - failed_at < FAILED_POOL_BACKOFF_SECONDS

    async def _give_back(self, pool_id: str, activity: PoolActivity) -> None:
        """After a failed scale-out task: lower desired to the nodes CS counts in the pool (or its
        minimum), so a target the cloud could not meet is not left asked for — a restock would
        otherwise bring nodes no decision wants. Never below those nodes: lowering desired_size
        removes nodes without draining [ACK One, "manually scale node pools"]. Under the pool's
        Lease, like any write; a busy Lease or a failed call leaves it for the next refresh."""
        held = None
        try:
            if self._lock is not None:
                held = await self._lock.acquire(pool_id)
                if not held.acquired:
                    return
            current = await self._pools.describe_pool(pool_id)
            keep = max(current.min_size, current.total_nodes)
            if current.desired > keep and not current.companion:
                await self._pools.set_desired(pool_id, keep)
                self.counters["pool_given_back"] += 1
                log.warning(
                    "scale-out given back",
                    extra={"pool": pool_id, "from": current.desired, "to": keep},
                )
        except (CloudCallError, KubeError, KubeUnreachable) as exc:
            log.warning("scale-out not given back", extra={"pool": pool_id, "error": str(exc)})
            return
        finally:
            if held is not None and held.acquired and self._lock is not None:
                await self._lock.release(held)
        self._activity[pool_id] = replace(activity, given_back=True)

    # --- scale-pool ----------------------------------------------------------------------------

    async def _scale(
        self,
        action: Mapping[str, Any],
        pods: Mapping[str, Mapping[str, Any]],
        tally: _Tally,
        *,
        dry_run: bool,
        now: str,
    ) -> None:
        pool_id = str(action.get("poolId"))
        wanted = int(action.get("toDesired", 0))
        try:
            write = await self._raise_pool(pool_id, wanted, tally, dry_run=dry_run)
        except CloudCallError as exc:
            tally.pools_failed.append(PoolFailure(pool_id, exc.code, exc.message))
            if not exc.retryable:
                # A refusal (not a hiccup) makes the pool unusable until it recovers; the next
                # decision skips it instead of asking again and again.
                previous = self._activity.get(pool_id, PoolActivity())
                self._activity[pool_id] = replace(previous, last_error=f"{exc.code}: {exc.message}")
            log.warning(
                "scale-out not written", extra={"pool": pool_id, "code": exc.code, "to": wanted}
            )
            return
        if write is None or dry_run:
            return
        self._activity[pool_id] = PoolActivity(scaling_since=now, task_id=write.task_id)
        message = with_reason(
            scale_up_message(pool_id, write.from_desired, write.to_desired, write.max_size),
            str(action.get("reason") or ""),
        )
        tally.events.extend(
            (pods[uid], "TriggeredScaleUp", message)
            for uid in action.get("pods", ())
            if uid in pods
        )

    async def _raise_pool(
        self, pool_id: str, wanted: int, tally: _Tally, *, dry_run: bool
    ) -> PoolWrite | None:
        if self._lock is None or dry_run:
            return await self._read_and_raise(pool_id, wanted, tally, dry_run=dry_run)
        held = await self._lock.acquire(pool_id)
        if not held.acquired:
            tally.pools_deferred.append(PoolSkip(pool_id, f"pool lock held by {held.holder}"))
            return None
        try:
            # Re-read under the lock: what another agent wrote meanwhile counts, so pods it
            # already covered raise nothing twice.
            return await self._read_and_raise(pool_id, wanted, tally, dry_run=dry_run)
        finally:
            await self._lock.release(held)

    async def _read_and_raise(
        self, pool_id: str, wanted: int, tally: _Tally, *, dry_run: bool
    ) -> PoolWrite | None:
        current = await self._pools.describe_pool(pool_id)
        if current.companion:
            # ACK's autoscaler took the pool over since the request was built.
            refuse_companion_write(pool_id, tally)
            return None
        target = min(max(current.desired, wanted), current.max_size)
        if target - current.desired > MAX_NODES_ADDED_PER_CALL:
            # CS refuses a call adding more; the rest is asked for in a follow-up round.
            target = current.desired + MAX_NODES_ADDED_PER_CALL
            tally.pools_deferred.append(
                PoolSkip(
                    pool_id,
                    f"at most {MAX_NODES_ADDED_PER_CALL} nodes per call: "
                    f"{wanted - target} more next round",
                )
            )
        if current.desired >= target:
            reason = (
                f"desired {current.desired} already ≥ {wanted}"
                if current.desired >= wanted
                else f"at max {current.max_size}"
            )
            tally.pools_skipped.append(PoolSkip(pool_id, reason))
            return None
        write = PoolWrite(pool_id, current.desired, target, current.max_size)
        if dry_run:
            tally.pools_written.append(write)
            return write
        task_id = await self._pools.set_desired(pool_id, target)
        for _ in range(MAX_LOWERED_REWRITES):
            # Another writer may have read the old size and written a smaller one meanwhile.
            after = await self._pools.describe_pool(pool_id)
            if after.desired >= target:
                break
            log.warning(
                "desired lowered concurrently; writing it again",
                extra={"pool": pool_id, "seen": after.desired, "target": target},
            )
            task_id = await self._pools.set_desired(pool_id, target)
        write = replace(write, task_id=task_id)
        tally.pools_written.append(write)
        return write

    # --- place-on-eci --------------------------------------------------------------------------

    async def _place(
        self, pod: Mapping[str, Any], tally: _Tally, *, dry_run: bool, reason: str
    ) -> None:
        if dry_run:
            tally.eci_placed.append(_outcome(pod))
            return
        attempt = await place_on_eci(self._pods, pod, self._pod_slots, retries=self._eci_retries)
        tally.eci_refused += attempt.refused
        tally.eci_retries += attempt.retries
        tally.eci_gave_up += attempt.gave_up
        if attempt.outcome == "skipped":
            tally.eci_skipped.append(_outcome(pod, attempt.reason))
            log.info(
                "eci placement skipped",
                extra={
                    "pod": pod.get("name"),
                    "reason": attempt.reason,
                    "retries": attempt.retries,
                    "gave_up": attempt.gave_up,
                },
            )
            return
        if attempt.outcome == "failed":
            tally.eci_failed.append(_outcome(pod, attempt.reason))
            log.warning(
                "eci placement failed", extra={"pod": pod.get("name"), "reason": attempt.reason}
            )
            return
        tally.eci_placed.append(_outcome(pod))
        tally.events.append((pod, "PlacedOnECI", with_reason(PLACED_ON_ECI_MESSAGE, reason)))

    def _add_counts(self, tally: _Tally, *, dry_run: bool) -> None:
        if dry_run:
            return
        self.counters["pool_writes"] += len(tally.pools_written)
        self.counters["pool_skips"] += len(tally.pools_skipped)
        self.counters["pool_failures"] += len(tally.pools_failed)
        self.counters["pool_deferrals"] += len(tally.pools_deferred)
        self.counters["pool_writes_refused"] += len(tally.pools_refused)
        self.counters["eci_placed"] += len(tally.eci_placed)
        self.counters["eci_skipped"] += len(tally.eci_skipped)
        self.counters["eci_failed"] += len(tally.eci_failed)
        self.counters["eci_patches_refused"] += tally.eci_refused
        self.counters["eci_retries"] += tally.eci_retries
        self.counters["eci_gave_up"] += tally.eci_gave_up


def refuse_companion_write(pool_id: str, tally: _Tally) -> None:
    """A scale-out asked of a pool ACK's autoscaler owns: never written, said loudly — the
    decision that asked is wrong (or ACK's autoscaling was switched on meanwhile)."""
    reason = f"{pool_id} is a companion pool: ACK's node autoscaler owns its size"
    tally.pools_refused.append(PoolSkip(pool_id, reason))
    log.error(
        "pool write refused: ACK's autoscaler owns the pool (companion); the agent never writes it",
        extra={"pool": pool_id, "decision_id": tally.decision_id},
    )


def _left_for_ack(reply: Mapping[str, Any]) -> tuple[LeftForAck, ...]:
    """The reply's pods left for ACK's autoscaler, counted per companion pool."""
    counts: dict[str, int] = {}
    for item in reply.get("covered", ()):
        if item.get(ACK_AUTOSCALER) is True:
            pool_id = str(item.get("poolId", ""))
            counts[pool_id] = counts.get(pool_id, 0) + 1
    return tuple(LeftForAck(pool_id, n) for pool_id, n in sorted(counts.items()))


# The words functions/scaleout/plan.py puts in an unplaceable reason when a per-decision cap, not capacity,
# left the pod out.
DECISION_CAP = "maxNewNodesPerDecision"
ECI_CAP = "ECI at maxPods"


def follow_up_reason(result: ApplyResult) -> str:
    """Why the next round should come at once rather than at the resync ("" when it need not): a
    pool deferred behind another agent's Lease or CS's per-call cap; or a round that made
    progress and left pods pending that the next round may serve — left out by the decision's
    time limit, by a per-decision cap, by ECI's capacity (the ECI slots this decision counted on
    may have gone to pods whose placement was then skipped), or skipped at placement (bound
    elsewhere meanwhile, or changed); or ECI placements given up on because the pods kept
    changing past the retry bound. Pods left out only because every pool is at its maximum or
    the node quota is reached get no follow-up: the next round would decide the same."""
    if result.dry_run:
        return ""
    if result.pools_deferred:
        return "pool write deferred: " + result.pools_deferred[0].reason
    if result.wrote_anything:
        if result.deferred:
            return f"decision deferred {len(result.deferred)} pod(s) at its time limit"
        reasons = [p.reason for p in result.unplaceable]
        if any(DECISION_CAP in r for r in reasons):
            return "maxNewNodesPerDecision reached"
        if any(ECI_CAP in r for r in reasons):
            return "ECI at maxPods"
        if result.eci_skipped:
            return f"{len(result.eci_skipped)} ECI placement(s) skipped; their pods decided again"
    if result.eci_gave_up:
        return f"ECI placement gave up on {result.eci_gave_up} pods that kept changing"
    return ""


def _outcome(pod: Mapping[str, Any], reason: str = "") -> PodOutcome:
    return PodOutcome(
        str(pod.get("uid", "")), str(pod.get("namespace", "")), str(pod.get("name", "")), reason
    )
