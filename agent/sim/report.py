"""Reports of a simulated run: the cost report (node-seconds × price per pool, split into busy
and idle time, plus ECI's per-second billing) and the Ray job's timeline as a table.

Prices are the catalog's and the scenario's approximations (CNY); the report is for comparing
autoscaling strategies on the same scenario, not for predicting a bill.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from agent.sim.world.eci import EciBilling
from agent.sim.world.nodepools import NodeUsage
from agent.sim.world.ray import JobSummary, TimelinePoint


@dataclass(frozen=True)
class PoolCost:
    """One pool's nodes over the run: billed from launch to removal."""

    pool_id: str
    instance_type: str
    price_per_hour: float
    nodes: int
    node_seconds: float
    busy_seconds: float
    idle_seconds: float
    cost: float
    idle_cost: float


@dataclass(frozen=True)
class EciCost:
    """ECI's bill: each pod at the spec ECI rounds it up to, from image pull to its end."""

    pods: int
    vcpu_seconds: float
    gib_seconds: float
    cost: float


@dataclass(frozen=True)
class CostReport:
    pools: tuple[PoolCost, ...]
    eci: EciCost | None
    total_cost: float
    idle_cost: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def to_text(self) -> str:
        """A fixed-width table for a terminal."""
        lines = [
            f"{'pool':<16} {'type':<24} {'nodes':>5} {'node-h':>8} {'busy-h':>8} "
            f"{'idle-h':>8} {'CNY':>9} {'idle CNY':>9}"
        ]
        for pool in self.pools:
            lines.append(
                f"{pool.pool_id:<16} {pool.instance_type:<24} {pool.nodes:>5} "
                f"{pool.node_seconds / 3600:>8.2f} {pool.busy_seconds / 3600:>8.2f} "
                f"{pool.idle_seconds / 3600:>8.2f} {pool.cost:>9.2f} {pool.idle_cost:>9.2f}"
            )
        if self.eci is not None:
            lines.append(
                f"{'eci':<16} {'billed spec, per second':<24} {self.eci.pods:>5} "
                f"{'vCPU-h ' + format(self.eci.vcpu_seconds / 3600, '.2f'):>26} "
                f"{'':>8} {self.eci.cost:>9.2f} {'':>9}"
            )
        lines.append(
            f"total {self.total_cost:.2f} CNY, of which idle nodes {self.idle_cost:.2f} CNY"
        )
        return "\n".join(lines)


def cost_report(usage: Iterable[NodeUsage], eci: EciBilling | None = None) -> CostReport:
    """Fold node usage (NodePools.usage()) and ECI billing into a per-pool cost report."""
    by_pool: dict[str, list[NodeUsage]] = {}
    for node in usage:
        by_pool.setdefault(node.pool_id, []).append(node)
    pools = []
    for pool_id in sorted(by_pool):
        nodes = by_pool[pool_id]
        price = nodes[0].price_per_hour
        node_seconds = sum(n.billed_seconds for n in nodes)
        busy = sum(min(n.busy_seconds, n.billed_seconds) for n in nodes)
        idle = sum(n.idle_seconds for n in nodes)
        pools.append(
            PoolCost(
                pool_id=pool_id,
                instance_type=nodes[0].instance_type,
                price_per_hour=price,
                nodes=len(nodes),
                node_seconds=node_seconds,
                busy_seconds=busy,
                idle_seconds=idle,
                cost=sum(n.cost for n in nodes),
                idle_cost=sum(n.idle_seconds / 3600 * n.price_per_hour for n in nodes),
            )
        )
    eci_cost = None
    if eci is not None:
        eci_cost = EciCost(
            pods=len(eci.pods),
            vcpu_seconds=eci.vcpu_seconds,
            gib_seconds=eci.gib_seconds,
            cost=eci.cost,
        )
    total = sum(p.cost for p in pools) + (eci_cost.cost if eci_cost else 0.0)
    return CostReport(
        pools=tuple(pools),
        eci=eci_cost,
        total_cost=total,
        idle_cost=sum(p.idle_cost for p in pools),
    )


def timeline_text(points: Iterable[TimelinePoint], *, every_seconds: float = 30.0) -> str:
    """The job's timeline, one row per `every_seconds` of simulated time plus the last point;
    `wanted` is the RayCluster's replicas over all worker groups."""
    rows = [
        f"{'t(s)':>7} {'queued':>7} {'running':>7} {'done':>6} {'failed':>6} "
        f"{'unsched':>7} {'starting':>8} {'pods':>5} {'deleting':>8} {'wanted':>6}"
    ]
    chosen: list[TimelinePoint] = []
    next_at = 0.0
    last: TimelinePoint | None = None
    for point in points:
        last = point
        if point.t >= next_at:
            chosen.append(point)
            next_at = point.t + every_seconds
    if last is not None and (not chosen or chosen[-1] is not last):
        chosen.append(last)
    for p in chosen:
        rows.append(
            f"{p.t:>7.0f} {p.tasks_queued + p.tasks_waiting:>7} {p.tasks_running:>7} "
            f"{p.tasks_done:>6} {p.tasks_failed:>6} {p.pods_unscheduled:>7} {p.pods_starting:>8} "
            f"{p.pods_running:>5} {p.pods_terminating:>8} {sum(p.replicas.values()):>6}"
        )
    return "\n".join(rows)


def job_text(summary: JobSummary) -> str:
    """One line on how the Ray job fared."""
    makespan = (
        "unfinished" if summary.makespan_seconds is None else f"{summary.makespan_seconds:.0f}s"
    )
    return (
        f"tasks {summary.done}/{summary.tasks} done, {summary.failed} failed; makespan {makespan}; "
        f"wait mean {summary.mean_wait_seconds:.0f}s max {summary.max_wait_seconds:.0f}s; "
        f"worker pods created {summary.pods_created}, deleted {summary.pods_deleted}"
    )
