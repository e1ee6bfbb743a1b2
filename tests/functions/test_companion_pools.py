"""Companion pools (issue 18): `pools[].ackAutoscaler` marks a pool ACK's own autoscaler owns.

Such a pool is an option like any other, with start delay `scanIntervalSeconds + bootSeconds`
and room `size.max - size.desired`, but the decision never scales it: pods its new nodes would
take are `covered` entries marked `ackAutoscaler` (docs/decide-contract.md). A request without
the field gets the reply it got before the field existed.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions import InvalidRequest, decide
from functions.contract_checks import ReplyMismatch, check_decide_reply
from functions.example import seed_request
from tests.functions.test_decision_properties import requests as property_requests
from tests.functions.test_plan_matches_reference import _same_plan, many_shapes
from tests.support.decide_requests import eci, feed_back, placements, pod, pool, request

ACK = {"scanIntervalSeconds": 30}
LEFT = "left for ACK autoscaler on np-c"


def _companion(**fields: Any) -> dict[str, Any]:
    """A companion pool np-c: 4 vCPU / 16 GiB nodes (3 one-vCPU pods each), boot 90 s."""
    fields.setdefault("ackAutoscaler", dict(ACK))
    return pool("np-c", **fields)


def _pods(count: int, prefix: str = "u", **fields: Any) -> list[dict[str, Any]]:
    return [pod(f"{prefix}-{i}", **copy.deepcopy(fields)) for i in range(count)]


def _left_for_ack(reply: dict[str, Any]) -> list[str]:
    return [c["pod"] for c in reply["covered"] if c.get("ackAutoscaler")]


def _eci_pods(reply: dict[str, Any]) -> list[str]:
    return [uid for a in reply["actions"] if a["kind"] == "place-on-eci" for uid in a["pods"]]


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "path", "message"),
    [
        ("yes", "pools[0].ackAutoscaler", "expected an object, got string"),
        ([30], "pools[0].ackAutoscaler", "expected an object, got list"),
        (True, "pools[0].ackAutoscaler", "expected an object, got boolean"),
        ({"scanIntervalSeconds": -1}, "pools[0].ackAutoscaler.scanIntervalSeconds", "outside"),
        ({"scanIntervalSeconds": "30"}, "pools[0].ackAutoscaler.scanIntervalSeconds", "number"),
        ({"scanIntervalSeconds": True}, "pools[0].ackAutoscaler.scanIntervalSeconds", "number"),
        ({"scanIntervalSeconds": None}, "pools[0].ackAutoscaler.scanIntervalSeconds", "number"),
        ({"scanIntervalSeconds": 1e12}, "pools[0].ackAutoscaler.scanIntervalSeconds", "outside"),
    ],
)
def test_a_bad_ack_autoscaler_is_refused_at_its_path(value: Any, path: str, message: str) -> None:
    body = request(_pods(2), [_companion(ackAutoscaler=value)])
    with pytest.raises(InvalidRequest) as caught:
        decide(body)
    assert caught.value.path == path
    assert message in str(caught.value)


def test_null_means_managed_and_an_empty_object_scans_every_30_s() -> None:
    managed = request(_pods(3), [pool("np-c")])
    assert decide({**managed, "pools": [pool("np-c", ackAutoscaler=None)]}) == decide(managed)
    body = request(_pods(3), [_companion(ackAutoscaler={})], eci_config=eci(), strategy="latency")
    assert decide(body)["actions"][0]["reason"] == (
        "latency: ECI starts in 30 s vs np-c 120 s (ACK autoscaler scan 30 s + boot 90 s)"
    )


# --- each strategy: a companion pool against ECI ------------------------------------------


def test_pool_first_leaves_the_pods_for_acks_autoscaler() -> None:
    reply = decide(request(_pods(5), [_companion()], eci_config=eci(), strategy="pool-first"))
    assert reply["actions"] == []
    assert reply["covered"] == [
        {"pod": f"u-{i}", "poolId": "np-c", "ackAutoscaler": True, "reason": LEFT} for i in range(5)
    ]
    assert reply["summary"] == {
        "newNodes": 0,
        "eciPods": 0,
        "coveredPods": 5,
        "unplaceablePods": 0,
        # The two nodes ACK adds for them: the plan relies on them, so they are priced.
        "estimatedCostPerHour": 1.8,
        "leftForAckAutoscalerPods": 5,
    }


def test_latency_takes_eci_over_acks_scan_and_boot() -> None:
    reply = decide(request(_pods(4), [_companion()], eci_config=eci(), strategy="latency"))
    assert _eci_pods(reply) == [f"u-{i}" for i in range(4)]
    assert reply["actions"][0]["reason"] == (
        "latency: ECI starts in 30 s vs np-c 120 s (ACK autoscaler scan 30 s + boot 90 s)"
    )
    assert reply["summary"]["leftForAckAutoscalerPods"] == 0


def test_latency_leaves_pods_for_ack_when_scan_and_boot_beat_eci() -> None:
    fast = _companion(boot=20, ackAutoscaler={"scanIntervalSeconds": 5})
    reply = decide(request(_pods(4), [fast], eci_config=eci(), strategy="latency"))
    assert reply["actions"] == []
    assert _left_for_ack(reply) == [f"u-{i}" for i in range(4)]


def test_cost_leaves_pods_for_ack_when_it_is_cheaper_within_the_budget() -> None:
    cheap = _companion(price=0.2)  # 0.011/pod·run on a full node, ECI 0.037
    reply = decide(
        request(_pods(6), [cheap], eci_config=eci(), strategy="cost", latencyBudgetSeconds=120)
    )
    assert reply["actions"] == []
    assert _left_for_ack(reply) == [f"u-{i}" for i in range(6)]


def test_cost_counts_acks_scan_against_the_latency_budget() -> None:
    """Boot alone (90 s) meets a 100 s budget; with ACK's 30 s scan first, it does not."""
    body = request(_pods(6), [_companion(price=0.2)], eci_config=eci(), latencyBudgetSeconds=100)
    reply = decide(body)
    assert _eci_pods(reply) == [f"u-{i}" for i in range(6)]
    assert reply["actions"][0]["reason"] == (
        "cost: ECI 0.037/pod·run — np-c starts in 120 s (ACK autoscaler scan 30 s + boot 90 s), "
        "over the 100 s latency budget"
    )
    managed = decide({**body, "pools": [pool("np-c", price=0.2)]})
    assert [a["kind"] for a in managed["actions"]] == ["scale-pool"]


