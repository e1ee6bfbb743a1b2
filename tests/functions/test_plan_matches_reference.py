"""The planner reproduces the reference planner (tests/functions/reference_plan.py, the planner
before its shapes × pools speed-up) plan for plan: the speed-up changes how a plan is computed,
never which plan it is.

Requests are drawn to reach what the fast paths skip or reuse: many shapes over few pools (so
passes of the fixed point add nodes to pools other shapes already share), pools near `size.max`,
a tight `maxNewNodesPerDecision`, upcoming nodes, ECI with few slots, every strategy.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.scaleout.feasibility import Feasibility, Fits, feasibility
from functions.scaleout.plan import Plan, make_plan
from functions.scaleout.validate import parse_request
from tests.functions import reference_plan
from tests.support.decide_requests import eci, pod, pool, request

STRATEGIES = ["cost", "latency", "pool-first", "eci-first"]
CPUS = ["250m", "500m", "750m", "1", "1500m", "2", "3", "5", "7"]
MEMORIES = ["256Mi", "1Gi", "2Gi", "3Gi", "6Gi", "12Gi"]


def _fields(plan: Plan) -> dict[str, Any]:
    return {name: getattr(plan, name) for name in Plan.__slots__}


def _same_plan(body: dict[str, Any]) -> None:
    parsed = parse_request(body)
    expected = reference_plan.make_plan(parsed)
    actual = make_plan(parse_request(body))
    assert _fields(actual) == _fields(expected)
    # The comparison is not vacuous: every pod is somewhere in the plan.
    placed = sum(len(run) for _, _, run in actual.pool_pods)
    placed += len(actual.eci_pods) + sum(len(run) for _, run in actual.unplaceable)
    assert placed == len(body["pods"])


@st.composite
def shape(draw: st.DrawFn) -> dict[str, Any]:
    requests: dict[str, Any] = {
        "cpu": draw(st.sampled_from(CPUS)),
        "memory": draw(st.sampled_from(MEMORIES)),
    }
    if draw(st.integers(0, 6)) == 0:
        requests["nvidia.com/gpu"] = draw(st.sampled_from(["1", "2"]))
    fields: dict[str, Any] = {"requests": requests}
    if draw(st.integers(0, 3)) == 0:
        fields["nodeSelector"] = {"tier": draw(st.sampled_from(["a", "b"]))}
    if draw(st.integers(0, 8)) == 0:
        fields["volumeTypes"] = ["hostPath"]
    if draw(st.integers(0, 6)) == 0:
        fields["annotations"] = {
            "ray-ack-scaler/placement": draw(st.sampled_from(["ecs", "eci", "auto"]))
        }
    return fields


@st.composite
def node_pool(draw: st.DrawFn, index: int) -> dict[str, Any]:
    cores = draw(st.sampled_from([2, 4, 8, 16]))
    ratio = draw(st.sampled_from([2, 4, 8]))
    max_size = draw(st.integers(0, 40))
    desired = draw(st.integers(0, min(max_size, 6)))
    body = pool(
        f"np-{index}",
        cpu=f"{cores * 1000 - 100}m",
        memory=f"{cores * ratio - 2}Gi",
        desired=desired,
        ready=draw(st.integers(0, desired)),
        max_size=max_size,
        price=draw(st.sampled_from([0.2, 0.5, 0.9, 1.4, 2.0])),
        boot=draw(st.sampled_from([20, 60, 90, 150])),
        priority=draw(st.integers(0, 1)),
        labels={"tier": draw(st.sampled_from(["a", "b"]))},
    )
    if draw(st.integers(0, 4)) == 0:
        body["allocatable"]["nvidia.com/gpu"] = "4"
    return body


@st.composite
def many_shapes(draw: st.DrawFn) -> dict[str, Any]:
    """1-30 shapes of 1-20 pods over 0-5 pools."""
    groups = draw(st.lists(shape(), min_size=1, max_size=30))
    pods = [
        pod(f"u-{g}-{i}", **fields)
        for g, fields in enumerate(groups)
        for i in range(draw(st.integers(1, 20)))
    ]
    pools = [draw(node_pool(i)) for i in range(draw(st.integers(0, 5)))]
    with_eci = draw(st.integers(0, 2)) == 0
    return request(
        pods,
        pools,
        eci_config=eci(
            enabled=with_eci, max_pods=draw(st.integers(0, 80)), running=draw(st.integers(0, 20))
        ),
        strategy=draw(st.sampled_from(STRATEGIES)),
        latencyBudgetSeconds=draw(st.sampled_from([10, 60, 120])),
        maxNewNodesPerDecision=draw(st.sampled_from([0, 3, 10, 40, 1000])),
    )


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(many_shapes())
def test_plan_matches_the_reference_planner(body: dict[str, Any]) -> None:
    _same_plan(body)


def _feasibility_fields(fit: Feasibility) -> tuple[object, ...]:
    pools = [(f.pool.id, f.per_node, f.waste, f.share) for f in fit.pools]
    billed = None if fit.eci is None else (fit.eci.cpu, fit.eci.memory, fit.eci.instance_type)
    return dict(fit.requests), pools, billed, fit.no_fit_reason


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(many_shapes())
def test_fits_of_a_shape_is_its_feasibility(body: dict[str, Any]) -> None:
    """`Fits.of` (what shapes share computed once) gives each shape its `feasibility`."""
    parsed = parse_request(body)
    fits = Fits(parsed.pools, parsed.eci)
    for group in parsed.groups:
        expected = feasibility(group.shape, pools=parsed.pools, eci=parsed.eci)
        assert _feasibility_fields(fits.of(group.shape)) == _feasibility_fields(expected)


def test_plan_matches_the_reference_on_a_large_mixed_request() -> None:
    """300 shapes over 12 pools of 4 kinds, some with nodes on the way: several passes of the
    fixed point, each adding nodes to pools shared by many shapes."""
    pools = [
        pool(
            f"np-{i}",
            cpu=["7800m", "15800m", "15800m", "31800m"][i % 4],
            memory=["28Gi", "58Gi", "28Gi", "120Gi"][i % 4],
            price=[1.8, 3.6, 2.9, 7.2][i % 4] + i / 100,
            desired=i % 3,
            ready=max(0, i % 3 - 1),
            max_size=5000,
            labels={"tier": "a" if i % 2 else "b"},
        )
        for i in range(12)
    ]
    pods = []
    for g in range(300):
        cpu = 250 * (g % 32 + 1)
        memory = cpu * (16 + (g * 7) % 64) * 1024 // 16_000
        fields: dict[str, Any] = {"requests": {"cpu": f"{cpu}m", "memory": f"{memory}Mi"}}
        if g % 3 == 1:
            fields["nodeSelector"] = {"tier": "a"}
        pods += [pod(f"u-{g}-{i}", **fields) for i in range(1 + g % 7)]
    _same_plan(request(pods, pools, maxNewNodesPerDecision=100_000))


def test_plan_matches_the_reference_when_only_added_nodes_decide_the_room() -> None:
    """eci-first: a pass takes ECI before the room on nodes it added, but only while such a node
    has room. Whether one does is, here, whether nodes added in an earlier pass are left: the
    next pass must not resume past the group that asked (found by hypothesis)."""
    hostpath = {"volumeTypes": ["hostPath"]}
    pods = [
        pod("u-0", cpu="250m", memory="256Mi", **hostpath),
        pod("u-1", cpu="250m", memory="2Gi", **hostpath),
        pod(
            "u-2",
            requests={"cpu": "250m", "memory": "256Mi", "nvidia.com/gpu": "1"},
            **hostpath,
        ),
        pod("u-3", cpu="500m", memory="256Mi"),
    ]
    pools = []
    for index, desired in enumerate((0, 1)):
        body = pool(f"np-{index}", cpu="1900m", memory="2Gi", desired=desired, max_size=1)
        body["allocatable"]["nvidia.com/gpu"] = "4"
        pools.append(body)
    _same_plan(
        request(
            pods,
            pools,
            eci_config=eci(max_pods=1),
            strategy="eci-first",
            maxNewNodesPerDecision=1,
        )
    )
