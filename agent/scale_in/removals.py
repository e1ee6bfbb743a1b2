"""Removals in flight: following each RemoveNodePoolNodes task to its end, what a failure
leaves to do, and the marks a stopped agent left behind.

ACK drains with PodDisruptionBudgets respected and waits up to 30 minutes; if pods remain, the
drain fails, the node is not removed and the task ends `fail` (ACK user guide, "remove a node").
So a removal is not done when CS accepts it: every scale-in round asks DescribeTaskInfo about the
tasks still running. On `fail` the nodes still there get their marks off (uncordoned unless
someone else had cordoned them, untainted), a Warning Event `ScaleDownFailed` naming the task's
error, and a back-off: the scale-in/v1 request carries `lastRemovalFailedAt`, and the decision
keeps the node for `scaleDownDelayAfterFailureSeconds` before it may be chosen again.

After a restart nothing of this is in memory; the marks on the nodes are (`agent.scale_in.marks`).
`recover` — at start and every scale-in round — reads them. A node with our taint and a task
annotation is followed again (or its failure handled). A node marked with no task, or with a
task CS no longer knows, may have been left behind by an agent stopped between cordon and
RemoveNodePoolNodes (or between the call and the annotation); it is cleared when all of these
hold:

- its mark is ours (`marked-by` is this agent's identity: nothing of ours is in the middle of a
  removal while recovery runs), or it is at least MARK_GRACE_SECONDS old (another agent between
  its cordon and its CS call, retries included, is left alone);
- we hold the pool's Lease: nobody else is marking or removing that pool's nodes right now (a
  Lease busy with a live holder other than us defers the node to the next round);
- CS, asked under the Lease (DescribeClusterNodes), lists the node's instance in the pool and not
  `removing` — a removal accepted just before the stop is under way and is left to finish.

Only our taint and annotations come off, and the cordon only if it is ours: a node carrying
`was-cordoned`, or any node cordoned without our taint, keeps its cordon.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.actuate.pool_lock import PoolLock
from agent.clients.cs import CloudCallError, PoolNode, TaskState
from agent.clients.kube import KubeError, KubeUnreachable
from agent.ingest.node_pods import NodeFacts, instance_id_of
from agent.scale_in.events import SCALE_DOWN_FAILED, EventWriter, record_event
from agent.scale_in.marks import Mark, NodeEditor, mark_of, of_task, still, unmark
from agent.scale_in.tracking import rfc3339

log = logging.getLogger(__name__)

# Another agent's mark without a task this old was left behind. RemoveNodePoolNodes answers
# within the CS client's retries (4 attempts of at most 10 s); two minutes is well past that.
MARK_GRACE_SECONDS = 120.0
TASK_NOT_FOUND = 404
REMOVING = "removing"  # DescribeClusterNodes state of an instance being removed


class PoolNodesReader(Protocol):
    async def describe_nodes(self, pool_id: str, *, state: str = "all") -> list[PoolNode]: ...


class TaskReader(PoolNodesReader, Protocol):
    """What following removals needs of the CS client (agent.clients.cs.NodePoolClient)."""

    async def describe_task(self, task_id: str) -> TaskState: ...


async def pool_members(pools: PoolNodesReader, pool_id: str) -> dict[str, str]:
    """The pool's instances as CS counts them → REMOVING for those it is removing, else the
    state it reports. Two reads: the `state` filter of DescribeClusterNodes documents
    `removing`, its reply's `state` field documents only ECS-like values."""
    members = {n.instance_id: n.state for n in await pools.describe_nodes(pool_id)}
    for node in await pools.describe_nodes(pool_id, state=REMOVING):
        members[node.instance_id] = REMOVING
    return members