def test_cost_takes_the_fastest_companion_when_nothing_meets_the_budget() -> None:
    body = request(_pods(3), [_companion()], eci_config=eci(), latencyBudgetSeconds=10)
    no_eci = decide({**body, "eci": eci(enabled=False)})
    assert _left_for_ack(no_eci) == ["u-0", "u-1", "u-2"]
    slow_eci = decide({**body, "eci": eci(startSeconds=200)})
    assert slow_eci["actions"] == []
    assert _left_for_ack(slow_eci) == ["u-0", "u-1", "u-2"]


def test_eci_first_takes_eci_and_leaves_the_overflow_for_ack() -> None:
    body = request(_pods(5), [_companion()], eci_config=eci(max_pods=2), strategy="eci-first")
    reply = decide(body)
    assert _eci_pods(reply) == ["u-0", "u-1"]
    assert reply["actions"][0]["reason"] == "eci-first: ECI can run the pods"
    assert _left_for_ack(reply) == ["u-2", "u-3", "u-4"]
    assert reply["summary"]["leftForAckAutoscalerPods"] == 3


# --- room, upcoming nodes, mixed pools -----------------------------------------------------


def test_room_is_max_minus_desired() -> None:
    """ACK will not go past max_instances: 2 nodes of room, 6 pods; the rest overflow."""
    companion = _companion(desired=1, ready=1, max_size=3)
    body = request(_pods(9), [companion], eci_config=eci(), strategy="pool-first")
    reply = decide(body)
    assert _left_for_ack(reply) == [f"u-{i}" for i in range(6)]
    assert _eci_pods(reply) == ["u-6", "u-7", "u-8"]
    assert reply["actions"][0]["reason"] == "overflow: np-c reached max 3"
    alone = decide({**body, "eci": eci(enabled=False)})
    assert alone["unplaceable"] == [
        {"pod": f"u-{i}", "reason": "no capacity left: pool np-c at max size 3"} for i in (6, 7, 8)
    ]


