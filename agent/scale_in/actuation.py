"""Applying a scale-in/v1 reply: mark, look again, then RemoveNodePoolNodes (drain, release).

Per chosen node: mark it first — cordon and our `ray-ack-scaler/to-be-deleted` taint
(`agent.scale_in.marks`) — so the scheduler sends it nothing new; then list the pods bound to it
fresh from the API server. A node that got a load pod the decision did not plan to evict (a new
burst landed on it) is unmarked and kept — no flapping. Right before the removal the pool is
re-read: a pool whose desired size rose since the request (a scale-out by anyone) keeps all its
nodes, and no removal takes a pool below its min. The accepted removal's task id goes on each
node and into `removals`, which follows the task to its end (a drain can still fail there).
Node Events `ScaleDown` / `ScaleDownFailed` say what happened, as cluster-autoscaler's do. In
dry-run nothing is written at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.actuate.actuation import COMPONENT
from agent.clients.cs import CloudCallError, TaskState
from agent.clients.kube import KubeError, KubeUnreachable
from agent.ingest.node_pods import FINISHED, epoch_or_none, owner_kind
from agent.model import PoolInfo
from agent.scale_in import marks
from agent.scale_in.events import SCALE_DOWN, SCALE_DOWN_FAILED, record_event
from agent.scale_in.removals import Removal, Removals

log = logging.getLogger(__name__)

NOT_FOUND = 404


class NodeRemover(Protocol):
    """What scale-in needs of the CS client (agent.clients.cs.NodePoolClient provides it)."""

    async def describe_pool(self, pool_id: str) -> PoolInfo: ...

    async def remove_nodes(
        self, pool_id: str, instance_ids: list[str], *, drain: bool, release: bool
    ) -> str | None: ...

    async def describe_task(self, task_id: str) -> TaskState: ...


class NodeWriter(Protocol):
    """What scale-in needs of the Kubernetes client (agent.clients.kube.KubeClient provides it)."""

    async def edit_node(
        self, name: str, edit: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> dict[str, Any]: ...

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


@dataclass
class _Tally:
    removed: list[NodeRemoved] = field(default_factory=list)
    kept: list[NodeKept] = field(default_factory=list)
    failed: list[RemovalFailure] = field(default_factory=list)
    task_ids: list[str] = field(default_factory=list)
    events_failed: int = 0


class ScaleInActuator:
    """Applies scale-in replies through the CS client and the Kubernetes client."""

    def __init__(
        self, pools: NodeRemover, kube: NodeWriter, *, drain: bool = True, release: bool = True
    ) -> None:
        self._pools = pools
        self._kube = kube
        self._drain = drain
        self._release = release
        self.removals = Removals(pools, kube)

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
            await self._apply_pool(
                pool_id,
                items,
                requested.get(pool_id, {}),
                tally,
                now=now,
                cordoned_before=cordoned_before,
            )
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
        try:
            current = await self._pools.describe_pool(pool_id)
        except CloudCallError as error:
            tally.failed.append(
                RemovalFailure(pool_id, tuple(i["node"] for i in items), error.code, error.message)
            )
            return
        asked = int((requested.get("size") or {}).get("desired", current.desired))
        if current.desired > asked:
            # Someone raised the pool since the snapshot: that capacity is wanted again.
            for item in items:
                tally.kept.append(
                    NodeKept(
                        item["node"],
                        pool_id,
                        f"pool {pool_id} desired rose {asked}→{current.desired} since the decision",
                    )
                )
            return
        room = max(0, current.desired - current.min_size)
        cordoned: list[Mapping[str, Any]] = []
        for item in items:
            if len(cordoned) >= room:
                tally.kept.append(
                    NodeKept(
                        item["node"],
                        pool_id,
                        f"pool {pool_id} would go below min {current.min_size}",
                    )
                )
                continue
            if await self._mark_and_check(
                item, pool_id, tally, now=now, uncordon=item["node"] not in cordoned_before
            ):
                cordoned.append(item)
        if not cordoned:
            return
        instance_ids = [str(item["instanceId"]) for item in cordoned]
        try:
            task_id = await self._pools.remove_nodes(
                pool_id, instance_ids, drain=self._drain, release=self._release
            )
        except CloudCallError as error:
            names = tuple(str(item["node"]) for item in cordoned)
            tally.failed.append(RemovalFailure(pool_id, names, error.code, error.message))
            log.warning("scale-in not written", extra={"pool": pool_id, "code": error.code})
            for item in cordoned:
                name = str(item["node"])
                await marks.unmark(self._kube, name, uncordon=name not in cordoned_before)
                self.removals.failed(name, at=_epoch(now))
                await self._event(
                    name,
                    tally,
                    reason=SCALE_DOWN_FAILED,
                    message=f"failed to remove node: {error.code}: {error.message}",
                    now=now,
                    event_type="Warning",
                )
            return
        names = tuple(str(item["node"]) for item in cordoned)
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
        for item in cordoned:
            tally.removed.append(_removed(item))
            await self._event(
                str(item["node"]),
                tally,
                reason=SCALE_DOWN,
                message=f"node removal requested by {COMPONENT} (task {task_id}): "
                f"{item.get('reason', '')}",
                now=now,
            )

    async def _mark_and_check(
        self, item: Mapping[str, Any], pool_id: str, tally: _Tally, *, now: str, uncordon: bool
    ) -> bool:
        """Mark (cordon, taint), then list the node's pods: True when it still holds only what
        the decision planned to evict."""
        name = str(item["node"])
        try:
            await marks.mark(self._kube, name, now=_epoch(now))
        except (KubeError, KubeUnreachable) as error:
            reason = (
                "node is gone"
                if isinstance(error, KubeError) and error.status == NOT_FOUND
                else f"cordon failed: {error}"
            )
            tally.kept.append(NodeKept(name, pool_id, reason))
            if reason != "node is gone":
                await marks.unmark(self._kube, name, uncordon=uncordon)  # a half-written mark
            return False
        try:
            arrived = await self._unplanned_pods(name, planned=set(item.get("evicts", ())))
        except (KubeError, KubeUnreachable) as error:
            arrived = [f"(pods unreadable: {error})"]
        if arrived:
            await marks.unmark(self._kube, name, uncordon=uncordon)
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

    async def _event(
        self,
        node: str,
        tally: _Tally,
        *,
        reason: str,
        message: str,
        now: str,
        event_type: str = "Normal",
    ) -> None:
        if not await record_event(
            self._kube, node, reason=reason, message=message, now=now, event_type=event_type
        ):
            tally.events_failed += 1


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
