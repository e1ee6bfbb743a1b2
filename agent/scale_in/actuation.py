"""Applying a scale-in/v1 reply: under the pool's Lease, mark, look again, then
RemoveNodePoolNodes (drain, release).

Per pool, the agent first takes the pool's Lease (`agent.actuate.pool_lock`, the one scale-out
writes under), so two agents never cordon or remove the same pool's nodes at once; a Lease another
agent holds past the bounded wait keeps the nodes for the next round. Under it the pool is re-read
— a pool whose desired size rose since the request (a scale-out by anyone) keeps all its nodes,
and no removal takes a pool below its min — and so are its nodes as CS counts them
(DescribeClusterNodes): a node CS no longer lists, or is removing already, is not sent.

A pool that reads as a companion (ACK's own autoscaler owns it: agent.app.managed_pools) keeps
every node: the agent never removes them, whatever the reply says.

Per chosen node: mark it — cordon, our `ray-ack-scaler/to-be-deleted` taint, and who marked it
when (`agent.scale_in.marks`) — so the scheduler sends it nothing new; a node marked already
(another agent's removal, or one left behind) is kept. Then list the pods bound to it fresh from
the API server: a node that got a load pod the decision did not plan to evict (a new burst landed
on it) is unmarked and kept — no flapping. The Lease is renewed on the way, and if someone took
it (it had expired) the marks come off and nothing is removed.

RemoveNodePoolNodes goes out once per pool. If CS refuses it, the pool's nodes are read again and
the call is sent without the nodes that left the pool or are being removed meanwhile, so one
missing node never fails the others; a refusal with every node still there is a failure (marks
off, ScaleDownFailed). The accepted removal's task id goes on each node, still under the Lease,
and into `removals`, which follows the task to its end (a drain can still fail there). Node
Events `ScaleDown` / `ScaleDownFailed` say what happened, as cluster-autoscaler's do, recorded
once the Lease is free again. In dry-run nothing is written at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.actuate.actuation import COMPONENT
from agent.actuate.pool_lock import Held, PoolLock, default_identity
from agent.clients.cs import CloudCallError, PoolNode, TaskState
from agent.clients.kube import KubeError, KubeUnreachable
from agent.ingest.node_pods import FINISHED, epoch_or_none, owner_kind
from agent.model import PoolInfo
from agent.scale_in import marks
from agent.scale_in.events import SCALE_DOWN, SCALE_DOWN_FAILED, record_event
from agent.scale_in.removals import REMOVING, Removal, Removals, pool_members

log = logging.getLogger(__name__)

NOT_FOUND = 404
# RemoveNodePoolNodes calls per pool and round: a refusal because nodes left the pool meanwhile
# is followed by a fresh read of the pool's nodes and a call without them.
REMOVE_ATTEMPTS = 3


class NodeRemover(Protocol):
    """What scale-in needs of the CS client (agent.clients.cs.NodePoolClient provides it)."""

    async def describe_pool(self, pool_id: str) -> PoolInfo: ...

    async def remove_nodes(
        self, pool_id: str, instance_ids: list[str], *, drain: bool, release: bool
    ) -> str | None: ...

    async def describe_task(self, task_id: str) -> TaskState: ...

    async def describe_nodes(self, pool_id: str, *, state: str = "all") -> list[PoolNode]: ...


class NodeWriter(Protocol):
    """What scale-in needs of the Kubernetes client (agent.clients.kube.KubeClient provides it)."""

    async def edit_node(
        self, name: str, edit: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> dict[str, Any]: ...

    async def get_node(self, name: str) -> dict[str, Any]: ...

    async def list_page(
        self,
        resource: str,
        *,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> dict[str, Any]: ...

    async def create_event(self, namespace: str, body: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class NodeRemoved:
    node: str
    pool_id: str
    instance_id: str
    reason: str


@dataclass(frozen=True)
class NodeKept:
    """A node the decision chose that stays after all, and why."""

    node: str
    pool_id: str
    reason: str


@dataclass(frozen=True)
class RemovalFailure:
    pool_id: str
    nodes: tuple[str, ...]
    code: str
    message: str


@dataclass(frozen=True)
class ScaleInResult:
    decision_id: str
    dry_run: bool
    removed: tuple[NodeRemoved, ...] = ()  # in dry-run: what would have been removed
    kept: tuple[NodeKept, ...] = ()
    failed: tuple[RemovalFailure, ...] = ()
    task_ids: tuple[str, ...] = ()
    events_failed: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "decisionId": self.decision_id,
            "dryRun": self.dry_run,
            "removed": [
                {"node": r.node, "poolId": r.pool_id, "instanceId": r.instance_id}
                for r in self.removed
            ],
            "kept": [{"node": k.node, "reason": k.reason} for k in self.kept],
            "failed": [
                {"poolId": f.pool_id, "nodes": list(f.nodes), "code": f.code, "message": f.message}
                for f in self.failed
            ],
        }


@dataclass(frozen=True)
class _Event:
    node: str
    reason: str
    message: str
    event_type: str = "Normal"


@dataclass
class _Tally:
    removed: list[NodeRemoved] = field(default_factory=list)
    kept: list[NodeKept] = field(default_factory=list)
    failed: list[RemovalFailure] = field(default_factory=list)
    task_ids: list[str] = field(default_factory=list)
    events: list[_Event] = field(default_factory=list)  # recorded once the Lease is free again
    events_failed: int = 0

    def keep(self, items: list[Mapping[str, Any]], pool_id: str, reason: str) -> None:
        self.kept.extend(NodeKept(str(item["node"]), pool_id, reason) for item in items)


class _Hold:
    """The pool's Lease while one pool's removal is applied (nothing to hold without a lock)."""

    def __init__(self, lock: PoolLock | None, held: Held | None) -> None:
        self._lock = lock
        self._held = held

    async def still_ours(self) -> bool:
        """Renewed if due; False once someone else took it (it had expired): stop writing."""
        if self._lock is None or self._held is None:
            return True
        self._held = await self._lock.refresh(self._held)
        return self._held.acquired

    async def release(self) -> None:
        if self._lock is not None and self._held is not None:
            await self._lock.release(self._held)


class ScaleInActuator:
    """Applies scale-in replies through the CS client and the Kubernetes client; with a
    `PoolLock`, each pool's cordons and removal happen under that pool's Lease."""

    def __init__(
        self,
        pools: NodeRemover,
        kube: NodeWriter,
        *,
        drain: bool = True,
        release: bool = True,
        lock: PoolLock | None = None,
        identity: str | None = None,
    ) -> None:
        """Every mark says who made it (`marked-by`): the Lease holder identity with a lock,
        else `identity` or the pod name."""
        self._pools = pools
        self._kube = kube
        self._drain = drain
        self._release = release
        self._lock = lock
        self.identity = (
            lock.settings.identity if lock is not None else identity or default_identity()
        )
        self.removals = Removals(pools, kube, lock=lock, identity=self.identity)
        self.refused = 0  # removals asked of a companion pool, never sent

    async def apply(
        self, reply: Mapping[str, Any], request: Mapping[str, Any], *, dry_run: bool, now: str
    ) -> ScaleInResult:
        """Apply a reply validated against `request`."""
        tally = _Tally()
        chosen = {item["node"]: item for item in reply.get("remove", ())}
        requested = {pool["id"]: pool for pool in request.get("pools", ())}
        cordoned_before = _cordoned_by_others(request)
        for group in reply.get("pools", ()):
            pool_id = str(group["poolId"])
            items = [chosen[name] for name in group.get("nodes", ()) if name in chosen]
            if dry_run:
                tally.removed.extend(_removed(item) for item in items)
                continue
            items = self._not_leaving(items, pool_id, tally)
            if items:
                await self._apply_pool(
                    pool_id,
                    items,
                    requested.get(pool_id, {}),
                    tally,
                    now=now,
                    cordoned_before=cordoned_before,
                )
        for event in tally.events:
            await self._event(event, tally, now=now)
        result = ScaleInResult(
            decision_id=str(reply.get("decisionId", "")),
            dry_run=dry_run,
            removed=tuple(tally.removed),
            kept=tuple(tally.kept),
            failed=tuple(tally.failed),
            task_ids=tuple(tally.task_ids),
            events_failed=tally.events_failed,
        )
        if result.removed or result.kept or result.failed:
            log.info("scale-in applied", extra=result.to_json())
        return result

    def _not_leaving(
        self, items: list[Mapping[str, Any]], pool_id: str, tally: _Tally
    ) -> list[Mapping[str, Any]]:
        """A node a running task is already removing is not removed twice (a decision by an
        older function that did not know; the request leaves such nodes out)."""
        leaving = self.removals.leaving()
        for item in items:
            if item["node"] in leaving:
                tally.kept.append(NodeKept(item["node"], pool_id, "already being removed"))
        return [item for item in items if item["node"] not in leaving]

    async def _apply_pool(
        self,
        pool_id: str,
        items: list[Mapping[str, Any]],
        requested: Mapping[str, Any],
        tally: _Tally,
        *,
        now: str,
        cordoned_before: frozenset[str],
    ) -> None:
        """One pool's removal, under its Lease: no other agent cordons or removes the pool's
        nodes meanwhile. A Lease another agent holds past the bounded wait keeps the nodes (the
        next round decides again)."""
        held = None
        if self._lock is not None:
            held = await self._lock.acquire(pool_id)
            if not held.acquired:
                tally.keep(items, pool_id, f"pool lock held by {held.holder}")
                return
        hold = _Hold(self._lock, held)
        try:
            await self._apply_held(
                pool_id, items, requested, tally, hold, now=now, cordoned_before=cordoned_before
            )
        finally:
            await hold.release()

    async def _apply_held(
        self,
        pool_id: str,
        items: list[Mapping[str, Any]],
        requested: Mapping[str, Any],
        tally: _Tally,
        hold: _Hold,
        *,
        now: str,
        cordoned_before: frozenset[str],
    ) -> None:
        try:
            current = await self._pools.describe_pool(pool_id)
            members = await self._members(pool_id)
        except CloudCallError as error:
            tally.failed.append(
                RemovalFailure(pool_id, tuple(i["node"] for i in items), error.code, error.message)
            )
            return
        if current.companion:
            # ACK's autoscaler owns the pool (its autoscaling was switched on since the
            # request, or the reply names a pool the request left out): never ours to shrink.
            reason = f"pool {pool_id} is a companion pool: ACK's node autoscaler owns its size"
            log.error("scale-in refused: " + reason, extra={"pool": pool_id})
            self.refused += 1
            tally.keep(items, pool_id, reason)
            return
        asked = int((requested.get("size") or {}).get("desired", current.desired))
        if current.desired > asked:
            # Someone raised the pool since the snapshot: that capacity is wanted again.
            reason = f"pool {pool_id} desired rose {asked}→{current.desired} since the decision"
            tally.keep(items, pool_id, reason)
            return
        items, dropped = _split(items, members, pool_id)
        tally.kept.extend(NodeKept(str(item["node"]), pool_id, why) for item, why, _ in dropped)
        room = max(0, current.desired - current.min_size)
        if len(items) > room:
            tally.keep(
                items[room:], pool_id, f"pool {pool_id} would go below min {current.min_size}"
            )
            items = items[:room]
        marked: list[Mapping[str, Any]] = []
        for index, item in enumerate(items):
            if not await hold.still_ours():
                tally.keep(items[index:], pool_id, "pool lock lost")
                break
            uncordon = item["node"] not in cordoned_before
            if await self._mark_and_check(item, pool_id, tally, now=now, uncordon=uncordon):
                marked.append(item)
        if not marked:
            return
        if not await hold.still_ours():
            await self._give_back(marked, pool_id, tally, "pool lock lost before the removal")
            return
        task_id, removed = await self._remove(
            pool_id, marked, tally, hold, now=now, cordoned_before=cordoned_before
        )
        if removed:
            await self._started(
                pool_id, task_id, removed, tally, now=now, cordoned_before=cordoned_before
            )

    async def _members(self, pool_id: str) -> dict[str, str]:
        """The pool's instances as CS counts them, REMOVING for those it is removing."""
        return await pool_members(self._pools, pool_id)

    async def _remove(
        self,
        pool_id: str,
        marked: list[Mapping[str, Any]],
        tally: _Tally,
        hold: _Hold,
        *,
        now: str,
        cordoned_before: frozenset[str],
    ) -> tuple[str | None, list[Mapping[str, Any]]]:
        """RemoveNodePoolNodes for the marked nodes. A refusal may mean one of them left the
        pool since it was read (ACK's error for that is undocumented): the pool's nodes are read
        again and the call is sent without the ones gone or being removed, so one missing node
        never fails the others. The task id and the nodes it removes; ([], None) when none."""
        remaining = list(marked)
        for attempt in range(1, REMOVE_ATTEMPTS + 1):
            try:
                task_id = await self._pools.remove_nodes(
                    pool_id,
                    [str(item["instanceId"]) for item in remaining],
                    drain=self._drain,
                    release=self._release,
                )
            except CloudCallError as error:
                refusal = error
            else:
                return task_id, remaining
            if refusal.retryable or attempt == REMOVE_ATTEMPTS:
                break
            try:
                members = await self._members(pool_id)
            except CloudCallError:
                break
            remaining, dropped = _split(remaining, members, pool_id)
            if not dropped:
                break  # every node is still there: the refusal is about something else
            log.info(
                "nodes left the pool before the removal; sending the rest",
                extra={"pool": pool_id, "nodes": [str(i["node"]) for i, _, _ in dropped]},
            )
            for item, why, being_removed in dropped:
                name = str(item["node"])
                await marks.unmark(
                    self._kube,
                    name,
                    uncordon=not being_removed and name not in cordoned_before,
                    only_if=self._ours,
                )
                tally.kept.append(NodeKept(name, pool_id, why))
            if not remaining:
                return None, []
            if not await hold.still_ours():
                await self._give_back(
                    remaining, pool_id, tally, "pool lock lost before the removal"
                )
                return None, []
        await self._refused(
            pool_id, remaining, refusal, tally, now=now, cordoned_before=cordoned_before
        )
        return None, []

    async def _refused(
        self,
        pool_id: str,
        items: list[Mapping[str, Any]],
        error: CloudCallError,
        tally: _Tally,
        *,
        now: str,
        cordoned_before: frozenset[str],
    ) -> None:
        names = tuple(str(item["node"]) for item in items)
        tally.failed.append(RemovalFailure(pool_id, names, error.code, error.message))
        log.warning("scale-in not written", extra={"pool": pool_id, "code": error.code})
        for name in names:
            await marks.unmark(
                self._kube, name, uncordon=name not in cordoned_before, only_if=self._ours
            )
            self.removals.failed(name, at=_epoch(now))
            tally.events.append(
                _Event(
                    name,
                    SCALE_DOWN_FAILED,
                    f"failed to remove node: {error.code}: {error.message}",
                    "Warning",
                )
            )

    async def _started(
        self,
        pool_id: str,
        task_id: str | None,
        items: list[Mapping[str, Any]],
        tally: _Tally,
        *,
        now: str,
        cordoned_before: frozenset[str],
    ) -> None:
        """CS accepted the removal: note the task on each node (still under the Lease) and
        follow it."""
        names = tuple(str(item["node"]) for item in items)
        if task_id:
            tally.task_ids.append(task_id)
            self.removals.started(
                Removal(
                    task_id,
                    pool_id,
                    names,
                    _epoch(now),
                    cordoned_before=frozenset(names) & cordoned_before,
                )
            )
            for name in names:
                await marks.note_task(self._kube, name, task_id)
        else:
            log.warning("RemoveNodePoolNodes returned no task id: its outcome is not followed")
        for item in items:
            tally.removed.append(_removed(item))
            tally.events.append(
                _Event(
                    str(item["node"]),
                    SCALE_DOWN,
                    f"node removal requested by {COMPONENT} (task {task_id}): "
                    f"{item.get('reason', '')}",
                )
            )

    async def _give_back(
        self, items: list[Mapping[str, Any]], pool_id: str, tally: _Tally, reason: str
    ) -> None:
        """Marked but not removed: the marks come off (our cordon with them)."""
        for item in items:
            await marks.unmark(self._kube, str(item["node"]), only_if=self._ours)
        tally.keep(items, pool_id, reason)

    def _ours(self, node: Mapping[str, Any]) -> bool:
        """`only_if` for taking our marks off: the mark on the node is this agent's."""
        found = marks.mark_of(node)
        return found is not None and found.holder == self.identity and not found.task

    async def _mark_and_check(
        self, item: Mapping[str, Any], pool_id: str, tally: _Tally, *, now: str, uncordon: bool
    ) -> bool:
        """Mark (cordon, taint), then list the node's pods: True when it still holds only what
        the decision planned to evict."""
        name = str(item["node"])
        try:
            existing = await marks.mark(self._kube, name, now=_epoch(now), holder=self.identity)
        except (KubeError, KubeUnreachable) as error:
            reason = (
                "node is gone"
                if isinstance(error, KubeError) and error.status == NOT_FOUND
                else f"cordon failed: {error}"
            )
            tally.kept.append(NodeKept(name, pool_id, reason))
            if reason != "node is gone":  # a half-written mark
                await marks.unmark(self._kube, name, uncordon=uncordon, only_if=self._ours)
            return False
        if existing is not None:
            tally.kept.append(NodeKept(name, pool_id, f"already {existing.describe()}"))
            return False
        try:
            arrived = await self._unplanned_pods(name, planned=set(item.get("evicts", ())))
        except (KubeError, KubeUnreachable) as error:
            arrived = [f"(pods unreadable: {error})"]
        if arrived:
            await marks.unmark(self._kube, name, uncordon=uncordon, only_if=self._ours)
            tally.kept.append(
                NodeKept(
                    name, pool_id, f"pod(s) arrived since the decision: {', '.join(arrived[:3])}"
                )
            )
            return False
        return True

    async def _unplanned_pods(self, name: str, *, planned: set[str]) -> list[str]:
        """Load pods bound to `name` now that the decision did not plan to evict."""
        found: list[str] = []
        token: str | None = None
        while True:
            page = await self._kube.list_page(
                "pods", field_selector=f"spec.nodeName={name}", limit=500, continue_token=token
            )
            for pod in page.get("items") or ():
                meta = pod.get("metadata") or {}
                if (pod.get("status") or {}).get("phase") in FINISHED:
                    continue
                if owner_kind(meta) == "DaemonSet" or meta.get("uid") in planned:
                    continue
                found.append(f"{meta.get('namespace')}/{meta.get('name')}")
            token = (page.get("metadata") or {}).get("continue") or None
            if not token:
                return found

    async def _event(self, event: _Event, tally: _Tally, *, now: str) -> None:
        if not await record_event(
            self._kube,
            event.node,
            reason=event.reason,
            message=event.message,
            now=now,
            event_type=event.event_type,
        ):
            tally.events_failed += 1


