"""The scheduler over the store: what it writes, and which changes make it look again."""

from __future__ import annotations

import asyncio
from typing import Any

from agent.sim.world.kubelet import RUN_SECONDS_ANNOTATION
from agent.sim.world.nodes import READY_AT_ANNOTATION, ready_node
from tests.support.builders import build_test_pod

ECI_TAINT = {"key": "virtual-kubelet.io/provider", "value": "alibabacloud", "effect": "NoSchedule"}


def pod(name: str, *, cpu: str = "1", annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return build_test_pod(
        name, namespace="default", annotations=annotations or {}, container="c", cpu=cpu
    )


def scheduled(sim, name: str) -> dict[str, Any] | None:
    for condition in sim.store.get("pods", name)["status"].get("conditions") or []:
        if condition["type"] == "PodScheduled":
            return condition
    return None


async def test_unschedulable_condition_is_written_once_and_kept(sim):
    """Same message → no write at all; new message → MODIFIED with the first lastTransitionTime."""
    sim.store.create("nodes", ready_node("small", cpu="1"))
    sim.store.create("pods", pod("filler", cpu="500m"))
    await sim.until(lambda: sim.store.get("pods", "filler")["spec"].get("nodeName") == "small")
    sim.store.create("pods", pod("big", cpu="2"))
    await sim.until(lambda: (scheduled(sim, "big") or {}).get("reason") == "Unschedulable")
    first = scheduled(sim, "big")
    assert first["status"] == "False"
    assert first["message"].startswith("0/1 nodes are available: 1 Insufficient cpu.")
    await sim.clock.sleep(5)

    # room freed on a node makes the scheduler look again (NodeResourcesFit's hint for an
    # assigned pod deleted); the answer is the same, so nothing is written
    subscription = sim.store.subscribe()
    sim.store.delete("pods", "filler", namespace="default")
    await asyncio.wait_for(sim.scheduler.next_pass(), 5)
    big_events = [
        e
        for e in subscription.drain()
        if e.resource == "pods" and e.object["metadata"]["name"] == "big"
    ]
    subscription.close()
    assert big_events == []

    # a second (tainted) node changes the message: one MODIFIED, lastTransitionTime unchanged
    sim.store.create("nodes", ready_node("vk", cpu="100", taints=[ECI_TAINT]))
    await sim.until(lambda: scheduled(sim, "big")["message"].startswith("0/2"))
    second = scheduled(sim, "big")
    assert second["lastTransitionTime"] == first["lastTransitionTime"]
    assert second["message"] == (
        "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint "
        "{virtual-kubelet.io/provider: alibabacloud}. preemption: 0/2 nodes are available: "
        "1 No preemption victims found for incoming pod, 1 Preemption is not helpful for "
        "scheduling."
    )


async def test_pod_binds_after_its_node_turns_ready(sim):
    """Pending on the not-ready taint while the node boots, bound once it is Ready."""
    ready_at = sim.clock.now() + 30
    sim.store.create("nodes", ready_node("n1", annotations={READY_AT_ANNOTATION: f"{ready_at}"}))
    sim.store.create("pods", pod("w"))
    await sim.until(lambda: (scheduled(sim, "w") or {}).get("reason") == "Unschedulable")
    assert "{node.kubernetes.io/not-ready: }" in scheduled(sim, "w")["message"]

    await sim.until(lambda: sim.store.get("pods", "w")["spec"].get("nodeName") == "n1")
    assert sim.clock.now() >= ready_at
    bound = scheduled(sim, "w")
    assert bound["status"] == "True"
    assert "reason" not in bound and "message" not in bound


async def test_finished_pod_frees_room_for_a_waiting_one(sim):
    """When a bound pod succeeds, the pod that did not fit is placed without any other trigger."""
    sim.store.create("nodes", ready_node("n1", cpu="1"))
    sim.store.create("pods", pod("first", annotations={RUN_SECONDS_ANNOTATION: "10"}))
    await sim.until(lambda: sim.store.get("pods", "first")["spec"].get("nodeName") == "n1")
    sim.store.create("pods", pod("second"))
    await sim.until(lambda: (scheduled(sim, "second") or {}).get("reason") == "Unschedulable")
    await sim.until(lambda: sim.store.get("pods", "second")["spec"].get("nodeName") == "n1")
    assert sim.store.get("pods", "first")["status"]["phase"] == "Succeeded"


async def test_deleted_pod_frees_room_for_a_waiting_one(sim):
    """Deleting a bound pod re-evaluates the unschedulable ones."""
    sim.store.create("nodes", ready_node("n1", cpu="1"))
    sim.store.create("pods", pod("first"))
    await sim.until(lambda: sim.store.get("pods", "first")["spec"].get("nodeName") == "n1")
    sim.store.create("pods", pod("second"))
    await sim.until(lambda: (scheduled(sim, "second") or {}).get("reason") == "Unschedulable")
    sim.store.delete("pods", "first", namespace="default")
    await sim.until(lambda: sim.store.get("pods", "second")["spec"].get("nodeName") == "n1")


async def test_changed_pending_pod_is_looked_at_again(sim):
    """A toleration added to an unschedulable pod lets it onto the tainted node."""
    sim.store.create("nodes", ready_node("vk", cpu="100", taints=[ECI_TAINT]))
    sim.store.create("pods", pod("w"))
    await sim.until(lambda: (scheduled(sim, "w") or {}).get("reason") == "Unschedulable")

    def tolerate(obj: dict[str, Any]) -> None:
        obj["spec"]["tolerations"].append(
            {"key": "virtual-kubelet.io/provider", "operator": "Exists", "effect": "NoSchedule"}
        )

    sim.store.mutate("pods", "w", tolerate, namespace="default")
    await sim.until(lambda: sim.store.get("pods", "w")["spec"].get("nodeName") == "vk")


async def test_gated_and_foreign_pods_are_left_alone(sim):
    """Pods with scheduling gates or another schedulerName are neither bound nor marked."""
    sim.store.create("nodes", ready_node("n1"))
    gated = pod("gated")
    gated["spec"]["schedulingGates"] = [{"name": "example.com/wait"}]
    foreign = pod("foreign")
    foreign["spec"]["schedulerName"] = "volcano"
    sim.store.create("pods", gated)
    sim.store.create("pods", foreign)
    sim.store.create("pods", pod("normal"))
    await sim.until(lambda: sim.store.get("pods", "normal")["spec"].get("nodeName") == "n1")
    for name in ("gated", "foreign"):
        obj = sim.store.get("pods", name)
        assert not obj["spec"].get("nodeName")
        assert scheduled(sim, name) is None

    sim.store.mutate(
        "pods", "gated", lambda p: p["spec"].pop("schedulingGates"), namespace="default"
    )
    await sim.until(lambda: sim.store.get("pods", "gated")["spec"].get("nodeName") == "n1")


async def test_a_burst_of_pods_is_one_pass(sim):
    """1,000 pods created together are decided in one pass: as many bound as fit, the rest marked."""
    for i in range(10):
        sim.store.create("nodes", ready_node(f"n{i}", cpu="8"))
    await sim.until(
        lambda: all(sim.store.get("nodes", f"n{i}")["status"].get("conditions") for i in range(10))
    )
    passes = sim.scheduler.passes
    for i in range(1000):
        sim.store.create("pods", pod(f"p{i:04d}"))

    def decided() -> bool:
        return all(
            p["spec"].get("nodeName") or scheduled(sim, p["metadata"]["name"])
            for p in sim.store.list("pods")[0]
        )

    await sim.until(decided, timeout=20)
    pods = sim.store.list("pods")[0]
    assert sum(1 for p in pods if p["spec"].get("nodeName")) == 80
    assert sim.scheduler.passes - passes == 1
