"""Removals in flight: following each RemoveNodePoolNodes task to its end, and what a failure
leaves to do.

ACK drains with PodDisruptionBudgets respected and waits up to 30 minutes; if pods remain, the
drain fails, the node is not removed and the task ends `fail` (ACK user guide, "remove a node").
So a removal is not done when CS accepts it: every scale-in round asks DescribeTaskInfo about the
tasks still running. On `fail` the nodes still there get their marks off (uncordoned, untainted),
a Warning Event `ScaleDownFailed` naming the task's error, and a back-off: the scale-in/v1
request carries `lastRemovalFailedAt`, and the decision keeps the node for
`scaleDownDelayAfterFailureSeconds` before it may be chosen again.

After a restart nothing of this is in memory; the marks on the nodes are (`agent.scale_in.marks`).
`recover` reads them: a node with our taint and a task annotation is followed again (or its
failure handled), one with our taint but no task and no known removal was left behind (the agent
stopped between cordon and RemoveNodePoolNodes) and is unmarked once MARK_GRACE_SECONDS old — the
grace leaves another agent, between its cordon and its CS call, alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.clients.cs import CloudCallError, TaskState
from agent.ingest.node_pods import NodeFacts
from agent.scale_in.events import SCALE_DOWN_FAILED, EventWriter, record_event
from agent.scale_in.marks import NodeEditor, unmark
from agent.scale_in.tracking import rfc3339

log = logging.getLogger(__name__)

# A mark without a task this old was left behind. RemoveNodePoolNodes answers within the CS
# client's retries (4 attempts of at most 10 s); two minutes is well past that.
MARK_GRACE_SECONDS = 120.0
TASK_NOT_FOUND = 404


class TaskReader(Protocol):
    """What following removals needs of the CS client (agent.clients.cs.NodePoolClient)."""

    async def describe_task(self, task_id: str) -> TaskState: ...


class NodeMarker(NodeEditor, EventWriter, Protocol):
    """What it needs of the Kubernetes client: node edits and Events."""


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
        unmark them. `pools` maps node names to their pool ids."""
        leaving = self.leaving()
        failures = []
        for name, fact in sorted(facts.items()):
            if fact.marked_at is None or name in leaving:
                continue
            if fact.removal_task:
                failure = await self._adopt(
                    name, fact, pool_id=pools.get(name), now=now, retry_after=retry_after
                )
                if failure is not None:
                    failures.append(failure)
            elif now - fact.marked_at >= MARK_GRACE_SECONDS:
                log.warning(
                    "removal mark left behind; taking it off",
                    extra={"node": name, "markedAt": fact.marked_at},
                )
                await unmark(self.kube, name)
        return failures

    async def _adopt(
        self,
        name: str,
        fact: NodeFacts,
        *,
        pool_id: str | None,
        now: float,
        retry_after: float,
    ) -> FailedRemoval | None:
        removal = Removal(fact.removal_task, pool_id or "", (name,), fact.marked_at or now)
        if removal.task_id in self.ended:
            return None  # it succeeded: the node is on its way out
        try:
            task = await self.pools.describe_task(fact.removal_task)
        except CloudCallError as error:
            if error.status != TASK_NOT_FOUND:
                return None  # ask again next round
            task = TaskState(fact.removal_task, "unknown")
        if task.state == "running":
            known = self.in_flight.get(task.task_id)
            nodes = (*known.nodes, name) if known is not None else (name,)
            self.started(Removal(task.task_id, removal.pool_id, nodes, removal.started_at))
            log.info("following a removal started before", extra={"task": task.task_id})
            return None
        if task.state == "success":
            self.ended.add(task.task_id)
        if task.state == "fail":
            return await self._fail(
                removal,
                task.error or "the task failed",
                now=now,
                present=lambda _node: True,
                retry_after=retry_after,
            )
        # ended well (the node is on its way out) or forgotten by CS: nothing to follow
        if task.state != "success":
            await unmark(self.kube, name)
        return None

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
            await unmark(self.kube, node, uncordon=node not in removal.cordoned_before)
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