def test_upcoming_nodes_on_a_companion_cover_pods_as_on_any_pool() -> None:
    companion = _companion(desired=2, ready=0, max_size=5)
    reply = decide(request(_pods(8), [companion], strategy="pool-first"))
    assert reply["covered"][:6] == [{"pod": f"u-{i}", "poolId": "np-c"} for i in range(6)]
    assert _left_for_ack(reply) == ["u-6", "u-7"]
    assert reply["summary"]["leftForAckAutoscalerPods"] == 2
    assert reply["summary"]["coveredPods"] == 8


def test_a_managed_and_a_companion_pool_in_one_request() -> None:
    """Pods only the managed pool takes raise it; pods only the companion takes are left."""
    managed = pool("np-m", labels={"tier": "a"}, price=1.0)
    companion = _companion(labels={"tier": "b"}, price=0.5)
    pods = _pods(4, "a", nodeSelector={"tier": "a"}) + _pods(5, "b", nodeSelector={"tier": "b"})
    body = request(pods, [managed, companion], eci_config=eci(enabled=False))
    reply = check_decide_reply(decide(body), body)
    (action,) = reply["actions"]
    assert (action["poolId"], action["fromDesired"], action["toDesired"]) == ("np-m", 0, 2)
    assert action["pods"] == ["a-0", "a-1", "a-2", "a-3"]
    assert _left_for_ack(reply) == [f"b-{i}" for i in range(5)]
    summary = reply["summary"]
    assert (summary["newNodes"], summary["leftForAckAutoscalerPods"]) == (2, 5)
    assert summary["estimatedCostPerHour"] == 2 * 1.0 + 2 * 0.5


def test_a_companion_competes_with_a_managed_pool_by_the_strategy() -> None:
    managed = pool("np-m", price=0.9, boot=90)
    companion = _companion(price=0.3)
    body = request(_pods(3), [managed, companion], latencyBudgetSeconds=150)
    assert _left_for_ack(decide(body)) == ["u-0", "u-1", "u-2"]
    fast = decide({**body, "policy": {**body["policy"], "strategy": "latency"}})
    assert [a["poolId"] for a in fast["actions"]] == ["np-m"]
    assert fast["actions"][0]["reason"] == (
        "latency: np-m starts in 90 s vs np-c 120 s (ACK autoscaler scan 30 s + boot 90 s)"
    )


def test_new_nodes_left_for_ack_count_against_the_node_budget() -> None:
    body = request(_pods(6), [_companion()], maxNewNodesPerDecision=1)
    reply = decide(body)
    assert _left_for_ack(reply) == ["u-0", "u-1", "u-2"]
    assert {u["reason"] for u in reply["unplaceable"]} == {
        "no capacity left: maxNewNodesPerDecision 1 reached"
    }


def test_the_reply_check_refuses_a_scale_pool_action_on_a_companion() -> None:
    body = request(_pods(1), [_companion()])
    reply = {
        "schema": "decide/v1",
        "decisionId": "x",
        "actions": [
            {
                "kind": "scale-pool",
                "poolId": "np-c",
                "fromDesired": 0,
                "toDesired": 1,
                "pods": ["u-0"],
                "reason": "",
            }
        ],
        "covered": [],
        "unplaceable": [],
        "summary": {},
    }
    with pytest.raises(ReplyMismatch, match="owned by ACK's autoscaler"):
        check_decide_reply(reply, body)


