"""kubectl against the simulated cluster (scheduler and kubelet running): `create pdb`, `get pdb`
with the apiserver's printer columns, and `drain`, which evicts what the budget allows and keeps
retrying the rest until its timeout, as it does against kube-apiserver."""

from __future__ import annotations

import asyncio
from typing import Any

from agent.sim.world.nodes import ready_node
from tests.support.builders import build_test_pod

NODE = "cn-hangzhou.172.16.0.21"
OWNER = [
    {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "web",
        "uid": "rs-1",
        "controller": True,
    }
]


async def run(kubectl: Any, *args: str) -> tuple[int, str, str]:
    process = await kubectl(*args)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, out.decode(), err.decode()


async def two_running_pods(sim_cluster: Any, until: Any) -> None:
    """One Ready node and two pods of one ReplicaSet running on it."""
    store = sim_cluster.store
    store.create("nodes", ready_node(NODE))
    for name in ("web-1", "web-2"):
        pod = build_test_pod(name, labels={"app": "web"}, owners=OWNER, node=NODE)
        store.create("pods", pod, namespace="default")

    def running() -> bool:
        pods, _ = store.list("pods", namespace="default")
        return sum((p.get("status") or {}).get("phase") == "Running" for p in pods) == 2

    await until(running)


async def test_create_and_get_pdb(sim_cluster, until, kubectl):
    """`kubectl create pdb` then `get pdb`: MIN AVAILABLE 1, MAX UNAVAILABLE N/A, 1 allowed."""
    await two_running_pods(sim_cluster, until)
    code, out, err = await run(
        kubectl, "create", "pdb", "web", "--selector=app=web", "--min-available=1"
    )
    assert code == 0, err
    assert out.strip() == "poddisruptionbudget.policy/web created"

    def synced() -> bool:
        pdb = sim_cluster.store.get("poddisruptionbudgets", "web", namespace="default")
        return pdb["status"].get("observedGeneration") == 1

    await until(synced)
    code, out, err = await run(kubectl, "get", "pdb")
    assert code == 0, err
    header, row = (line.split() for line in out.strip().splitlines())
    assert " ".join(header) == "NAME MIN AVAILABLE MAX UNAVAILABLE ALLOWED DISRUPTIONS AGE"
    assert row[:4] == ["web", "1", "N/A", "1"]


async def test_drain_evicts_within_the_budget_and_retries_the_rest(sim_cluster, until, kubectl):
    """minAvailable 1 of 2: drain evicts one pod, then gets 429 for the other, says it will retry
    after 5 s, and fails at its timeout with the pod still running and the node cordoned."""
    await two_running_pods(sim_cluster, until)
    code, _out, err = await run(
        kubectl, "create", "pdb", "web", "--selector=app=web", "--min-available=1"
    )
    assert code == 0, err
    code, out, err = await run(kubectl, "drain", NODE, "--timeout=8s")
    assert code != 0
    assert "Cannot evict pod as it would violate the pod's disruption budget." in err
    assert "(will retry after 5s)" in err
    assert f'unable to drain node "{NODE}"' in err
    assert out.count("evicted") == 1, out
    node = sim_cluster.store.get("nodes", NODE)
    assert node["spec"]["unschedulable"]
    pods, _ = sim_cluster.store.list("pods", namespace="default")
    assert len(pods) == 1 and pods[0]["status"]["phase"] == "Running"
