"""Mixed-shape packing: shapes share the nodes a decision adds when that costs less, and one shape
alone is still packed optimally."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from functions import decide
from tests.support.decide_requests import feed_back, pod, pool, request

# A 16 vCPU pool, cheap per node for three 5-vCPU pods, and an 8 vCPU pool cheaper per vCPU.
BIG = {"cpu": "16", "memory": "64Gi", "price": 3.0}
SMALL = {"cpu": "8", "memory": "32Gi", "price": 1.4}


def _pools() -> list[dict[str, Any]]:
    return [pool("np-big", max_size=20, **BIG), pool("np-small", max_size=20, **SMALL)]


def _wide(n: int) -> list[dict[str, Any]]:
    return [pod(f"a-{i}", cpu="5", memory="5Gi") for i in range(n)]


def _narrow(n: int) -> list[dict[str, Any]]:
    return [pod(f"b-{i}", cpu="3", memory="3Gi") for i in range(n)]


def _cost(reply: dict[str, Any]) -> float:
    return float(reply["summary"]["estimatedCostPerHour"])


def test_two_shapes_share_new_nodes_and_cost_less_than_packing_each_alone() -> None:
    """Alone, three 5-vCPU pods fill one np-big node and three 3-vCPU pods two np-small nodes.
    Together, each 3-vCPU pod takes the room a 5-vCPU pod leaves on an np-small node."""
    alone = _cost(decide(request(_wide(3), _pools()))) + _cost(
        decide(request(_narrow(3), _pools()))
    )
    reply = decide(request(_wide(3) + _narrow(3), _pools()))
    scaled = {a["poolId"]: a for a in reply["actions"] if a["kind"] == "scale-pool"}
    assert set(scaled) == {"np-small"}
    assert scaled["np-small"]["toDesired"] == 3
    assert sorted(scaled["np-small"]["pods"]) == sorted(p["uid"] for p in _wide(3) + _narrow(3))
    assert _cost(reply) < alone
    # Fed back, the shared nodes hold the same pods and nothing more is asked for.
    again = decide(feed_back(request(_wide(3) + _narrow(3), _pools()), reply))
    assert again["actions"] == []


def test_one_pod_group_does_not_buy_a_big_node_for_its_share() -> None:
    """Pricing by share applies where other groups can use the room: one pod alone pays a node."""
    reply = decide(request([pod("a", cpu="3", memory="3Gi")], _pools()))
    scaled = [a["poolId"] for a in reply["actions"] if a["kind"] == "scale-pool"]
    assert scaled == ["np-small"]


@settings(max_examples=60, deadline=None)
@given(
    count=st.integers(1, 80),
    cpu=st.sampled_from(["500m", "1", "1500m", "3", "5"]),
    memory=st.sampled_from(["1Gi", "3Gi", "7Gi"]),
    prices=st.lists(st.sampled_from([0.5, 0.9, 1.4, 3.0]), min_size=3, max_size=3),
)
def test_one_shape_costs_the_cheapest_whole_node_count(
    count: int, cpu: str, memory: str, prices: list[float]
) -> None:
    """One shape over several pools: the cost is min over pools of price × ceil(n / per node)."""
    sizes = [(4, 16), (8, 32), (16, 32)]
    pools = [
        pool(f"np-{i}", cpu=str(c), memory=f"{m}Gi", price=price, max_size=100)
        for i, ((c, m), price) in enumerate(zip(sizes, prices, strict=True))
    ]
    cpu_milli = int(float(cpu.rstrip("m")) * (1 if cpu.endswith("m") else 1000))
    memory_gib = int(memory.removesuffix("Gi"))
    per_node = [min(c * 1000 // cpu_milli, m // memory_gib, 110) for c, m in sizes]
    best = min(price * -(-count // fit) for fit, price in zip(per_node, prices, strict=True) if fit)
    pods = [pod(f"u-{i}", cpu=cpu, memory=memory) for i in range(count)]
    reply = decide(request(pods, pools, maxNewNodesPerDecision=100))
    assert abs(_cost(reply) - best) < 1e-6
