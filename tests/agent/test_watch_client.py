"""The raw Kubernetes client against the simulated API server: kubeconfig connection, paginated
LIST, error statuses as KubeError, and the JSON patch and Event writes actuation relies on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.clients.kube import KubeClient, KubeError, KubeUnreachable
from agent.sim.cluster import SimCluster
from agent.sim.kube.kubeconfig import write_kubeconfig


@pytest.fixture
async def cluster() -> AsyncIterator[SimCluster]:
    async with SimCluster(namespaces=["ray"]) as sim:
        for i in range(5):
            sim.store.create(
                "pods",
                {
                    "metadata": {"name": f"p{i}", "labels": {"ray.io/node-type": "worker"}},
                    # no scheduler claims them, so nothing changes them behind the test's back
                    "spec": {"containers": [{"name": "c"}], "schedulerName": "nobody"},
                },
                namespace="ray",
            )
        yield sim


async def test_connect_with_a_kubeconfig_file(cluster: SimCluster, tmp_path: Path) -> None:
    """A kubeconfig file (what kubectl uses) reaches the same API as the plain URL."""
    path = write_kubeconfig(cluster.url, tmp_path / "kubeconfig")
    async with await KubeClient.connect(kubeconfig=str(path)) as client:
        page = await client.list_page("pods", namespace="ray")
    assert sorted(p["metadata"]["name"] for p in page["items"]) == [f"p{i}" for i in range(5)]


async def test_pagination_walks_one_snapshot(cluster: SimCluster) -> None:
    """limit/continue pages cover every object once, with the list's resourceVersion."""
    async with await KubeClient.connect(api_url=cluster.url) as client:
        names: list[str] = []
        token = None
        while True:
            page = await client.list_page(
                "pods", label_selector="ray.io/node-type=worker", limit=2, continue_token=token
            )
            names += [p["metadata"]["name"] for p in page["items"]]
            token = page["metadata"].get("continue")
            if not token:
                break
    assert sorted(names) == [f"p{i}" for i in range(5)]


async def test_json_patch_and_its_refusals(cluster: SimCluster) -> None:
    """A guarded JSON patch applies; a failed `test` or a missing pod raise KubeError."""
    async with await KubeClient.connect(api_url=cluster.url) as client:
        pod = cluster.store.get("pods", "p0", namespace="ray")
        toleration = {
            "key": "virtual-kubelet.io/provider",
            "operator": "Equal",
            "value": "alibabacloud",
            "effect": "NoSchedule",
        }
        patched = await client.patch_pod_json(
            "ray",
            "p0",
            [
                {
                    "op": "test",
                    "path": "/metadata/resourceVersion",
                    "value": pod["metadata"]["resourceVersion"],
                },
                {"op": "add", "path": "/spec/tolerations/-", "value": toleration},
            ],
        )
        assert toleration in patched["spec"]["tolerations"]
        with pytest.raises(KubeError) as stale:
            await client.patch_pod_json(
                "ray",
                "p0",
                [
                    {
                        "op": "test",
                        "path": "/metadata/resourceVersion",
                        "value": pod["metadata"]["resourceVersion"],
                    }
                ],
            )
        assert stale.value.status in (409, 422)
        with pytest.raises(KubeError) as missing:
            await client.patch_pod_json("ray", "nope", [{"op": "add", "path": "/x", "value": 1}])
        assert missing.value.status == 404
        assert missing.value.reason == "NotFound"


async def test_create_event(cluster: SimCluster) -> None:
    """Events are created in the pod's namespace."""
    async with await KubeClient.connect(api_url=cluster.url) as client:
        await client.create_event(
            "ray",
            {
                "metadata": {"generateName": "p0."},
                "reason": "TriggeredScaleUp",
                "message": "m",
                "involvedObject": {"kind": "Pod", "namespace": "ray", "name": "p0"},
                "type": "Normal",
            },
        )
    events, _ = cluster.store.list("events", namespace="ray")
    assert [e["reason"] for e in events] == ["TriggeredScaleUp"]


async def test_unreachable_server_raises_kube_unreachable(cluster: SimCluster) -> None:
    """Nothing listening: a KubeUnreachable, not a transport-specific exception."""
    url = cluster.url
    await cluster.stop()
    async with await KubeClient.connect(api_url=url, request_timeout=2) as client:
        with pytest.raises(KubeUnreachable):
            await client.list_page("pods")


async def test_watch_error_status_is_a_kube_error(cluster: SimCluster) -> None:
    """A refused WATCH (unsupported field selector) raises KubeError with the Status's code."""
    async with await KubeClient.connect(api_url=cluster.url) as client:
        with pytest.raises(KubeError) as refused:
            async for _ in client.watch(
                "pods", resource_version="0", field_selector="spec.bogus=x", read_timeout=5
            ):
                pass
    assert refused.value.status == 400
    assert "field label not supported" in refused.value.message


async def test_watch_from_zero_replays_current_objects(cluster: SimCluster) -> None:
    """resourceVersion 0 starts with a synthetic ADDED per object, then ends at timeoutSeconds."""
    async with await KubeClient.connect(api_url=cluster.url) as client:
        events = [
            e
            async for e in client.watch(
                "pods", namespace="ray", resource_version="0", timeout_seconds=1, read_timeout=5
            )
        ]
    added = [e["object"]["metadata"]["name"] for e in events if e["type"] == "ADDED"]
    assert sorted(added) == [f"p{i}" for i in range(5)]
