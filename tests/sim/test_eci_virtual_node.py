"""The ECI virtual node: how it registers, which pods it takes, how fast they start, per-second billing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent.sim.world.clock import parse_iso
from agent.sim.world.eci import ECI_TAINT, EciSpec, EciVirtualNode
from tests.support.builders import build_test_pod

ECI_TOLERATION = {
    "key": "virtual-kubelet.io/provider",
    "operator": "Equal",
    "value": "alibabacloud",
    "effect": "NoSchedule",
}


@pytest.fixture
async def eci(sim: Any) -> AsyncIterator[EciVirtualNode]:
    """The virtual node of cn-hangzhou-k with a 30 s start latency, started over the sim core."""
    node = EciVirtualNode(
        sim.store,
        sim.clock,
        spec=EciSpec(zone="cn-hangzhou-k", start_seconds=30),
        region="cn-hangzhou",
    )
    await node.start()
    try:
        yield node
    finally:
        await node.stop()


def pod(name: str, *, tolerate: bool = True, run_seconds: float | None = None) -> dict[str, Any]:
    annotations = {}
    if run_seconds is not None:
        annotations["sim.ray-ack-scaler.io/run-seconds"] = str(run_seconds)
    spec: dict[str, Any] = {"nodeSelector": {"type": "virtual-kubelet"}}
    if tolerate:
        spec["tolerations"] = [ECI_TOLERATION]
    return build_test_pod(
        name,
        namespace="default",
        annotations=annotations,
        container="worker",
        image="rayproject/ray:2.9.3",
        cpu="2",
        memory="4Gi",
        limits=True,
        **spec,
    )


def phase(sim: Any, name: str) -> str:
    return sim.store.get("pods", name, namespace="default")["status"].get("phase", "")


async def test_virtual_node_registers_with_eci_label_taint_and_capacity(sim, eci):
    """Node virtual-kubelet-<zone>: type=virtual-kubelet, the ECI taint, huge capacity, Ready."""
    node = sim.store.get("nodes", "virtual-kubelet-cn-hangzhou-k")
    assert node["metadata"]["labels"]["type"] == "virtual-kubelet"
    assert "alibabacloud.com/nodepool-id" not in node["metadata"]["labels"]
    assert node["spec"]["taints"] == [ECI_TAINT]
    assert node["status"]["allocatable"] == {"cpu": "10000", "memory": "100Ti", "pods": "500"}
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])


async def test_pod_without_the_eci_toleration_stays_pending(sim, eci):
    """The taint keeps pods off ECI unless they tolerate it."""
    sim.store.create("pods", pod("plain", tolerate=False))
    await sim.until(
        lambda: any(
            c.get("reason") == "Unschedulable"
            for c in sim.store.get("pods", "plain", namespace="default")["status"].get(
                "conditions", []
            )
        )
    )
    assert not sim.store.get("pods", "plain", namespace="default")["spec"].get("nodeName")


async def test_tolerating_pod_starts_after_the_eci_start_latency(sim, eci):
    """A pod bound to the virtual node is Running ~30 s (simulated) after it was bound."""
    sim.store.create("pods", pod("w1"))
    await sim.until(lambda: phase(sim, "w1") == "Running")
    obj = sim.store.get("pods", "w1", namespace="default")
    assert obj["spec"]["nodeName"] == "virtual-kubelet-cn-hangzhou-k"
    started = parse_iso(obj["status"]["containerStatuses"][0]["state"]["running"]["startedAt"])
    bound = parse_iso(obj["status"]["startTime"])
    assert 29 <= started - bound <= 31


async def test_billing_accumulates_vcpu_and_gib_seconds_while_running(sim, eci):
    """A 2 vCPU / 4 GiB pod (exactly an ECI spec) billed from its image pull: 30 s of start,
    then 100 s running, 130 s in all: 2 × 130 = 260 vCPU·s, 4 × 130 = 520 GiB·s (±1 s)."""
    sim.store.create("pods", pod("job", run_seconds=100))
    await sim.until(lambda: phase(sim, "job") == "Running")
    assert eci.running_pods() == 1
    await sim.until(lambda: phase(sim, "job") == "Succeeded", timeout=10)
    bill = eci.billing()
    # Was 200 / 400 when the meter started at Running; ECI bills from the image pull, which the
    # simulator takes to begin at ContainerCreating (pre_pull_seconds 0), 30 s before Running.
    assert bill.vcpu_seconds == pytest.approx(260, abs=2)
    assert bill.gib_seconds == pytest.approx(520, abs=4)
    assert bill.cost == pytest.approx(bill.vcpu_seconds * 0.000049 + bill.gib_seconds * 0.00000613)
    (usage,) = bill.pods
    assert (usage.name, usage.vcpu, usage.gib) == ("job", 2, 4)
    assert eci.running_pods() == 0


async def test_running_pod_is_billed_up_to_now(sim, eci):
    """Billing of a pod still running grows with simulated time, second by second."""
    sim.store.create("pods", pod("long"))
    await sim.until(lambda: phase(sim, "long") == "Running")
    first = eci.billing().vcpu_seconds
    await sim.clock.sleep(20)
    second = eci.billing().vcpu_seconds
    assert second - first >= 2 * 19


async def test_deleted_pod_stops_the_meter(sim, eci):
    """Once the pod is gone its billed seconds no longer grow."""
    sim.store.create("pods", pod("gone"))
    await sim.until(lambda: phase(sim, "gone") == "Running")
    sim.store.delete("pods", "gone", namespace="default")
    await sim.clock.sleep(2)
    stopped = eci.billing().vcpu_seconds
    await sim.clock.sleep(20)
    assert eci.billing().vcpu_seconds == stopped


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            lambda p: p["spec"].update(volumes=[{"name": "h", "hostPath": {"path": "/data"}}]),
            "hostPath",
        ),
        (
            lambda p: p["spec"]["containers"][0].update(securityContext={"privileged": True}),
            "privileged",
        ),
        (lambda p: p["spec"].update(hostNetwork=True), "hostNetwork"),
        (
            lambda p: p["spec"]["containers"][0]["resources"].update(
                requests={"cpu": "72", "memory": "4Gi"}, limits={"cpu": "72", "memory": "4Gi"}
            ),
            "at most 64 vCPU",
        ),
    ],
)
async def test_pods_eci_cannot_run_fail_with_provider_failed(sim, eci, change, reason):
    """hostPath, privileged, hostNetwork or >64 vCPU on the virtual node: Failed/ProviderFailed, unbilled."""
    bad = pod("bad")
    change(bad)
    sim.store.create("pods", bad)
    await sim.until(lambda: phase(sim, "bad") == "Failed")
    status = sim.store.get("pods", "bad", namespace="default")["status"]
    assert status["reason"] == "ProviderFailed"
    assert reason in status["message"]
    await sim.clock.sleep(35)  # past the start latency: it never runs
    assert phase(sim, "bad") == "Failed"
    assert eci.billing().pods == ()