# --- properties with companion pools -------------------------------------------------------

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def with_companions(draw: st.DrawFn, base: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """A generated request with some of its pools made companions."""
    body = draw(base)
    for item in body["pools"]:
        if draw(st.booleans()):
            item["ackAutoscaler"] = {"scanIntervalSeconds": draw(st.sampled_from([0, 10, 30]))}
    return body


@SETTINGS
@given(with_companions(property_requests(budget=1000)))
def test_companions_never_scaled_and_fed_back_nothing_new(body: dict[str, Any]) -> None:
    reply = check_decide_reply(decide(body), body)
    companions = {p["id"] for p in body["pools"] if "ackAutoscaler" in p}
    assert not {a.get("poolId") for a in reply["actions"]} & companions
    left = _left_for_ack(reply)
    assert all(c["poolId"] in companions for c in reply["covered"] if c.get("ackAutoscaler"))
    summary = reply["summary"]
    assert summary.get("leftForAckAutoscalerPods") == (len(left) if companions else None)
    assert summary["coveredPods"] == len(reply["covered"])
    # Fed back (managed pools raised, ECI pods gone; companions unchanged, as ACK has not
    # scanned yet): no new action, and every pod where it was.
    again = decide(feed_back(body, reply))
    assert again["actions"] == []
    before, after = placements(reply), placements(again)
    for uid, target in after.items():
        if before[uid].startswith("new:"):
            assert target == "covered:" + before[uid].split(":", 1)[1]
        else:
            assert target == before[uid]
    assert sorted(_left_for_ack(again)) == sorted(left)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(with_companions(many_shapes()))
def test_plan_with_companions_matches_the_reference_planner(body: dict[str, Any]) -> None:
    _same_plan(body)


# --- backwards compatibility ---------------------------------------------------------------


def _legacy_requests() -> dict[str, dict[str, Any]]:
    """Requests without the field, over every strategy, upcoming nodes, ECI and a node quota."""
    shapes = (
        _pods(7, "a")
        + _pods(5, "b", cpu="3", memory="6Gi")
        + _pods(4, "c", nodeSelector={"tier": "a"})
    )
    pools = [
        pool("np-1", labels={"tier": "a"}, desired=2, ready=1, price=0.7, boot=60),
        pool("np-2", cpu="7900m", memory="30Gi", max_size=3, price=1.5, priority=1),
    ]
    bodies = {"seed": seed_request()}
    for strategy in ("cost", "latency", "pool-first", "eci-first"):
        bodies[strategy] = request(
            copy.deepcopy(shapes),
            copy.deepcopy(pools),
            eci_config=eci(max_pods=6),
            strategy=strategy,
            latencyBudgetSeconds=75,
            nodeQuota={"limit": 100, "nodes": 97},
        )
    return bodies


# sha256 of each reply (canonical JSON) from the decision before companion pools (596d5ac).
LEGACY_REPLIES = {
    "seed": "0937177fc952026bade72a6aa227ccf064fbc9ec86b533e3f963a54de45df46c",
    "cost": "4c14c2937f24fe4d94b780d44fea28c8be1f397dea253338dfc64160c8b7400f",
    "latency": "ba5cc9c6d5173432ad2471b59207c94d55c02c2cb1cddfc7dde50dca846baa9d",
    "pool-first": "4bb11b23a063de7de18db1261d9d0c8bf6021d5d9411ef4301764108dd45f4d8",
    "eci-first": "281a0ac2028b02ebc6af257f0be799c86db8bdd1813d6d95a58d121409a9b899",
}


@pytest.mark.parametrize("name", sorted(LEGACY_REPLIES))
def test_requests_without_the_field_get_the_reply_they_got_before(name: str) -> None:
    reply = decide(_legacy_requests()[name])
    assert "leftForAckAutoscalerPods" not in reply["summary"]
    text = json.dumps(reply, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert hashlib.sha256(text.encode()).hexdigest() == LEGACY_REPLIES[name]
