"""decide/v1 prices ECI pods as ECI bills them: each pod rounded up to a supported spec, or the
spec its k8s.aliyun.com/eci-use-specs annotation pins; the per-pod ceilings bind that spec."""

from __future__ import annotations

from typing import Any

import pytest

from functions import decide
from tests.support.decide_requests import eci, placements, pod, pool, request

USE_SPECS = "k8s.aliyun.com/eci-use-specs"


def _pods(prefix: str, count: int, *, cpu: str, memory: str, **fields: Any) -> list[dict[str, Any]]:
    return [pod(f"{prefix}-{i}", cpu=cpu, memory=memory, **fields) for i in range(count)]


def test_hand_worked_example_prices_the_billed_specs() -> None:
    """Three groups on ECI (cn-hangzhou, 0.000049 CNY/vCPU·s, 0.00000613 CNY/GiB·s):

    group    requests          billed spec (why)                         CNY/s per pod
    4 × w    1500m / 3Gi   ->  2 vCPU / 4 GiB (next vCPU column is 2;   2 × 0.000049 + 4 × 0.00000613
                               its first memory ≥ 3 GiB is 4)           = 0.00012252
    1 × m    250m / 5Gi    ->  1 vCPU / 8 GiB (0.25 and 0.5 vCPU offer  1 × 0.000049 + 8 × 0.00000613
                               at most 1 and 2 GiB: memory-bound)       = 0.00009804
    1 × p    3 / 2Gi,      ->  4 vCPU / 8 GiB (2-4Gi holds too few      4 × 0.000049 + 8 × 0.00000613
             pins 2-4Gi,4-8Gi  vCPUs; the next pin 4-8Gi holds it)      = 0.00024504

    per hour (× 3600): w 0.441072 each, × 4 = 1.764288; m 0.352944; p 0.882144
    estimatedCostPerHour = 1.764288 + 0.352944 + 0.882144 = 2.999376
    (priced on the raw requests it would be 4 × 0.330804 + 0.15444 + 0.573336 = 2.050992)
    """
    pods = [
        *_pods("w", 4, cpu="1500m", memory="3Gi"),
        pod("m-0", cpu="250m", memory="5Gi"),
        pod("p-0", cpu="3", memory="2Gi", annotations={USE_SPECS: "2-4Gi,4-8Gi"}),
    ]
    reply = decide(request(pods, [], eci_config=eci(), strategy="eci-first"))
    assert reply["summary"]["eciPods"] == 6
    assert reply["summary"]["estimatedCostPerHour"] == pytest.approx(2.999376, abs=1e-6)


def test_rounding_can_turn_the_cost_choice() -> None:
    """A 1500m / 3Gi worker: ECI bills 2 vCPU / 4 GiB, 0.00012252 CNY/s × 600 s = 0.0735 per run.

    np-a (3900m / 14Gi, 0.8 CNY/h) holds 2 such pods per node: 0.8 × 600 / 3600 / 2 = 0.0667 per
    pod. On the raw requests ECI would cost 0.00009189 × 600 = 0.0551 and win; billed, it loses.
    """
    body = request(
        _pods("w", 4, cpu="1500m", memory="3Gi"), [pool("np-a", price=0.8)], eci_config=eci()
    )
    reply = decide(body)
    assert set(placements(reply).values()) == {"new:np-a"}
    assert reply["actions"][0]["reason"] == (
        "cost: np-a 0.067/pod·run vs ECI 0.074 — np-a cheaper within the 120 s latency budget"
    )


def test_pods_pinning_other_specs_form_their_own_group() -> None:
    """Same requests, one pinned to 4-8Gi: priced apart, so the pin costs what it bills."""
    plain = pod("u-plain")
    pinned = pod("u-pinned", annotations={USE_SPECS: "4-8Gi"})
    reply = decide(request([plain, pinned], [], eci_config=eci(), strategy="eci-first"))
    # 1 vCPU / 2 GiB + 4 vCPU / 8 GiB = (0.00006126 + 0.00024504) CNY/s × 3600 = 1.10268 CNY/h
    assert reply["summary"]["estimatedCostPerHour"] == pytest.approx(1.10268, abs=1e-6)
    alone = decide(request([plain], [], eci_config=eci(), strategy="eci-first"))
    assert alone["decisionId"] != reply["decisionId"]


