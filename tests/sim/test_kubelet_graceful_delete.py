"""Deleting a running pod through the API: Terminating first, then gone once the kubelet is done."""

from __future__ import annotations

from kubernetes_asyncio import client

from agent.sim.world.nodes import ready_node


async def test_api_delete_of_a_running_pod_is_finished_by_the_kubelet(sim_cluster, core_api, until):
    """The API only marks the pod; the kubelet removes it after the (capped) grace period."""
    store = sim_cluster.store
    store.create("nodes", ready_node("cn-hangzhou.172.16.0.10"))
    await core_api.create_namespaced_pod(
        "default",
        {
            "metadata": {"name": "w"},
            "spec": {
                "containers": [
                    {"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "1"}}}
                ]
            },
        },
    )
    await until(lambda: store.get("pods", "w", namespace="default")["status"]["phase"] == "Running")

    asked_at = sim_cluster.clock.now()
    await core_api.delete_namespaced_pod("w", "default", grace_period_seconds=30)
    marked = await core_api.read_namespaced_pod("w", "default")
    assert marked.metadata.deletion_timestamp is not None

    await until(lambda: not store.list("pods", namespace="default")[0])
    assert sim_cluster.clock.now() - asked_at >= 2  # the kubelet's cap on the 30 s grace
    try:
        await core_api.read_namespaced_pod("w", "default")
    except client.ApiException as error:
        assert error.status == 404
    else:
        raise AssertionError("the pod is still there")
