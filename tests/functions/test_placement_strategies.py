"""Where pods go: strategies, the placement annotation, priority, waste, overflow and limits."""

from __future__ import annotations

from typing import Any

import pytest

from functions import decide
from tests.support.decide_requests import eci, placements, pod, pool, request

PLACEMENT = "ray-ack-scaler/placement"


def _workers(count: int = 15, **fields: Any) -> list[dict[str, Any]]:
    return [pod(f"u-{i:02d}", **fields) for i in range(count)]


def _summary_of(reply: dict[str, Any]) -> dict[str, int]:
    where = placements(reply)
    counts: dict[str, int] = {}
    for target in where.values():
        counts[target] = counts.get(target, 0) + 1
    return counts


@pytest.mark.parametrize(
    ("strategy", "pool_fields", "eci_fields", "policy", "expected"),
    [
        # 15 pods of 1 vCPU: 3 fit a 3900m node, so the pool needs 5 nodes.
        ("pool-first", {}, {}, {}, {"new:np-a": 15}),
        ("eci-first", {}, {}, {}, {"eci": 15}),
        # ECS per pod: 0.9 CNY/h × 600 s / 3 pods = 0.05; ECI bills 1 vCPU / 1 GiB as the spec
        # 1 vCPU / 2 GiB: (0.000049 + 2 × 0.00000613) CNY/s × 600 s = 0.0368.
        ("cost", {}, {}, {}, {"eci": 15}),
        ("cost", {"price": 0.3}, {}, {}, {"new:np-a": 15}),
        # Only ECI starts within the budget; then nothing does and the fastest wins.
        ("cost", {"price": 0.3}, {}, {"latencyBudgetSeconds": 60}, {"eci": 15}),
        ("cost", {"price": 0.3}, {}, {"latencyBudgetSeconds": 10}, {"eci": 15}),
        ("cost", {"price": 0.3, "boot": 5}, {}, {"latencyBudgetSeconds": 10}, {"new:np-a": 15}),
        ("latency", {}, {}, {}, {"eci": 15}),
        ("latency", {"boot": 20}, {}, {}, {"new:np-a": 15}),
        # Overflow: the chosen option fills up, the rest goes to the next.
        ("eci-first", {}, {"max_pods": 10, "running": 4}, {}, {"eci": 6, "new:np-a": 9}),
        ("pool-first", {"max_size": 2}, {}, {}, {"new:np-a": 6, "eci": 9}),
        ("pool-first", {"max_size": 2}, {"enabled": False}, {}, {"new:np-a": 6, "unplaceable": 9}),
        ("pool-first", {}, {}, {"maxNewNodesPerDecision": 1}, {"new:np-a": 3, "eci": 12}),
    ],
)
def test_strategy_table(
    strategy: str,
    pool_fields: dict[str, Any],
    eci_fields: dict[str, Any],
    policy: dict[str, Any],
    expected: dict[str, int],
) -> None:
    """Each strategy picks as documented, overflowing to the next option when one is full."""
    body = request(
        _workers(),
        [pool("np-a", **pool_fields)],
        eci_config=eci(**eci_fields),
        strategy=strategy,
        **policy,
    )
    assert _summary_of(decide(body)) == expected


@pytest.mark.parametrize(
    ("annotation", "strategy", "expected"),
    [
        ("ecs", "eci-first", {"new:np-a": 15}),
        ("eci", "pool-first", {"eci": 15}),
        ("auto", "pool-first", {"new:np-a": 15}),
    ],
)
def test_placement_annotation_overrides_strategy(
    annotation: str, strategy: str, expected: dict[str, int]
) -> None:
    """ray-ack-scaler/placement=ecs|eci restricts the options; auto leaves the strategy."""
    pods = _workers(annotations={PLACEMENT: annotation})
    body = request(pods, [pool("np-a")], eci_config=eci(), strategy=strategy)
    assert _summary_of(decide(body)) == expected


def test_unknown_placement_annotation_is_reported_per_pod() -> None:
    """A typo in the annotation makes that pod unplaceable with a reason, not the request invalid."""
    pods = [*_workers(2), pod("u-x", annotations={PLACEMENT: "spot"})]
    reply = decide(request(pods, [pool("np-a")], eci_config=eci()))
    assert reply["unplaceable"] == [
        {
            "pod": "u-x",
            "reason": ("unknown ray-ack-scaler/placement value 'spot' (expected ecs, eci or auto)"),
        }
    ]


def test_priority_beats_waste_among_pools() -> None:
    """A higher pool priority wins over a pool that would waste less."""
    pools = [pool("np-snug", cpu="2", memory="2Gi"), pool("np-big", cpu="16", memory="64Gi")]
    body = request(_workers(2), pools, strategy="pool-first")
    assert _summary_of(decide(body)) == {"new:np-snug": 2}
    pools[1]["priority"] = 10
    assert _summary_of(decide(body)) == {"new:np-big": 2}


