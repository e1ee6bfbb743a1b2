"""The embedded ECI bills what ECI bills: the spec a pod rounds up to (or pins with
k8s.aliyun.com/eci-use-specs, or its limits size), from the image pull until the pod ends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from agent.sim.report import cost_report
from agent.sim.world.eci import EciSpec, EciVirtualNode
from tests.support.builders import build_test_pod

USE_SPECS = "k8s.aliyun.com/eci-use-specs"
VCPU_PRICE, GIB_PRICE = 0.000049, 0.00000613
ECI_TOLERATION = {
    "key": "virtual-kubelet.io/provider",
    "operator": "Equal",
    "value": "alibabacloud",
    "effect": "NoSchedule",
}


@asynccontextmanager
async def virtual_node(sim: Any, **fields: Any) -> AsyncIterator[EciVirtualNode]:
    """cn-hangzhou's virtual node, 30 s start latency; `fields` override the EciSpec."""
    spec = EciSpec(zone="cn-hangzhou-k", start_seconds=30, **fields)
    node = EciVirtualNode(sim.store, sim.clock, spec=spec, region="cn-hangzhou")
    await node.start()
    try:
        yield node
    finally:
        await node.stop()


def eci_pod(
    name: str,
    *,
    cpu: str | None = "1",
    memory: str | None = "1Gi",
    run_seconds: float | None = None,
    annotations: dict[str, str] | None = None,
    resources: dict[str, Any] | None = None,
) -> dict[str, Any]:
    notes = dict(annotations or {})
    if run_seconds is not None:
        notes["sim.ray-ack-scaler.io/run-seconds"] = str(run_seconds)
    body = build_test_pod(
        name,
        namespace="default",
        annotations=notes,
        container="worker",
        image="rayproject/ray:2.9.3",
        cpu=cpu,
        memory=memory,
        nodeSelector={"type": "virtual-kubelet"},
        tolerations=[ECI_TOLERATION],
    )
    if resources is not None:
        body["spec"]["containers"][0]["resources"] = resources
    return body


def phase(sim: Any, name: str) -> str:
    return str(sim.store.get("pods", name, namespace="default")["status"].get("phase", ""))


def done(sim: Any, name: str) -> Callable[[], bool]:
    return lambda: phase(sim, name) == "Succeeded"


async def test_a_1_vcpu_1_gib_pod_is_billed_as_1_vcpu_2_gib_from_its_image_pull(sim: Any) -> None:
    """The issue's example, by hand: requests 1 vCPU / 1 GiB -> ECI spec 1 vCPU / 2 GiB;
    30 s of start (all of it image pull, pre_pull_seconds 0) + 60 s running = 90 s billed:
    90 vCPU·s × 0.000049 + 180 GiB·s × 0.00000613 = 0.00441 + 0.0011034 = 0.0055134 CNY."""
    async with virtual_node(sim) as eci:
        sim.store.create("pods", eci_pod("w", run_seconds=60))
        await sim.until(done(sim, "w"), timeout=10)
        bill = eci.billing()
    (usage,) = bill.pods
    assert (usage.vcpu, usage.gib, usage.spec) == (1, 2, "1-2Gi")
    assert usage.seconds == pytest.approx(90, abs=1)
    assert bill.vcpu_seconds == pytest.approx(90, abs=1)
    assert bill.gib_seconds == pytest.approx(180, abs=2)
    assert bill.cost == pytest.approx(0.0055134, abs=1e-4)
    # The cost report (what `agent dev` prints and sums) carries the same bill.
    report = cost_report([], bill)
    assert report.eci is not None and report.eci.cost == pytest.approx(bill.cost)
    assert report.total_cost == pytest.approx(bill.cost)


