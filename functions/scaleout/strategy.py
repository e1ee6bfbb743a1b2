"""Ranking a pod group's feasible options (pools and ECI) by `policy.strategy`.

- cost: options that start within `latencyBudgetSeconds` first, cheapest per pod first;
  then the others, fastest first (if none meets the budget, the fastest wins; a slow
  start beats no start when the fast options are full).
- latency: fastest start first (`bootSeconds` of a pool, `startSeconds` of ECI).
A pool ACK's autoscaler owns (a companion pool) starts a node only after ACK's next scan
notices the pod: its start delay is `scanIntervalSeconds + bootSeconds`, in every strategy.
- pool-first: pools, ECI only as overflow. eci-first: ECI, pools as overflow.
Ties, in every strategy: higher pool `priority`, then least waste, then cost, then id.

Cost per pod over `expectedRunSeconds` (both ECS pay-as-you-go and ECI bill by time,
so both are priced for the same run):
- ECS: pricePerHour × expectedRunSeconds / 3600 per node. A group alone on a pool pays the
  whole nodes its pods need, ceil(pods / pods per node), shared over its pods: a node it
  cannot fill is charged to the pods it does hold, so one small pod does not pick a 96-core
  node because that node is cheap per slot. Where other groups can use the pool too, a pod
  pays its share of a node (its largest fraction of any resource), the group at least one
  node: the room it leaves is filled by other shapes (`node_cost_per_pod`).
- ECI: (vCPU × pricePerVcpuSecond + GiB × pricePerGibSecond) × expectedRunSeconds, of the
  spec ECI bills the pod as: its requests rounded up to a supported spec, or the spec its
  `k8s.aliyun.com/eci-use-specs` pins (`functions.eci_specs`). A pinned ECS instance type is
  billed by that type, whose price the request does not carry: it is priced as the pod's rounded
  size, and the reason says it is an estimate.
"""

from __future__ import annotations

from collections.abc import Container

from functions.eci_specs import Billed, spec_text
from functions.scaleout.feasibility import Feasibility, PoolFit
from functions.scaleout.model import Eci, Policy
from functions.scaleout.packing import nodes_needed

_GIB_MILLI = 1000 * 2**30


class Option:
    """One place to put pods: a pool (`fit` set) or ECI (`fit` None)."""

    # A plain slotted class, not a dataclass: see functions.scaleout.model.
    __slots__ = ("cost_per_pod", "estimate", "fit", "latency")

    def __init__(
        self, fit: PoolFit | None, latency: float, cost_per_pod: float, estimate: str = ""
    ) -> None:
        self.fit = fit
        self.latency = latency
        self.cost_per_pod = cost_per_pod
        # Why the cost is only an estimate ("" when it is the price list's).
        self.estimate = estimate

    @property
    def label(self) -> str:
        return "ECI" if self.fit is None else self.fit.pool.id


def node_cost_per_pod(fit: PoolFit, *, pods: int, seconds: float, shared: bool) -> float:
    """What one of `pods` pods costs on a new node of the pool, over `seconds`.

    Alone on the pool's new nodes, the group pays whole nodes: the nodes its pods need
    (ceil(pods / per node)) over its pods, so one shape goes to the pool that holds it for the
    least. When other groups of the decision can use the pool too, they fill the room a shape
    leaves (the cpu a memory-heavy shape leaves, the last node's rest): a pod pays its share of
    the node, the largest fraction of any resource it takes, and the group together at least one
    node.
    """
    node = fit.pool.price_per_hour * seconds / 3600
    if pods < 1:
        pods = 1
    if not shared:
        return node * nodes_needed(pods, fit.per_node) / pods
    # max(share, whole node / pods), spelled out: this runs per group and pool.
    share = node * fit.share
    floor = node / pods
    return floor if floor > share else share


def eci_cost_per_pod(billed: Billed, *, eci: Eci, seconds: float) -> float:
    """What one pod billed as `billed` costs on ECI for `seconds`."""
    vcpus = billed.cpu / 1000
    gib = billed.memory / _GIB_MILLI
    return (vcpus * eci.price_per_vcpu_second + gib * eci.price_per_gib_second) * seconds


def eci_estimate(billed: Billed) -> str:
    """Why the ECI price of `billed` is an estimate ("" when ECI bills vCPU and memory)."""
    if not billed.instance_type:
        return ""
    return (
        f"an estimate: ECI bills {billed.instance_type} by instance type, "
        f"priced here as {spec_text(billed)}"
    )


def rank(
    feasible: Feasibility,
    *,
    pods: int,
    policy: Policy,
    eci: Eci,
    shared: Container[str] = (),
) -> list[Option]:
    """The group's options, best first, for `pods` pods still to place; `shared`: the pools
    other pod groups of this decision can use too (see `node_cost_per_pod`)."""
    seconds = policy.expected_run_seconds
    strategy = policy.strategy
    budget = policy.latency_budget_seconds
    # (sort key, option) pairs, keys built inline: rank runs once per group and there are
    # thousands of groups. Keys are unique (they end with the pool id, "" for ECI).
    keyed = []
    for fit in feasible.pools:
        pool = fit.pool
        latency = pool.start_seconds
        cost = node_cost_per_pod(fit, pods=pods, seconds=seconds, shared=pool.id in shared)
        if strategy == "cost":
            late = latency > budget
            key = (float(late), latency if late else cost, -pool.priority, fit.waste, cost, pool.id)
        else:
            key = _key(strategy, latency, cost, -pool.priority, fit.waste, pool.id, is_eci=False)
        keyed.append((key, Option(fit, latency, cost)))
    if feasible.eci is not None:
        latency = eci.start_seconds
        cost = eci_cost_per_pod(feasible.eci, eci=eci, seconds=seconds)
        option = Option(None, latency, cost, eci_estimate(feasible.eci))
        if strategy == "cost":
            late = latency > budget
            key = (float(late), latency if late else cost, 0, 0.0, cost, "")
        else:
            key = _key(strategy, latency, cost, 0, 0.0, "", is_eci=True)
        # "" sorts ECI before any pool id when everything else ties.
        keyed.append((key, option))
    keyed.sort(key=_first)
    return [option for _, option in keyed]


_Key = tuple[float, float, int, float, float, str]


def _first(pair: tuple[_Key, Option]) -> _Key:
    return pair[0]


def _key(
    strategy: str,
    latency: float,
    cost: float,
    priority: int,
    waste: float,
    name: str,
    *,
    is_eci: bool,
) -> _Key:
    """The sort key under the strategies other than cost (which `rank` builds inline);
    `priority` is already negated."""
    if strategy == "latency":
        return (latency, 0.0, priority, waste, cost, name)
    if strategy == "pool-first":
        return (float(is_eci), 0.0, priority, waste, cost, name)
    return (float(not is_eci), 0.0, priority, waste, cost, name)
