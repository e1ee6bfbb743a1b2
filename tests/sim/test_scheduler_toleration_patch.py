"""The scheduler reacting to the agent's write: a toleration JSON-patched through the real API."""

from __future__ import annotations

from kubernetes_asyncio import client

from agent.sim.world.nodes import ready_node

ECI_TAINT = {"key": "virtual-kubelet.io/provider", "value": "alibabacloud", "effect": "NoSchedule"}


async def test_toleration_patch_places_a_pending_pod_on_eci(sim_cluster, core_api, until):
    """Unschedulable on a full ECS node and the untolerated ECI node; placed on ECI once patched."""
    store = sim_cluster.store
    store.create("nodes", ready_node("cn-hangzhou.172.16.0.10", cpu="1"))
    store.create(
        "nodes",
        ready_node(
            "virtual-kubelet-cn-hangzhou-k",
            cpu="1000",
            labels={"type": "virtual-kubelet"},
            taints=[ECI_TAINT],
        ),
    )
    body = {
        "metadata": {"name": "worker", "labels": {"ray.io/node-type": "worker"}},
        "spec": {
            "containers": [
                {
                    "name": "ray-worker",
                    "image": "rayproject/ray:2.9.0",
                    "resources": {"requests": {"cpu": "2", "memory": "1Gi"}},
                }
            ]
        },
    }
    await core_api.create_namespaced_pod("default", body)

    def condition() -> dict | None:
        for entry in (
            store.get("pods", "worker", namespace="default")["status"].get("conditions") or []
        ):
            if entry["type"] == "PodScheduled":
                return entry
        return None

    await until(lambda: (condition() or {}).get("reason") == "Unschedulable")
    pending = await core_api.read_namespaced_pod("worker", "default")
    assert pending.status.phase == "Pending"
    [scheduled] = [c for c in pending.status.conditions if c.type == "PodScheduled"]
    assert scheduled.message == (
        "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint "
        "{virtual-kubelet.io/provider: alibabacloud}. preemption: 0/2 nodes are available: "
        "1 No preemption victims found for incoming pod, 1 Preemption is not helpful for "
        "scheduling."
    )

    patch = [
        {
            "op": "add",
            "path": "/spec/tolerations/-",
            "value": {
                "key": "virtual-kubelet.io/provider",
                "operator": "Equal",
                "value": "alibabacloud",
                "effect": "NoSchedule",
            },
        }
    ]
    await core_api.patch_namespaced_pod("worker", "default", patch)
    await until(
        lambda: store.get("pods", "worker", namespace="default")["status"].get("phase") == "Running"
    )
    running = await core_api.read_namespaced_pod("worker", "default")
    assert running.spec.node_name == "virtual-kubelet-cn-hangzhou-k"
    assert isinstance(running, client.V1Pod)