async def test_pre_pull_seconds_leave_instance_allocation_unbilled(sim: Any) -> None:
    """With 10 s of the 30 s start before the image pull: 20 s of pull + 60 s running billed."""
    async with virtual_node(sim, pre_pull_seconds=10) as eci:
        sim.store.create("pods", eci_pod("w", cpu="2", memory="4Gi", run_seconds=60))
        await sim.until(done(sim, "w"), timeout=10)
        (usage,) = eci.billing().pods
    assert usage.seconds == pytest.approx(80, abs=1)


@pytest.mark.parametrize(
    ("fields", "spec", "vcpu", "gib"),
    [
        # Pinned: ECI runs the pod as the first pinned spec that holds it.
        ({"annotations": {USE_SPECS: "0.5-1Gi,4-8Gi"}}, "4-8Gi", 4, 8),
        # Limits above requests: ECI sizes by the limits (3 vCPU / 5 GiB -> 4 vCPU / 6 GiB).
        (
            {
                "resources": {
                    "requests": {"cpu": "1", "memory": "1Gi"},
                    "limits": {"cpu": "3", "memory": "5Gi"},
                }
            },
            "4-6Gi",
            4,
            6,
        ),
        # Nothing requested at all: ECI's default 2 vCPU / 4 GiB.
        ({"cpu": None, "memory": None}, "2-4Gi", 2, 4),
        # An ECS type: billed by the type in reality; here at the rounded size, labelled so.
        ({"annotations": {USE_SPECS: "ecs.c6.large"}}, "ecs.c6.large as 1-2Gi", 1, 2),
    ],
)
async def test_the_billed_spec_follows_ecis_sizing_rules(
    sim: Any, fields: dict[str, Any], spec: str, vcpu: float, gib: float
) -> None:
    """eci-use-specs, then limits (else requests), then the 2 vCPU / 4 GiB default."""
    async with virtual_node(sim) as eci:
        sim.store.create("pods", eci_pod("w", run_seconds=10, **fields))
        await sim.until(done(sim, "w"), timeout=10)
        (usage,) = eci.billing().pods
    assert (usage.spec, usage.vcpu, usage.gib) == (spec, vcpu, gib)


@pytest.mark.parametrize(
    ("fields", "eci_fields", "reason"),
    [
        # 40 vCPU asks for less than the 50 allowed, but runs as 52 vCPU / 96 GiB.
        ({"cpu": "40"}, {"max_pod_cpu": "50"}, "at most 50 vCPU on ECI (it runs as 52-96Gi)"),
        (
            {"cpu": "4", "memory": "8Gi", "annotations": {USE_SPECS: "2-4Gi"}},
            {},
            "exceed every spec in k8s.aliyun.com/eci-use-specs=2-4Gi",
        ),
    ],
)
async def test_pods_no_spec_can_hold_fail_unbilled(
    sim: Any, fields: dict[str, Any], eci_fields: dict[str, Any], reason: str
) -> None:
    """ProviderFailed when the billed spec breaks a ceiling or no pinned spec holds the pod."""
    async with virtual_node(sim, **eci_fields) as eci:
        sim.store.create("pods", eci_pod("bad", **fields))
        await sim.until(lambda: phase(sim, "bad") == "Failed")
        status = sim.store.get("pods", "bad", namespace="default")["status"]
        assert status["reason"] == "ProviderFailed"
        assert reason in status["message"]
        await sim.clock.sleep(35)
        assert eci.billing().pods == ()


async def test_a_pod_deleted_while_pulling_is_billed_for_the_pull(sim: Any) -> None:
    """Deleted 10 s into its 30 s start: 10 s of image pull billed, at 1 vCPU / 2 GiB."""
    async with virtual_node(sim) as eci:
        sim.store.create("pods", eci_pod("w"))
        await sim.until(
            lambda: bool(sim.store.get("pods", "w", namespace="default")["status"].get("startTime"))
        )
        await sim.clock.sleep(10)
        sim.store.delete("pods", "w", namespace="default")
        await sim.clock.sleep(2)
        (usage,) = eci.billing().pods
    assert usage.seconds == pytest.approx(10, abs=1.5)
    assert (usage.vcpu, usage.gib) == (1, 2)
