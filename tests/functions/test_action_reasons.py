"""Each action says why its pods went there: the strategy, the chosen option, overflow, annotation."""

from __future__ import annotations

from typing import Any

import pytest

from functions import decide
from tests.support.decide_requests import eci, pod, pool, request

PLACEMENT = "ray-ack-scaler/placement"


def _reasons(reply: dict[str, Any]) -> dict[str, str]:
    return {action.get("poolId", "ECI"): action["reason"] for action in reply["actions"]}


def _workers(count: int = 15, **fields: Any) -> list[dict[str, Any]]:
    return [pod(f"u-{i:02d}", **fields) for i in range(count)]


@pytest.mark.parametrize(
    ("strategy", "pool_fields", "policy", "expected"),
    [
        # ECI bills each 1 vCPU / 1 GiB worker as the spec it rounds up to, 1 vCPU / 2 GiB:
        # (1 × 0.000049 + 2 × 0.00000613) CNY/s × 600 s = 0.00006126 × 600 = 0.036756 → 0.037
        # (it was 0.033 when the raw 1 GiB was priced). np-a: 0.9 CNY/h × 600 s / 3 pods = 0.050.
        (
            "cost",
            {},
            {},
            {
                "ECI": "cost: ECI 0.037/pod·run vs np-a 0.050 — ECI cheaper within "
                "the 120 s latency budget"
            },
        ),
        (
            "cost",
            {"price": 0.3},
            {},
            {
                "np-a": "cost: np-a 0.017/pod·run vs ECI 0.037 — np-a "
                "cheaper within the 120 s latency budget"
            },
        ),
        (
            "cost",
            {"price": 0.3},
            {"latencyBudgetSeconds": 60},
            {"ECI": "cost: ECI 0.037/pod·run — np-a starts in 90 s, over the 60 s latency budget"},
        ),
        (
            "cost",
            {"price": 0.3},
            {"latencyBudgetSeconds": 10},
            {
                "ECI": "cost: no option starts within the 10 s latency budget — ECI is fastest (30 s)"
            },
        ),
        ("latency", {}, {}, {"ECI": "latency: ECI starts in 30 s vs np-a 90 s"}),
        ("pool-first", {}, {}, {"np-a": "pool-first: np-a has room (3 pods/node)"}),
        ("eci-first", {}, {}, {"ECI": "eci-first: ECI can run the pods"}),
    ],
)
def test_reason_names_the_strategy_and_the_chosen_option(
    strategy: str, pool_fields: dict[str, Any], policy: dict[str, Any], expected: dict[str, str]
) -> None:
    """The reason names the strategy, the option it chose and what that option beat."""
    body = request(
        _workers(), [pool("np-a", **pool_fields)], eci_config=eci(), strategy=strategy, **policy
    )
    assert _reasons(decide(body)) == expected


def test_overflow_names_the_full_option() -> None:
    """Pods that spill over say which better option reached its limit."""
    body = request(_workers(), [pool("np-a", max_size=2)], eci_config=eci(), strategy="pool-first")
    assert _reasons(decide(body)) == {
        "np-a": "pool-first: np-a has room (3 pods/node)",
        "ECI": "overflow: np-a reached max 2",
    }


def test_overflow_from_eci_names_max_pods() -> None:
    """ECI at maxPods sends the rest to the pool, and the pool's action says so."""
    body = request(
        _workers(), [pool("np-a")], eci_config=eci(max_pods=10, running=4), strategy="eci-first"
    )
    assert _reasons(decide(body)) == {
        "ECI": "eci-first: ECI can run the pods",
        "np-a": "overflow: ECI at maxPods",
    }


def test_overflow_past_the_new_node_budget() -> None:
    """maxNewNodesPerDecision is named when it stops the preferred pool."""
    body = request(
        _workers(),
        [pool("np-a")],
        eci_config=eci(),
        strategy="pool-first",
        maxNewNodesPerDecision=1,
    )
    assert _reasons(decide(body))["ECI"] == "overflow: maxNewNodesPerDecision 1 reached"


@pytest.mark.parametrize(
    ("annotation", "strategy", "target"),
    [("eci", "pool-first", "ECI"), ("ecs", "eci-first", "np-a")],
)
def test_annotation_is_named(annotation: str, strategy: str, target: str) -> None:
    """A pod's placement annotation appears in the reason of the action it overrode."""
    body = request(
        _workers(annotations={PLACEMENT: annotation}),
        [pool("np-a")],
        eci_config=eci(),
        strategy=strategy,
    )
    reason = _reasons(decide(body))[target]
    assert reason.startswith(f"annotation {PLACEMENT}={annotation}: {strategy}: ")


def test_groups_with_different_reasons_share_one_action() -> None:
    """Two groups scaled into one pool for different reasons list both, once each."""
    pods = [*_workers(6), *_workers(6, annotations={PLACEMENT: "ecs"})]
    for i, item in enumerate(pods):
        item["uid"] = f"p-{i}"
    pods[6]["requests"] = pods[7]["requests"] = {"cpu": "2", "memory": "1Gi"}
    body = request(pods, [pool("np-a", price=0.3)], eci_config=eci(), strategy="cost")
    reasons = _reasons(decide(body))["np-a"].split("; ")
    assert len(reasons) == len(set(reasons)) >= 2
    assert any(r.startswith(f"annotation {PLACEMENT}=ecs: cost: np-a") for r in reasons)


def test_a_cost_tie_names_the_tie_break() -> None:
    """Two pools at the same price per pod: the reason says it was a tie and what broke it."""
    body = request(_workers(), [pool("np-b"), pool("np-a")], strategy="cost")
    assert _reasons(decide(body)) == {
        "np-a": "cost: np-a 0.050/pod·run, tied with np-b (first by id)"
    }


def test_a_priority_tie_break_is_named() -> None:
    """Equal cost, higher priority wins, and the reason says so."""
    body = request(_workers(), [pool("np-a"), pool("np-b", priority=5)], strategy="cost")
    assert _reasons(decide(body)) == {
        "np-b": "cost: np-b 0.050/pod·run, tied with np-a (higher priority 5 vs 0)"
    }