class NodeMarker(NodeEditor, EventWriter, Protocol):
    """What it needs of the Kubernetes client: node reads and edits, and Events."""

    async def get_node(self, name: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Removal:
    """One RemoveNodePoolNodes task and the nodes it removes."""

    task_id: str
    pool_id: str
    nodes: tuple[str, ...]
    started_at: float
    # Nodes someone else had cordoned before we marked them: a failure leaves them cordoned.
    cordoned_before: frozenset[str] = frozenset()


@dataclass(frozen=True)
class FailedRemoval:
    removal: Removal
    error: str
    nodes_back: tuple[str, ...]  # nodes still there, marks taken off


@dataclass
class Removals:
    """The removals this agent follows, and when each node's last removal failed."""

    pools: TaskReader
    kube: NodeMarker
    lock: PoolLock | None = None  # the pool Lease recovery clears marks under
    identity: str = ""  # who we are: the marked-by of our own marks
    in_flight: dict[str, Removal] = field(default_factory=dict)  # task id -> removal
    failed_at: dict[str, float] = field(default_factory=dict)  # node -> when
    # Tasks seen to succeed: their nodes are on their way out, not asked about again. (A failed
    # task is asked about again while a node still carries its annotation: its unmark failed.)
    ended: set[str] = field(default_factory=set)
    events_failed: int = 0

    def started(self, removal: Removal) -> None:
        self.in_flight[removal.task_id] = removal

    def leaving(self) -> set[str]:
        """Nodes a running task is removing: never offered to a decision again."""
        return {node for removal in self.in_flight.values() for node in removal.nodes}

    def failed(self, node: str, *, at: float) -> None:
        self.failed_at[node] = at

    def keep_only(self, nodes: Collection[str]) -> None:
        """Forget failures of nodes that are gone."""
        for name in [n for n in self.failed_at if n not in nodes]:
            del self.failed_at[name]

    async def follow(
        self, *, now: float, present: Callable[[str], bool], retry_after: float
    ) -> list[FailedRemoval]:
        """Ask CS about every running task; handle those that ended in `fail`."""
        failures = []
        for task_id, removal in list(self.in_flight.items()):
            try:
                task = await self.pools.describe_task(task_id)
            except CloudCallError as error:
                if error.status == TASK_NOT_FOUND:
                    del self.in_flight[task_id]  # nothing left to follow
                log.info("removal task not read", extra={"task": task_id, "code": error.code})
                continue
            if task.state == "running":
                continue
            del self.in_flight[task_id]
            if task.state == "success":
                self.ended.add(task_id)
            if task.state == "fail":
                error_text = task.error or "the task failed without an error message"
                failures.append(
                    await self._fail(
                        removal, error_text, now=now, present=present, retry_after=retry_after
                    )
                )
        return failures

    async def recover(
        self,
        facts: Mapping[str, NodeFacts],
        *,
        pools: Mapping[str, str | None],
        now: float,
        retry_after: float,
    ) -> list[FailedRemoval]:
        """Nodes carrying our mark that no removal in flight covers: follow their task again, or
        clear the marks left behind (see the module's rules). `pools` maps node names to their
        pool ids."""
        leaving = self.leaving()
        failures = []
        left: dict[str, list[str]] = {}  # pool id ("" when unknown) -> nodes marked, no task
        for name, fact in sorted(facts.items()):
            if fact.marked_at is None or name in leaving:
                continue
            pool_id = pools.get(name) or ""
            if fact.removal_task:
                failure, forgotten = await self._adopt(
                    name, fact, pool_id=pool_id, now=now, retry_after=retry_after
                )
                if failure is not None:
                    failures.append(failure)
                if not forgotten:
                    continue
            left.setdefault(pool_id, []).append(name)
        for pool_id, names in sorted(left.items()):
            await self._clear_left_behind(pool_id, names, now=now)
        return failures

    async def _adopt(
        self,
        name: str,
        fact: NodeFacts,
        *,
        pool_id: str,
        now: float,
        retry_after: float,
    ) -> tuple[FailedRemoval | None, bool]:
        """Follow the task a node's annotation names. The flag: CS no longer knows the task, so
        the node is to be judged as one marked without a task."""
        removal = Removal(fact.removal_task, pool_id, (name,), fact.marked_at or now)
        if removal.task_id in self.ended:
            return None, False  # it succeeded: the node is on its way out
        try:
            task = await self.pools.describe_task(fact.removal_task)
        except CloudCallError as error:
            # not found: forgotten by CS; anything else: ask again next round
            return None, error.status == TASK_NOT_FOUND
        if task.state == "running":
            known = self.in_flight.get(task.task_id)
            nodes = (*known.nodes, name) if known is not None else (name,)
            self.started(Removal(task.task_id, removal.pool_id, nodes, removal.started_at))
            log.info("following a removal started before", extra={"task": task.task_id})
            return None, False
        if task.state == "fail":
            failure = await self._fail(
                removal,
                task.error or "the task failed",
                now=now,
                present=lambda _node: True,
                retry_after=retry_after,
            )
            return failure, False
        if task.state == "success":
            self.ended.add(task.task_id)  # the node is on its way out
            return None, False
        return None, True  # a state we do not know: CS's view of the node decides

    async def _clear_left_behind(self, pool_id: str, names: list[str], *, now: float) -> None:
        """Clear marks left behind on `names` (nodes of `pool_id`) that may be cleared now."""
        candidates: list[tuple[str, str, Mark]] = []
        for name in names:
            try:
                node = await self.kube.get_node(name)
            except (KubeError, KubeUnreachable):
                continue  # gone, or asked again next round
            found = mark_of(node)
            if found is None or found.task:
                continue  # unmarked, or a task was noted since: the next round follows it
            ours = bool(self.identity) and found.holder == self.identity
            if not ours and now - found.at < MARK_GRACE_SECONDS:
                continue  # another agent may be between its cordon and its CS call
            instance = instance_id_of(str((node.get("spec") or {}).get("providerID") or ""))
            candidates.append((name, instance, found))
        if not candidates:
            return
        held = None
        if self.lock is not None and pool_id:
            held = await self.lock.acquire(pool_id)
            if not held.acquired:
                log.info(
                    "marks left behind wait: the pool lock is held",
                    extra={"pool": pool_id, "holder": held.holder, "nodes": names},
                )
                return
        try:
            await self._clear_unless_removing(pool_id, candidates)
        finally:
            if held is not None and self.lock is not None:
                await self.lock.release(held)

    async def _clear_unless_removing(
        self, pool_id: str, candidates: list[tuple[str, str, Mark]]
    ) -> None:
        """Under the pool's Lease: unmark each candidate CS is not removing."""
        states: dict[str, str] = {}
        if pool_id:
            try:
                states = await pool_members(self.pools, pool_id)
            except CloudCallError as error:
                log.info("pool nodes not read; marks stay", extra={"code": error.code})
                return
        for name, instance, found in candidates:
            state = states.get(instance) if instance else None
            if state == REMOVING:
                log.info("removal under way; its marks stay", extra={"node": name})
                continue
            if instance and pool_id and state is None:
                continue  # no longer a node of the pool: it is leaving the cluster
            log.warning(
                "removal mark left behind; taking it off",
                extra={"node": name, "markedBy": found.holder, "markedAt": rfc3339(found.at)},
            )
            await unmark(self.kube, name, only_if=still(found))

    async def _fail(
        self,
        removal: Removal,
        error: str,
        *,
        now: float,
        present: Callable[[str], bool],
        retry_after: float,
    ) -> FailedRemoval:
        back = []
        for node in removal.nodes:
            if not present(node):
                continue  # removed after all (one node of several failed)
            back.append(node)
            await unmark(
                self.kube,
                node,
                uncordon=node not in removal.cordoned_before,
                only_if=of_task(removal.task_id, self.identity),
            )
            self.failed(node, at=now)
            recorded = await record_event(
                self.kube,
                node,
                reason=SCALE_DOWN_FAILED,
                message=f"RemoveNodePoolNodes task {removal.task_id} failed: {error}; the node "
                f"stays, uncordoned, and is not removed again for {retry_after:g}s",
                now=rfc3339(now),
                event_type="Warning",
            )
            self.events_failed += 0 if recorded else 1
        log.warning(
            "removal failed; nodes back in service",
            extra={
                "task": removal.task_id,
                "pool": removal.pool_id,
                "nodes": back,
                "error": error,
                "retryAfterSeconds": retry_after,
            },
        )
        return FailedRemoval(removal, error, tuple(back))

    def status(self) -> dict[str, Any]:
        """The /status block: tasks in flight, and the last failure per node."""
        return {
            "inFlight": [
                {"task": r.task_id, "pool": r.pool_id, "nodes": list(r.nodes)}
                for r in self.in_flight.values()
            ],
            "failedAt": {node: rfc3339(at) for node, at in sorted(self.failed_at.items())},
        }