def test_cost_amortises_a_node_over_the_pods_that_share_it() -> None:
    """One pod takes the small node; fifteen fill the big one, which is cheaper per pod."""
    pools = [
        pool("np-small", cpu="1900m", memory="6Gi", price=0.3),
        pool("np-big", cpu="15900m", memory="60Gi", price=2.0),
    ]
    assert _summary_of(decide(request(_workers(1), pools))) == {"new:np-small": 1}
    assert _summary_of(decide(request(_workers(15), pools))) == {"new:np-big": 15}


def test_upcoming_nodes_are_filled_before_new_ones() -> None:
    """Nodes asked for but not ready cover pods first; only the rest needs new nodes."""
    body = request(_workers(), [pool("np-a", desired=3, ready=1)], strategy="pool-first")
    reply = decide(body)
    assert _summary_of(reply) == {"covered:np-a": 6, "new:np-a": 9}
    assert reply["actions"][0] | {"pods": None} == {
        "kind": "scale-pool",
        "poolId": "np-a",
        "fromDesired": 3,
        "toDesired": 6,
        "pods": None,
        "reason": "pool-first: np-a has room (3 pods/node)",
    }


@pytest.mark.parametrize("strategy", ["cost", "pool-first", "eci-first", "latency"])
def test_upcoming_capacity_wins_over_a_cheaper_new_option(strategy: str) -> None:
    """Nodes earlier decisions asked for (5 booting, room for 15) are paid for and on their
    way: they cover the pods under every strategy, even one that would send new pods to ECI."""
    body = request(_workers(), [pool("np-a", desired=5)], eci_config=eci(), strategy=strategy)
    assert _summary_of(decide(body)) == {"covered:np-a": 15}


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("cost", {"new:np-a": 3}),
        ("pool-first", {"new:np-a": 3}),
        ("eci-first", {"new:np-a": 1, "eci": 2}),
        ("latency", {"new:np-a": 1, "eci": 2}),
    ],
)
def test_room_on_nodes_this_decision_adds_by_strategy(
    strategy: str, expected: dict[str, int]
) -> None:
    """A pod ECI cannot run adds a node with room for two more. The two small pods ECI can run
    take that room under cost and pool-first (it is paid for); under eci-first and latency,
    which rank ECI first for them, they go to ECI (issue 16: eci-first means ECI first)."""
    pods = [
        pod("u-big", annotations={PLACEMENT: "ecs"}),
        pod("u-small-0", cpu="500m", memory="512Mi"),
        pod("u-small-1", cpu="500m", memory="512Mi"),
    ]
    body = request(pods, [pool("np-a")], eci_config=eci(), strategy=strategy)
    assert _summary_of(decide(body)) == expected


@pytest.mark.parametrize(
    ("pool_fields", "reason"),
    [
        (
            {"scalingSince": "2026-11-29T04:48:20Z"},
            "skipped (provisioning for 700s, over maxProvisionSeconds 600)",
        ),
        (
            {"lastError": "InvalidVSwitchId.IpNotEnough"},
            "skipped (last error: InvalidVSwitchId.IpNotEnough)",
        ),
    ],
)
def test_stuck_pools_are_skipped(pool_fields: dict[str, Any], reason: str) -> None:
    """A pool past maxProvisionSeconds or with lastError is skipped and its upcoming nodes ignored."""
    stuck = pool("np-stuck", desired=5, **pool_fields)
    reply = decide(request(_workers(3), [stuck], strategy="pool-first"))
    assert reply["actions"] == [] and reply["covered"] == []
    assert {item["reason"] for item in reply["unplaceable"]} == {
        f"no option fits: 1 pool {reason}, ECI: disabled"
    }
    healthy = decide(request(_workers(3), [stuck, pool("np-ok")], strategy="pool-first"))
    assert _summary_of(healthy) == {"new:np-ok": 3}


def test_a_pool_still_within_its_provisioning_window_covers_pods() -> None:
    """scalingSince younger than maxProvisionSeconds keeps the upcoming nodes."""
    young = pool("np-a", desired=5, scalingSince="2026-11-29T04:58:00Z")
    assert _summary_of(decide(request(_workers(), [young]))) == {"covered:np-a": 15}


def test_scheduler_style_reason_when_nothing_fits() -> None:
    """The reason counts pools per cause and names ECI's, as the scheduler does for nodes."""
    selector = {"workload": "ray"}
    pools = [pool("np-a", labels=selector), pool("np-b", labels=selector), pool("np-c")]
    gpu_pod = pod(
        "u-gpu",
        nodeSelector=selector,
        volumeTypes=["hostPath"],
        requests={"cpu": "1", "nvidia.com/gpu": "1"},
    )
    reply = decide(request([gpu_pod], pools, eci_config=eci()))
    assert reply["unplaceable"] == [
        {
            "pod": "u-gpu",
            "reason": (
                "no option fits: 2 pools Insufficient nvidia.com/gpu, "
                "1 pool didn't match node selector, ECI: hostPath volume"
            ),
        }
    ]


