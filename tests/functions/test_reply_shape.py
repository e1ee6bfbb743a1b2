"""The reply as the contract writes it: seed decision, ordering, decisionId stability."""

from __future__ import annotations

import copy
import re
from typing import Any

from functions import decide
from functions.example import seed_request
from tests.support.decide_requests import eci, pod, pool, request


def test_seed_walkthrough_with_pools_first_adds_five_nodes() -> None:
    """15 × 1 vCPU pods on 3900m nodes (3 per node): scale np-cpu 0 → 5, all pods in the action."""
    body = seed_request()
    body["policy"]["strategy"] = "pool-first"
    reply = decide(body)
    assert reply["schema"] == "decide/v1"
    assert re.fullmatch(r"[0-9a-f]{16}", reply["decisionId"])
    assert reply["actions"] == [
        {
            "kind": "scale-pool",
            "poolId": "np-cpu",
            "fromDesired": 0,
            "toDesired": 5,
            "pods": [p["uid"] for p in body["pods"]],
            "reason": "pool-first: np-cpu has room (3 pods/node)",
        }
    ]
    assert reply["covered"] == [] and reply["unplaceable"] == []
    assert reply["summary"] == {
        "newNodes": 5,
        "eciPods": 0,
        "coveredPods": 0,
        "unplaceablePods": 0,
        "estimatedCostPerHour": 4.5,
    }


def test_seed_walkthrough_by_cost_goes_to_eci() -> None:
    """At the seed's prices ECI is cheaper per pod for a 600 s run than a third of a node."""
    reply = decide(seed_request())
    assert [a["kind"] for a in reply["actions"]] == ["place-on-eci"]
    assert reply["summary"]["eciPods"] == 15


def test_actions_are_sorted_by_pool_and_eci_comes_last() -> None:
    """Scale-pool actions by pool id, then the one place-on-eci action; pods in request order."""
    pods = [
        pod("u-b2", nodeSelector={"p": "b"}),
        pod("u-a", nodeSelector={"p": "a"}),
        pod("u-b1", nodeSelector={"p": "b"}),
        pod("u-eci", annotations={"ray-ack-scaler/placement": "eci"}),
    ]
    pools = [pool("np-b", labels={"p": "b"}), pool("np-a", labels={"p": "a"})]
    reply = decide(request(pods, pools, eci_config=eci(), strategy="pool-first"))
    assert [(a["kind"], a.get("poolId"), a["pods"]) for a in reply["actions"]] == [
        ("scale-pool", "np-a", ["u-a"]),
        ("scale-pool", "np-b", ["u-b2", "u-b1"]),
        ("place-on-eci", None, ["u-eci"]),
    ]


def _body() -> dict[str, Any]:
    return request(
        [pod(f"u-{i}") for i in range(4)],
        [pool("np-a", desired=2, scalingSince="2026-11-29T04:50:00Z")],
    )


def test_decision_id_ignores_now_except_through_a_pool_timing_out() -> None:
    """`now` alone never moves the id; a pool passing maxProvisionSeconds does."""
    body = _body()
    fresh = decide({**body, "now": "2026-11-29T04:55:00Z"})
    assert fresh["decisionId"] == decide(body)["decisionId"]
    late1 = decide({**body, "now": "2026-11-29T06:00:00Z"})
    late2 = decide({**body, "now": "2026-11-29T07:00:00Z"})
    assert late1["decisionId"] == late2["decisionId"] != fresh["decisionId"]
    assert late1["unplaceable"] != late2["unplaceable"]  # the reason says how long it waited


def test_decision_id_follows_content_not_spelling() -> None:
    """Equal quantities spelt differently keep the id; a different pool size changes it."""
    body = _body()
    respelt = copy.deepcopy(body)
    for item in respelt["pods"]:
        item["requests"] = {"memory": "1024Mi", "cpu": "1000m"}
    assert decide(respelt)["decisionId"] == decide(body)["decisionId"]
    bigger = copy.deepcopy(body)
    bigger["pools"][0]["size"]["max"] = 11
    assert decide(bigger)["decisionId"] != decide(body)["decisionId"]
