"""The simulated kubelet: node readiness, pod phases, graceful deletion, pods of deleted nodes."""

from __future__ import annotations

from typing import Any

from agent.sim.world.kubelet import RUN_SECONDS_ANNOTATION
from agent.sim.world.nodes import POD_START_ANNOTATION, READY_AT_ANNOTATION, ready_node
from tests.support.builders import build_test_pod


def pod(name: str, *, cpu: str = "1", annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return build_test_pod(
        name,
        namespace="default",
        annotations=annotations or {},
        container="worker",
        image="rayproject/ray:2.9.0",
        cpu=cpu,
    )


def container_state(obj: dict[str, Any]) -> str:
    statuses = (obj.get("status") or {}).get("containerStatuses") or []
    if not statuses:
        return ""
    state = statuses[0]["state"]
    kind = next(iter(state))
    return state[kind].get("reason", kind)


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for entry in (obj.get("status") or {}).get("conditions") or []:
        if entry["type"] == kind:
            return entry
    return None


async def test_node_without_annotation_or_conditions_is_ready_at_once(sim):
    """A bare node gets Ready=True and the node conditions a kubelet posts."""
    name = "cn-hangzhou.172.16.0.10"
    sim.store.create("nodes", ready_node(name))
    await sim.until(lambda: condition(sim.store.get("nodes", name), "Ready") is not None)
    node = sim.store.get("nodes", name)
    assert condition(node, "Ready")["status"] == "True"
    assert condition(node, "MemoryPressure")["status"] == "False"
    assert not (node.get("spec") or {}).get("taints")
    assert node["status"]["nodeInfo"]["kubeletVersion"].startswith("v1.")


async def test_node_with_ready_at_is_not_ready_until_then(sim):
    """NotReady with the not-ready taint until ready-at (sim time), then Ready without it."""
    ready_at = sim.clock.now() + 30
    sim.store.create("nodes", ready_node("n1", annotations={READY_AT_ANNOTATION: f"{ready_at}"}))
    await sim.until(lambda: condition(sim.store.get("nodes", "n1"), "Ready") is not None)
    booting = sim.store.get("nodes", "n1")
    assert condition(booting, "Ready")["status"] == "False"
    assert {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"} in booting["spec"][
        "taints"
    ]

    await sim.until(lambda: condition(sim.store.get("nodes", "n1"), "Ready")["status"] == "True")
    assert sim.clock.now() >= ready_at
    assert not sim.store.get("nodes", "n1")["spec"].get("taints")


async def test_pod_goes_container_creating_running_succeeded(sim):
    """Bound → ContainerCreating → Running after pod-start-seconds → Succeeded after run-seconds."""
    sim.store.create("nodes", ready_node("n1", annotations={POD_START_ANNOTATION: "3"}))
    seen: list[tuple[str, str, float]] = []
    subscription = sim.store.subscribe()
    sim.store.create("pods", pod("job", annotations={RUN_SECONDS_ANNOTATION: "20"}))
    try:
        await sim.until(lambda: sim.store.get("pods", "job")["status"]["phase"] == "Succeeded")
    finally:
        for event in subscription.drain():
            if event.resource == "pods":
                step = (event.object["status"]["phase"], container_state(event.object))
                if not seen or seen[-1][:2] != step:
                    seen.append((*step, event.object["metadata"]["resourceVersion"]))
        subscription.close()
    assert [s[:2] for s in seen] == [
        ("Pending", ""),
        ("Pending", "ContainerCreating"),
        ("Running", "running"),
        ("Succeeded", "Completed"),
    ]
    done = sim.store.get("pods", "job")
    assert done["status"]["podIP"]
    assert done["status"]["startTime"]
    assert condition(done, "Ready")["reason"] == "PodCompleted"
    terminated = done["status"]["containerStatuses"][0]["state"]["terminated"]
    started = sim.parse(terminated["startedAt"])
    # whole-second timestamps: allow one second of rounding
    assert sim.parse(terminated["finishedAt"]) - started >= 19
    assert started - sim.parse(done["status"]["startTime"]) >= 2


async def test_running_pod_without_run_seconds_keeps_running(sim):
    """Only the run-seconds annotation ends a pod; others stay Running and Ready."""
    sim.store.create("nodes", ready_node("n1"))
    sim.store.create("pods", pod("server"))
    await sim.until(lambda: sim.store.get("pods", "server")["status"]["phase"] == "Running")
    start = sim.clock.now()
    await sim.clock.sleep(60)
    assert sim.clock.now() - start >= 60
    running = sim.store.get("pods", "server")
    assert running["status"]["phase"] == "Running"
    assert condition(running, "Ready")["status"] == "True"
    assert running["status"]["containerStatuses"][0]["ready"] is True


async def test_graceful_delete_is_finished_after_the_grace_period(sim):
    """A bound pod marked for deletion disappears once its (capped) grace period has passed."""
    sim.store.create("nodes", ready_node("n1"))
    sim.store.create("pods", pod("w"))
    await sim.until(lambda: sim.store.get("pods", "w")["status"]["phase"] == "Running")

    def mark(obj: dict[str, Any]) -> None:
        obj["metadata"]["deletionTimestamp"] = sim.clock.iso(sim.clock.now() + 30)
        obj["metadata"]["deletionGracePeriodSeconds"] = 30

    marked_at = sim.clock.now()
    sim.store.mutate("pods", "w", mark, namespace="default")
    await sim.until(lambda: not sim.store.list("pods")[0])
    assert sim.clock.now() - marked_at >= 2  # the capped grace, in sim seconds


async def test_pods_of_a_deleted_node_are_collected(sim):
    """Deleting a node removes the pods bound to it, as the pod GC does."""
    sim.store.create("nodes", ready_node("n1"))
    sim.store.create("pods", pod("w"))
    await sim.until(lambda: sim.store.get("pods", "w")["spec"].get("nodeName") == "n1")
    sim.store.delete("nodes", "n1")
    await sim.until(lambda: not sim.store.list("pods")[0])


async def test_pod_bound_to_a_booting_node_starts_when_it_is_ready(sim):
    """A pod that tolerates not-ready waits for the node's readiness before its containers start."""
    ready_at = sim.clock.now() + 20
    sim.store.create("nodes", ready_node("n1", annotations={READY_AT_ANNOTATION: f"{ready_at}"}))
    early = pod("ds")
    early["spec"]["tolerations"] = [{"operator": "Exists"}]
    sim.store.create("pods", early)
    await sim.until(lambda: sim.store.get("pods", "ds")["spec"].get("nodeName") == "n1")
    await sim.until(lambda: sim.store.get("pods", "ds")["status"]["phase"] == "Running")
    assert sim.clock.now() >= ready_at
