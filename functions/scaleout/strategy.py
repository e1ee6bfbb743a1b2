"""Ranking a pod group's feasible options (pools and ECI) by `policy.strategy`.

- cost: options that start within `latencyBudgetSeconds` first, cheapest per pod first;
  then the others, fastest first (if none meets the budget, the fastest wins; a slow
  start beats no start when the fast options are full).
- latency: fastest start first (`bootSeconds` of a pool, `startSeconds` of ECI).
- pool-first: pools, ECI only as overflow. eci-first: ECI, pools as overflow.
Ties, in every strategy: higher pool `priority`, then least waste, then cost, then id.

Cost per pod over `expectedRunSeconds` (both ECS pay-as-you-go and ECI bill by time,
so both are priced for the same run):
- ECS: pricePerHour × expectedRunSeconds / 3600, amortised over the pods that share
  the node: min(pods per node, pods of this group still to place). A node a group
  cannot fill is charged to the pods it does hold, so one small pod does not pick a
  96-core node because that node is cheap per slot.
- ECI: (vCPU × pricePerVcpuSecond + GiB × pricePerGibSecond) × expectedRunSeconds,
  from the pod's requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from functions.scaleout.feasibility import Feasibility, PoolFit
from functions.scaleout.model import Eci, Policy

_GIB_MILLI = 1000 * 2**30


@dataclass(frozen=True)
class Option:
    """One place to put pods: a pool (`fit` set) or ECI (`fit` None)."""

    fit: PoolFit | None
    latency: float
    cost_per_pod: float

    @property
    def label(self) -> str:
        return "ECI" if self.fit is None else self.fit.pool.id


def eci_cost_per_pod(requests: Mapping[str, int], *, eci: Eci, seconds: float) -> float:
    """What one pod costs on ECI for `seconds`."""
    vcpus = requests.get("cpu", 0) / 1000
    gib = requests.get("memory", 0) / _GIB_MILLI
    return (vcpus * eci.price_per_vcpu_second + gib * eci.price_per_gib_second) * seconds


def rank(feasible: Feasibility, *, pods: int, policy: Policy, eci: Eci) -> list[Option]:
    """The group's options, best first, for `pods` pods still to place."""
    seconds = policy.expected_run_seconds
    options = [
        Option(
            fit,
            fit.pool.boot_seconds,
            fit.pool.price_per_hour * seconds / 3600 / max(1, min(fit.per_node, pods)),
        )
        for fit in feasible.pools
    ]
    if feasible.eci:
        options.append(
            Option(
                None,
                eci.start_seconds,
                eci_cost_per_pod(feasible.requests, eci=eci, seconds=seconds),
            )
        )
    strategy = policy.strategy
    budget = policy.latency_budget_seconds

    def key(option: Option) -> tuple[float, float, int, float, float, str]:
        fit = option.fit
        is_eci = fit is None
        priority = 0 if fit is None else fit.pool.priority
        waste = 0.0 if fit is None else fit.waste
        # "" sorts ECI before any pool id when everything else ties.
        name = "" if fit is None else fit.pool.id
        if strategy == "cost":
            late = option.latency > budget
            first = option.latency if late else option.cost_per_pod
            return (float(late), first, -priority, waste, option.cost_per_pod, name)
        if strategy == "latency":
            return (option.latency, 0.0, -priority, waste, option.cost_per_pod, name)
        if strategy == "pool-first":
            return (float(is_eci), 0.0, -priority, waste, option.cost_per_pod, name)
        return (float(not is_eci), 0.0, -priority, waste, option.cost_per_pod, name)

    return sorted(options, key=key)
