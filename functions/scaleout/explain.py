"""Why a pod group went where it went: the short human `reason` on each decide/v1 action.

A reason is computed once per (pod group, chosen option), never per pod, from the
ranked options `functions.scaleout.strategy.rank` produced. It names what decided:
the placement annotation, the strategy and the option it preferred with the
runner-up it beat, or — when a better option could take no more — the overflow
("overflow: np-gpu reached max 4"). Costs are per pod over `expectedRunSeconds`; an ECI cost
the price list cannot give (a pod pinned to an ECS instance type) is marked as an estimate.
A start delay of a pool ACK's autoscaler owns names its two parts: `np-x 120 s (ACK autoscaler
scan 30 s + boot 90 s)`.
A reason never contains "; ": the reply joins the reasons of several groups with it.
"""

from __future__ import annotations

from collections.abc import Sequence

from functions.contract import PLACEMENT_ANNOTATION, PLACEMENT_AUTO
from functions.scaleout.model import Policy
from functions.scaleout.strategy import Option


def placement_reason(
    options: Sequence[Option], chosen: int, *, policy: Policy, placement: str, full: Sequence[str]
) -> str:
    """Why `options[chosen]` took pods; `full` says why each better option took none."""
    option = options[chosen]
    if chosen:
        blocked = [text for text in full if text]
        if blocked:
            return "overflow: " + ", ".join(blocked)
        return f"room left on nodes this decision adds to {option.label}"
    if placement != PLACEMENT_AUTO:
        return f"annotation {PLACEMENT_ANNOTATION}={placement}: " + _strategy_reason(
            options, policy=policy
        )
    return _strategy_reason(options, policy=policy)


def _strategy_reason(options: Sequence[Option], *, policy: Policy) -> str:
    best = options[0]
    strategy = policy.strategy
    other = options[1] if len(options) > 1 else None
    if strategy == "cost":
        return _cost_reason(best, other, policy=policy)
    if strategy == "latency":
        text = f"latency: {best.label} starts in {_start(best)}"
        if other is None:
            return f"{text}, the only option that fits"
        return f"{text} vs {other.label} {_start(other)}"
    if best.fit is None:
        if strategy == "eci-first":
            return "eci-first: ECI can run the pods"
        return "pool-first: no pool fits, ECI can run the pods"
    room = f"{best.label} has room ({best.fit.per_node} pods/node)"
    if strategy == "pool-first":
        return f"pool-first: {room}"
    return f"eci-first: ECI cannot run the pods — {room}"


def _cost_reason(best: Option, other: Option | None, *, policy: Policy) -> str:
    budget = policy.latency_budget_seconds
    if best.latency > budget:
        return (
            f"cost: no option starts within the {budget:g} s latency budget — "
            f"{best.label} is fastest ({_start(best)})"
        )
    text = f"cost: {_priced(best, unit='/pod·run')}"
    if other is None:
        return f"{text}, the only option that fits"
    if other.latency > budget:
        return (
            f"{text} — {other.label} starts in {_start(other)}, over the "
            f"{budget:g} s latency budget"
        )
    if f"{other.cost_per_pod:.3f}" == f"{best.cost_per_pod:.3f}":
        return f"{text}, tied with {other.label} ({_tie_break(best, other)})"
    return (
        f"{text} vs {_priced(other)} — {best.label} cheaper within the {budget:g} s latency budget"
    )


def _start(option: Option) -> str:
    # "90 s"; a companion pool's delay with its parts, ACK's scan before the boot.
    text = f"{option.latency:g} s"
    pool = None if option.fit is None else option.fit.pool
    if pool is None or pool.scan_seconds is None:
        return text
    return f"{text} (ACK autoscaler scan {pool.scan_seconds:g} s + boot {pool.boot_seconds:g} s)"


def _priced(option: Option, *, unit: str = "") -> str:
    # "ECI 0.037", with why it is only an estimate when the price list cannot give it.
    text = f"{option.label} {option.cost_per_pod:.3f}{unit}"
    return f"{text} ({option.estimate})" if option.estimate else text


def _tie_break(best: Option, other: Option) -> str:
    # The ranking's tie-breakers, in its order (functions.scaleout.strategy.rank).
    best_priority = 0 if best.fit is None else best.fit.pool.priority
    other_priority = 0 if other.fit is None else other.fit.pool.priority
    if best_priority != other_priority:
        return f"higher priority {best_priority} vs {other_priority}"
    best_waste = 0.0 if best.fit is None else best.fit.waste
    other_waste = 0.0 if other.fit is None else other.fit.waste
    if best_waste != other_waste:
        return f"less waste, {best_waste:.0%} vs {other_waste:.0%} of a node unused"
    if best.cost_per_pod != other.cost_per_pod:
        return "cheaper in the fourth digit"
    return "first by id"
