"""Node heartbeats: each node's Lease in kube-node-lease, renewed by its kubelet; a stopped
kubelet (the fault plan's node-loss hook) turns its node Unknown after the grace period, and a
restarted one brings it back. `kubectl describe node` reads the Lease."""

from __future__ import annotations

import asyncio

from agent.sim.kube.kubeconfig import write_kubeconfig
from agent.sim.world.clock import parse_iso
from agent.sim.world.node_leases import LEASE_DURATION_SECONDS, NODE_LEASE_NAMESPACE
from agent.sim.world.node_lifecycle import UNREACHABLE
from agent.sim.world.nodes import ready_node
from tests.support.waiting import store_until


def _ready(store, name: str) -> str | None:
    node = store.get("nodes", name)
    return next(
        (c["status"] for c in node["status"].get("conditions") or () if c["type"] == "Ready"), None
    )


def _lease(store, name: str) -> dict | None:
    items, _ = store.list("leases", namespace=NODE_LEASE_NAMESPACE)
    return next((lease for lease in items if lease["metadata"]["name"] == name), None)


async def test_each_node_has_a_lease_its_kubelet_renews(sim_cluster):
    """Named after the node, held by it, 40 s, owned by the Node, renewTime moving."""
    store = sim_cluster.store
    node = store.create("nodes", ready_node("n1"))
    await store_until(store, lambda: _lease(store, "n1") is not None)
    lease = _lease(store, "n1")
    assert lease["spec"]["holderIdentity"] == "n1"
    assert lease["spec"]["leaseDurationSeconds"] == LEASE_DURATION_SECONDS
    owner = lease["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Node", "n1", node["metadata"]["uid"])
    first = parse_iso(lease["spec"]["renewTime"])
    await store_until(
        store, lambda: parse_iso(_lease(store, "n1")["spec"]["renewTime"]) > first, timeout=5
    )
    renewed = parse_iso(_lease(store, "n1")["spec"]["renewTime"])
    assert 9 <= renewed - first <= 15, "renewed every 10 s (simulated)"


async def test_a_stopped_kubelet_makes_its_node_unknown_and_a_restart_brings_it_back(sim_cluster):
    """No renewals for 40 s: Ready Unknown (NodeStatusUnknown), unreachable taints, NodeNotReady
    from node-controller, the pods NotReady; after a restart Ready again, taints gone."""
    store, clock = sim_cluster.store, sim_cluster.clock
    store.create("nodes", ready_node("n1"))
    store.create("nodes", ready_node("n2"))
    store.create(
        "pods",
        {"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]}},
    )  # fmt: skip
    await store_until(store, lambda: _ready(store, "n1") == "True" and _lease(store, "n1"))
    await store_until(
        store, lambda: store.get("pods", "p", namespace="default")["status"]["phase"] == "Running"
    )
    stopped_at = clock.now()
    sim_cluster.faults.stop_kubelet("n1")
    await store_until(store, lambda: _ready(store, "n1") == "Unknown", timeout=10)
    lost_after = clock.now() - stopped_at
    assert 40 <= lost_after <= 40 + 10 + 5 + 10, lost_after  # grace, renew and monitor periods
    node = store.get("nodes", "n1")
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "NodeStatusUnknown"
    assert ready["message"] == "Kubelet stopped posting node status."
    assert {(t["key"], t["effect"]) for t in node["spec"]["taints"]} >= {
        (UNREACHABLE, "NoSchedule"),
        (UNREACHABLE, "NoExecute"),
    }
    assert _ready(store, "n2") == "True", "the other node's kubelet kept renewing"
    events, _ = store.list("events")
    [not_ready] = [e for e in events if e["reason"] == "NodeNotReady" and e["source"]["component"] == "node-controller" and e["involvedObject"]["kind"] == "Node"]  # fmt: skip
    assert not_ready["message"] == "Node n1 status is now: NodeNotReady"
    pod = store.get("pods", "p", namespace="default")
    assert any(c["type"] == "Ready" and c["status"] == "False" for c in pod["status"]["conditions"])
    assert any(
        e["reason"] == "NodeNotReady"
        and e["involvedObject"]["name"] == "p"
        and e["type"] == "Warning"
        for e in events
    )

    sim_cluster.faults.start_kubelet("n1")
    await store_until(
        store,
        lambda: (
            _ready(store, "n1") == "True" and not store.get("nodes", "n1")["spec"].get("taints")
        ),
        timeout=10,
    )
    await store_until(
        store,
        lambda: any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in store.get("pods", "p", namespace="default")["status"]["conditions"]
        ),
    )


async def test_a_deleted_node_takes_its_lease_with_it(sim_cluster):
    """The Lease is owned by the Node: it goes when the Node does."""
    store = sim_cluster.store
    store.create("nodes", ready_node("n1"))
    await store_until(store, lambda: _lease(store, "n1") is not None)
    store.delete("nodes", "n1")
    await store_until(store, lambda: _lease(store, "n1") is None)


async def test_kubectl_describe_node_shows_the_lease_and_node_events(
    sim_cluster, tmp_path, clean_env
):
    """No "Failed to get lease": HolderIdentity and RenewTime, and the node's Events."""
    store = sim_cluster.store
    store.create("nodes", ready_node("n1"))
    await store_until(
        store,
        lambda: (
            _lease(store, "n1")
            and any(e["reason"] == "RegisteredNode" for e in store.list("events")[0])
        ),
    )
    kubeconfig = write_kubeconfig(sim_cluster.url, tmp_path / "kubeconfig")
    process = await asyncio.create_subprocess_exec(
        "kubectl", "--kubeconfig", str(kubeconfig), "describe", "node", "n1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=clean_env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 30)
    text = out.decode() + err.decode()
    assert process.returncode == 0, text
    assert "Failed to get lease" not in text
    assert "HolderIdentity:  n1" in text and "RenewTime:" in text
    assert "Registered Node n1 in Controller" in text
    assert "Node n1 status is now: NodeReady" in text
