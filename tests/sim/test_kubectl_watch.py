"""kubectl against the simulated cluster: `get pod -w` shows a pod going Pending → Running."""

from __future__ import annotations

import asyncio
import contextlib

from agent.sim.world.nodes import POD_START_ANNOTATION, ready_node


async def test_get_pod_watch_shows_pending_then_running(sim_cluster, kubectl):
    """The watch prints the pod Pending, then ContainerCreating, then 1/1 Running."""
    store = sim_cluster.store
    store.create(
        "pods",
        {
            "metadata": {
                "name": "myfirst-ray-cluster-worker-workergroup-btgmm",
                "namespace": "default",
            },
            "spec": {
                "containers": [
                    {
                        "name": "ray-worker",
                        "image": "rayproject/ray:2.9.0",
                        "resources": {"requests": {"cpu": "1"}},
                    }
                ]
            },
        },
    )
    # no node yet: the pod stays Pending until the watch has shown it
    process = await kubectl("get", "pod", "-w")
    lines: list[list[str]] = []

    async def read_until_running() -> None:
        while not lines or lines[-1][2] != "Running":
            raw = await process.stdout.readline()
            if not raw:
                raise AssertionError(f"kubectl ended early: {lines}")
            columns = raw.decode().split()
            lines.append(columns)
            if columns[2] == "Pending" and len(lines) == 2:
                store.create(
                    "nodes",
                    ready_node("cn-hangzhou.172.16.0.10", annotations={POD_START_ANNOTATION: "2"}),
                )

    try:
        await asyncio.wait_for(read_until_running(), 20)
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
    assert lines[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    statuses = [(columns[1], columns[2]) for columns in lines[1:]]
    assert statuses[0] == ("0/1", "Pending")
    assert ("0/1", "ContainerCreating") in statuses
    assert statuses[-1] == ("1/1", "Running")
    assert all(
        columns[0] == "myfirst-ray-cluster-worker-workergroup-btgmm" for columns in lines[1:]
    )