@pytest.mark.parametrize(
    ("fields", "eci_fields", "eci_reason"),
    [
        # The ceilings bind the spec ECI runs the pod as: 40 vCPU rounds up to 52 vCPU / 96 GiB.
        (
            {"requests": {"cpu": "40", "memory": "1Gi"}},
            {"maxPodCpu": "50"},
            "cpu 40 rounds up to ECI spec 52-96Gi, over maxPodCpu 50",
        ),
        # 17 GiB is past 2 vCPU's 16: 4 vCPU, whose next memory in Hangzhou is 18 GiB.
        (
            {"requests": {"cpu": "2", "memory": "17Gi"}},
            {"maxPodMemory": "17Gi"},
            "memory 17Gi rounds up to ECI spec 4-18Gi, over maxPodMemory 17Gi",
        ),
        (
            {"annotations": {USE_SPECS: "8-16Gi"}},
            {"maxPodCpu": "4"},
            "cpu 1 runs as k8s.aliyun.com/eci-use-specs spec 8-16Gi, over maxPodCpu 4",
        ),
        # Requests beyond every pinned spec: ECI cannot take the pod.
        (
            {"requests": {"cpu": "4", "memory": "8Gi"}, "annotations": {USE_SPECS: "2-4Gi"}},
            {},
            "cpu 4 / memory 8Gi exceed every spec in k8s.aliyun.com/eci-use-specs=2-4Gi",
        ),
        (
            {"annotations": {USE_SPECS: "two-four"}},
            {},
            "k8s.aliyun.com/eci-use-specs entry 'two-four' is neither <vCPU>-<memory>Gi nor an "
            "ECS instance type",
        ),
        # A GPU pod stays off ECI even when it pins a GPU instance type (GPUs are chosen at
        # pod creation; the decision cannot price them).
        (
            {
                "requests": {"cpu": "4", "nvidia.com/gpu": "1"},
                "annotations": {USE_SPECS: "ecs.gn6i-c4g1.xlarge"},
            },
            {},
            "unsupported resource nvidia.com/gpu",
        ),
    ],
)
def test_eci_refusals_name_the_spec(
    fields: dict[str, Any], eci_fields: dict[str, Any], eci_reason: str
) -> None:
    """A pod ECI would not run as its billed spec is unplaceable there, with the spec named."""
    tiny = pool("np-tiny", cpu="100m", memory="128Mi")
    reply = decide(
        request([pod("u-1", **fields)], [tiny], eci_config=eci(**eci_fields), strategy="eci-first")
    )
    assert [item["pod"] for item in reply["unplaceable"]] == ["u-1"]
    assert reply["unplaceable"][0]["reason"].endswith(f"ECI: {eci_reason}")


def test_a_pinned_instance_type_is_priced_as_an_estimate_and_says_so() -> None:
    """ECI bills an ECS type by the type; its price is not in the request, so the decision
    prices the pod's rounded size (1 vCPU / 2 GiB: 0.00006126 × 600 s = 0.037) and says so."""
    workers = [pod(f"u-{i}", annotations={USE_SPECS: "ecs.c6.large"}) for i in range(3)]
    reply = decide(request(workers, [pool("np-a")], eci_config=eci()))
    assert reply["actions"][0]["kind"] == "place-on-eci"
    assert reply["actions"][0]["reason"] == (
        "cost: ECI 0.037/pod·run (an estimate: ECI bills ecs.c6.large by instance type, priced "
        "here as 1-2Gi) vs np-a 0.050 — ECI cheaper within the 120 s latency budget"
    )
