"""decide/v1 `policy.nodeQuota`: the cluster's node quota caps the nodes a decision adds."""

from __future__ import annotations

import pytest

from functions import decide
from functions.errors import InvalidRequest
from functions.scaleout.validate import parse_request
from tests.support.decide_requests import pod, pool, request

# 12 pods of 1 vCPU on 4-vCPU nodes (3 per node after system reserve): 4 new nodes wanted.
PODS = [pod(f"u-{i}") for i in range(12)]


def new_nodes(reply: dict) -> int:
    return sum(
        a["toDesired"] - a["fromDesired"] for a in reply["actions"] if a["kind"] == "scale-pool"
    )


def test_without_a_quota_the_per_decision_cap_alone_applies() -> None:
    assert new_nodes(decide(request(PODS, [pool("np-a")]))) == 4


def test_the_quota_leaves_room_for_two_nodes() -> None:
    """limit 100, 98 nodes counted: 2 nodes are added, the other pods say the quota stopped them."""
    reply = decide(request(PODS, [pool("np-a")], nodeQuota={"limit": 100, "nodes": 98}))
    assert new_nodes(reply) == 2
    reasons = {item["reason"] for item in reply["unplaceable"]}
    assert reasons == {"no capacity left: cluster node quota 100 reached (98 nodes)"}


def test_the_tighter_cap_is_the_one_named() -> None:
    """maxNewNodesPerDecision 1 binds before a quota with room for 5."""
    reply = decide(
        request(
            PODS,
            [pool("np-a")],
            maxNewNodesPerDecision=1,
            nodeQuota={"limit": 100, "nodes": 95},
        )
    )
    assert new_nodes(reply) == 1
    assert all("maxNewNodesPerDecision 1" in item["reason"] for item in reply["unplaceable"])


def test_a_full_cluster_adds_nothing() -> None:
    reply = decide(request(PODS, [pool("np-a")], nodeQuota={"limit": 100, "nodes": 104}))
    assert new_nodes(reply) == 0 and len(reply["unplaceable"]) == 12


def test_the_quota_enters_the_decision_id() -> None:
    a = decide(request(PODS, [pool("np-a")], nodeQuota={"limit": 100, "nodes": 98}))
    b = decide(request(PODS, [pool("np-a")], nodeQuota={"limit": 100, "nodes": 97}))
    assert a["decisionId"] != b["decisionId"]


@pytest.mark.parametrize(
    ("quota", "path"),
    [
        ({"nodes": 3}, "policy.nodeQuota.limit"),
        ({"limit": -1}, "policy.nodeQuota.limit"),
        ({"limit": 100, "nodes": "3"}, "policy.nodeQuota.nodes"),
        ([100], "policy.nodeQuota"),
    ],
)
def test_a_malformed_quota_is_refused_by_path(quota: object, path: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_request(request(PODS, [pool("np-a")], nodeQuota=quota))
    assert caught.value.path == path