def _split(
    items: list[Mapping[str, Any]], members: Mapping[str, str], pool_id: str
) -> tuple[list[Mapping[str, Any]], list[tuple[Mapping[str, Any], str, bool]]]:
    """The items CS still lists in the pool and is not removing, and the others with why (and
    whether CS is removing them)."""
    usable: list[Mapping[str, Any]] = []
    dropped: list[tuple[Mapping[str, Any], str, bool]] = []
    for item in items:
        state = members.get(str(item["instanceId"]))
        if state is None:
            dropped.append((item, f"no longer a node of pool {pool_id}", False))
        elif state == REMOVING:
            dropped.append((item, "CS is removing it already", True))
        else:
            usable.append(item)
    return usable, dropped


def _epoch(now: str) -> float:
    """The epoch seconds of the reply's RFC 3339 `now` (0 when unreadable: a mark as old as can
    be is the safe side, it is never mistaken for one just made)."""
    return epoch_or_none(now) or 0.0


def _cordoned_by_others(request: Mapping[str, Any]) -> frozenset[str]:
    """Nodes the request shows cordoned without our mark: someone else cordoned them, and they
    stay cordoned whatever becomes of the removal."""
    return frozenset(
        str(node["name"])
        for node in request.get("nodes", ())
        if node.get("unschedulable") and not marks.carries_mark(node.get("taints"))
    )


def _removed(item: Mapping[str, Any]) -> NodeRemoved:
    return NodeRemoved(
        str(item["node"]), str(item["poolId"]), str(item["instanceId"]), str(item.get("reason", ""))
    )
