"""A small in-memory `NodePoolService` for the CS emulator tests: nodes boot after a fixed delay on
the test clock, and each size change is a task that runs until the nodes it asked for are up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from agent.sim.cloud.cloud_model import CloudError, NodeView, PoolView, TaskView
from tests.support.builders import stamp


@dataclass
class _Node:
    instance_id: str
    pool_id: str
    created: float
    removing: bool = False


@dataclass
class _Task:
    task_id: str
    task_type: str
    created: float
    done_at: float
    error: str | None = None


class InMemoryPools:
    """Pools keyed by id; `now` is the test clock, so tests move time instead of sleeping."""

    def __init__(
        self,
        pools: list[PoolView],
        *,
        now: Callable[[], float],
        cluster_id: str = "c-test",
        region_id: str = "cn-hangzhou",
        boot_seconds: float = 60.0,
        node_quota: int = 100,
    ) -> None:
        self.cluster_id = cluster_id
        self.node_quota = node_quota
        self.region_id = region_id
        self._now = now
        self._boot = boot_seconds
        self._pools = {p.pool_id: p for p in pools}
        self._nodes: list[_Node] = []
        self._tasks: dict[str, _Task] = {}
        self._seq = 0
        for pool in pools:
            for _ in range(pool.desired):
                self._add_node(pool.pool_id, created=now() - boot_seconds)

    def _next(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{self._seq:06d}"

    def _add_node(self, pool_id: str, *, created: float) -> None:
        self._nodes.append(_Node(self._next("i-sim"), pool_id, created))

    def _pool(self, pool_id: str) -> PoolView:
        if pool_id not in self._pools:
            raise CloudError(404, "ErrorNodePoolNotFound", f"nodepool {pool_id} not found")
        return self._pools[pool_id]

    def _live(self, pool_id: str | None = None) -> list[_Node]:
        return [
            n for n in self._nodes if not n.removing and (pool_id is None or n.pool_id == pool_id)
        ]

    def _ready(self, node: _Node) -> bool:
        return self._now() >= node.created + self._boot

    def _task(self, task_type: str) -> TaskView:
        t = _Task(self._next("T-"), task_type, self._now(), self._now() + self._boot)
        self._tasks[t.task_id] = t
        return self.describe_task(t.task_id)

    def cluster_nodes(self) -> int:
        coming = sum(max(0, p.desired - len(self._live(p.pool_id))) for p in self._pools.values())
        return len(self._live()) + coming

    def describe_pools(self) -> list[PoolView]:
        return [self.describe_pool(pid) for pid in self._pools]

    def describe_pool(self, pool_id: str) -> PoolView:
        pool = self._pool(pool_id)
        live = self._live(pool_id)
        ready = sum(1 for n in live if self._ready(n))
        return replace(
            pool,
            total_nodes=len(live),
            healthy_nodes=ready,
            serving_nodes=ready,
            initial_nodes=len(live) - ready,
        )

    def set_desired(self, pool_id: str, desired: int) -> TaskView:
        pool = self._pool(pool_id)
        live = self._live(pool_id)
        for _ in range(desired - len(live)):
            self._add_node(pool_id, created=self._now())
        for node in live[desired:]:
            node.removing = True
        self._pools[pool_id] = replace(pool, desired=desired)
        return self._task("nodepool_scale")

    def scale_by(self, pool_id: str, count: int) -> TaskView:
        return self.set_desired(pool_id, self._pool(pool_id).desired + count)

    def remove_nodes(
        self, pool_id: str, instance_ids: list[str], *, drain: bool, release: bool
    ) -> TaskView:
        pool = self._pool(pool_id)
        targets = [n for n in self._live(pool_id) if n.instance_id in instance_ids]
        if len(targets) != len(instance_ids):
            raise CloudError(400, "InvalidParameter", "some instance_ids are not in this nodepool")
        for node in targets:
            node.removing = True
        self._pools[pool_id] = replace(pool, desired=pool.desired - len(targets))
        return self._task("nodepool_remove_nodes")

    def describe_nodes(self, pool_id: str | None = None) -> list[NodeView]:
        return [
            NodeView(
                instance_id=n.instance_id,
                node_name=f"{self.region_id}.172.16.0.{i + 10}",
                pool_id=n.pool_id,
                instance_type=self._pools[n.pool_id].instance_types[0],
                ip=f"172.16.0.{i + 10}",
                state="running" if self._ready(n) else "initial",
                node_status="Ready" if self._ready(n) else "NotReady",
                creation_time=stamp(n.created),
            )
            for i, n in enumerate(self._nodes)
            if not n.removing and (pool_id is None or n.pool_id == pool_id)
        ]

    def fail_task(self, task_id: str, error: str) -> None:
        """Make a task end in failure, the way a stock-out ends a scale-out."""
        self._tasks[task_id].error = error

    def describe_task(self, task_id: str) -> TaskView:
        t = self._tasks.get(task_id)
        if t is None:
            raise CloudError(404, "ErrorTaskNotFound", f"task {task_id} not found")
        done = self._now() >= t.done_at or t.error is not None
        return TaskView(
            task_id=t.task_id,
            task_type=t.task_type,
            state=("fail" if t.error else "success") if done else "running",
            created=stamp(t.created),
            updated=stamp(t.done_at if done else t.created),
            error=t.error,
        )
