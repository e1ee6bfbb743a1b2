"""Invariants of decide() over generated requests (hypothesis)."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions import decide
from tests.support.decide_requests import eci, feed_back, placements, pod, pool, request

SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CPUS = ["250m", "500m", "1", "1500m", "2", "3"]
MEMORIES = ["256Mi", "1Gi", "2Gi", "6Gi"]
STRATEGIES = ["cost", "latency", "pool-first", "eci-first"]


@st.composite
def shapes(draw: st.DrawFn) -> dict[str, Any]:
    """One pod shape (a Ray worker group): resources, maybe a GPU, selector, ECI traits."""
    requests: dict[str, Any] = {
        "cpu": draw(st.sampled_from(CPUS)),
        "memory": draw(st.sampled_from(MEMORIES)),
    }
    if draw(st.integers(0, 5)) == 0:
        requests["nvidia.com/gpu"] = draw(st.sampled_from(["1", "2"]))
    fields: dict[str, Any] = {"requests": requests}
    if draw(st.integers(0, 4)) == 0:
        fields["nodeSelector"] = {"tier": draw(st.sampled_from(["a", "b"]))}
    if draw(st.integers(0, 5)) == 0:
        fields["volumeTypes"] = ["hostPath"]
    if draw(st.integers(0, 5)) == 0:
        fields["annotations"] = {
            "ray-ack-scaler/placement": draw(st.sampled_from(["ecs", "eci", "auto"]))
        }
    return fields


@st.composite
def pools(draw: st.DrawFn, index: int) -> dict[str, Any]:
    cores = draw(st.sampled_from([2, 4, 8, 16]))
    max_size = draw(st.integers(0, 12))
    desired = draw(st.integers(0, max_size))
    ready = draw(st.integers(0, desired))
    body = pool(
        f"np-{index}",
        cpu=f"{cores * 1000 - 100}m",
        memory=f"{cores * 4 - 2}Gi",
        desired=desired,
        ready=ready,
        max_size=max_size,
        price=draw(st.sampled_from([0.2, 0.5, 0.9, 2.0])),
        boot=draw(st.sampled_from([20, 60, 90, 150])),
        priority=draw(st.integers(0, 2)),
        labels={"tier": draw(st.sampled_from(["a", "b"]))},
    )
    if draw(st.integers(0, 4)) == 0:
        body["allocatable"]["nvidia.com/gpu"] = "4"
    return body


@st.composite
def requests(draw: st.DrawFn, *, budget: int | None = None) -> dict[str, Any]:
    """A request with 1-4 groups of pods, 0-4 pools, ECI on or off, any strategy."""
    groups = draw(st.lists(shapes(), min_size=1, max_size=4))
    sizes = draw(st.lists(st.integers(1, 25), min_size=len(groups), max_size=len(groups)))
    pods = [
        pod(f"u-{g}-{i}", **copy.deepcopy(fields))
        for g, (fields, size) in enumerate(zip(groups, sizes, strict=True))
        for i in range(size)
    ]
    order = draw(st.permutations(range(len(pods))))
    pool_list = [draw(pools(i)) for i in range(draw(st.integers(0, 4)))]
    eci_body = eci(
        enabled=draw(st.booleans()),
        max_pods=draw(st.integers(0, 60)),
        running=draw(st.integers(0, 20)),
    )
    return request(
        [pods[i] for i in order],
        pool_list,
        eci_config=eci_body,
        strategy=draw(st.sampled_from(STRATEGIES)),
        latencyBudgetSeconds=draw(st.sampled_from([10, 60, 120])),
        maxNewNodesPerDecision=budget if budget is not None else draw(st.integers(0, 30)),
    )


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@SETTINGS
@given(requests())
def test_every_pod_appears_exactly_once(body: dict[str, Any]) -> None:
    """Each pod is in one action, covered, or unplaceable — once."""
    reply = decide(body)
    listed = [uid for a in reply["actions"] for uid in a["pods"]]
    listed += [c["pod"] for c in reply["covered"]] + [u["pod"] for u in reply["unplaceable"]]
    assert sorted(listed) == sorted(p["uid"] for p in body["pods"])
    summary = reply["summary"]
    assert summary["coveredPods"] == len(reply["covered"])
    assert summary["unplaceablePods"] == len(reply["unplaceable"])


@SETTINGS
@given(requests())
def test_scale_actions_stay_within_pool_limits(body: dict[str, Any]) -> None:
    """toDesired is above fromDesired and never above max; one action per pool; budget held."""
    reply = decide(body)
    by_id = {p["id"]: p for p in body["pools"]}
    scaled = [a for a in reply["actions"] if a["kind"] == "scale-pool"]
    assert len({a["poolId"] for a in scaled}) == len(scaled)
    for action in scaled:
        size = by_id[action["poolId"]]["size"]
        assert action["fromDesired"] == size["desired"]
        assert size["desired"] < action["toDesired"] <= size["max"]
        assert action["pods"], "a node is never added without a pod for it"
    new_nodes = sum(a["toDesired"] - a["fromDesired"] for a in scaled)
    assert new_nodes == reply["summary"]["newNodes"]
    assert new_nodes <= body["policy"]["maxNewNodesPerDecision"]


@SETTINGS
@given(requests())
def test_decision_is_deterministic_and_its_id_ignores_now(body: dict[str, Any]) -> None:
    """Same request, same bytes; a later `now` (no pool timing out) keeps the decisionId."""
    first = _canonical(decide(body))
    assert _canonical(decide(copy.deepcopy(body))) == first
    later = {**body, "now": "2026-11-29T05:03:00Z"}
    assert _canonical(decide(later)) == first
    changed = {**body, "pods": body["pods"][1:]}
    assert decide(changed)["decisionId"] != json.loads(first)["decisionId"]


@SETTINGS
@given(requests(budget=1000))
def test_feeding_back_the_reply_asks_for_nothing_new(body: dict[str, Any]) -> None:
    """With pools at toDesired and ECI pods running, every pool pod is covered and no action follows."""
    reply = decide(body)
    again = decide(feed_back(body, reply))
    assert again["actions"] == []
    before = placements(reply)
    after = placements(again)
    for uid, target in after.items():
        if before[uid].startswith(("new:", "covered:")):
            assert target == "covered:" + before[uid].split(":", 1)[1]
        else:
            assert target == before[uid] == "unplaceable"


@SETTINGS
@given(
    shape=shapes(),
    pool_body=pools(0),
    count=st.integers(1, 60),
    more=st.integers(1, 40),
    strategy=st.sampled_from(STRATEGIES),
    with_eci=st.booleans(),
)
def test_more_identical_pods_never_need_fewer_nodes(
    shape: dict[str, Any],
    pool_body: dict[str, Any],
    count: int,
    more: int,
    strategy: str,
    with_eci: bool,
) -> None:
    """Adding pods of the same group to a request never lowers the nodes it asks for."""
    pool_body["size"]["max"] = 1000

    def new_nodes(n: int) -> int:
        pods = [pod(f"u-{i}", **copy.deepcopy(shape)) for i in range(n)]
        body = request(
            pods,
            [copy.deepcopy(pool_body)],
            strategy=strategy,
            eci_config=eci(enabled=with_eci, max_pods=10**6),
            maxNewNodesPerDecision=1000,
        )
        return int(decide(body)["summary"]["newNodes"])

    assert new_nodes(count + more) >= new_nodes(count)


def test_identical_pods_use_the_optimal_node_count() -> None:
    """n identical pods on one pool take ceil(n / pods-per-node) nodes."""
    for n in (1, 2, 3, 4, 29, 30, 31):
        body = request(
            [pod(f"u-{i}") for i in range(n)], [pool("np", max_size=100)], strategy="pool-first"
        )
        assert decide(body)["summary"]["newNodes"] == -(-n // 3)