@pytest.mark.parametrize(
    ("fields", "eci_reason"),
    [
        ({"hostNetwork": True}, "hostNetwork"),
        ({"privileged": True}, "privileged"),
        ({"requests": {"cpu": "65"}}, "cpu 65 over maxPodCpu 64"),
        ({"requests": {"memory": "600Gi"}}, "memory 600Gi over maxPodMemory 512Gi"),
        ({"requests": {"cpu": "1", "nvidia.com/gpu": "1"}}, "unsupported resource nvidia.com/gpu"),
        ({"nodeSelector": {"type": "ecs"}}, "didn't match node selector"),
        ({"annotations": {PLACEMENT: "ecs"}}, "excluded by ray-ack-scaler/placement=ecs"),
    ],
)
def test_eci_eligibility(fields: dict[str, Any], eci_reason: str) -> None:
    """ECI refuses hostNetwork, hostPath, privileged, oversize and GPU pods, with the reason."""
    tiny = pool("np-tiny", cpu="100m", memory="128Mi")
    reply = decide(request([pod("u-1", **fields)], [tiny], eci_config=eci(), strategy="eci-first"))
    assert len(reply["unplaceable"]) == 1
    assert reply["unplaceable"][0]["reason"].endswith(f"ECI: {eci_reason}")


def test_eci_taint_is_tolerated_by_design_but_others_are_not() -> None:
    """The virtual-kubelet taint never blocks (the agent adds the toleration); extra taints do."""
    tainted = eci(
        taints=[
            {"key": "virtual-kubelet.io/provider", "value": "alibabacloud", "effect": "NoSchedule"},
            {"key": "team", "value": "ml", "effect": "NoSchedule"},
        ]
    )
    reply = decide(request([pod("u-1")], [], eci_config=tainted))
    assert reply["unplaceable"][0]["reason"] == (
        "no option fits: no node pools, ECI: had untolerated taint {team: ml}"
    )
    tolerant = pod("u-1", tolerations=[{"key": "team", "operator": "Equal", "value": "ml"}])
    assert _summary_of(decide(request([tolerant], [], eci_config=tainted))) == {"eci": 1}


def test_pool_taints_need_tolerations() -> None:
    """A tainted GPU pool takes only pods that tolerate its taint."""
    taint = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    gpu_pool = pool("np-gpu", taints=[taint])
    reply = decide(request([pod("u-1")], [gpu_pool]))
    assert reply["unplaceable"][0]["reason"] == (
        "no option fits: 1 pool had untolerated taint {nvidia.com/gpu: present}, ECI: disabled"
    )
    tolerant = pod("u-1", tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists"}])
    assert _summary_of(decide(request([tolerant], [gpu_pool]))) == {"new:np-gpu": 1}


def test_node_affinity_steers_pods_to_matching_pools() -> None:
    """Required node affinity picks the pool whose labels satisfy it."""
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {
                                "key": "node.kubernetes.io/instance-type",
                                "operator": "In",
                                "values": ["ecs.g7.2xlarge"],
                            }
                        ]
                    }
                ]
            }
        }
    }
    pools = [
        pool("np-a", labels={"node.kubernetes.io/instance-type": "ecs.g7.xlarge"}),
        pool("np-b", labels={"node.kubernetes.io/instance-type": "ecs.g7.2xlarge"}),
    ]
    reply = decide(request(_workers(2, affinity=affinity), pools, strategy="pool-first"))
    assert _summary_of(reply) == {"new:np-b": 2}


def test_groups_share_nodes_largest_first() -> None:
    """A 2-vCPU and a 1-vCPU pod share one 3900m node (first-fit decreasing over groups)."""
    pods = [pod("u-small", cpu="1"), pod("u-big", cpu="2")]
    reply = decide(request(pods, [pool("np-a")], strategy="pool-first"))
    assert reply["summary"]["newNodes"] == 1


def test_pool_max_caps_new_nodes_with_a_reason() -> None:
    """toDesired never exceeds size.max; the pods left over say why."""
    reply = decide(
        request(_workers(), [pool("np-a", desired=1, ready=1, max_size=3)], strategy="pool-first")
    )
    assert reply["actions"][0]["toDesired"] == 3
    assert reply["summary"]["unplaceablePods"] == 9
    assert reply["unplaceable"][0]["reason"] == "no capacity left: pool np-a at max size 3"


def test_summary_prices_new_nodes_and_eci_pods() -> None:
    """estimatedCostPerHour adds the new nodes' hourly price and ECI pods' hourly cost."""
    body = request(
        _workers(), [pool("np-a", max_size=2, price=0.9)], eci_config=eci(), strategy="pool-first"
    )
    summary = decide(body)["summary"]
    # Each 1 vCPU / 1 GiB pod is billed as the ECI spec it rounds up to, 1 vCPU / 2 GiB:
    # 9 pods × (1 × 0.000049 + 2 × 0.00000613) CNY/s × 3600 s = 9 × 0.220536 = 1.984824 CNY/h.
    eci_hour = 9 * (0.000049 + 2 * 0.00000613) * 3600
    assert summary["newNodes"] == 2 and summary["eciPods"] == 9
    assert summary["estimatedCostPerHour"] == pytest.approx(2 * 0.9 + eci_hour, abs=1e-5)
