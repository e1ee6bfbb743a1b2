"""PATCH through kubernetes-asyncio: JSON patch (list body), merge patch (forced content type)
and strategic merge patch (dict body), on pods, nodes and their status subresources."""

from __future__ import annotations

import json

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from tests.support.builders import build_test_pod

MERGE = "application/merge-patch+json"
ECI_TOLERATION = {
    "key": "virtual-kubelet.io/provider",
    "operator": "Equal",
    "value": "alibabacloud",
    "effect": "NoSchedule",
}


def pod(name: str) -> dict:
    containers = [
        {"name": "main", "image": "busybox", "env": [{"name": "A", "value": "1"}]},
        {"name": "side", "image": "envoy"},
    ]
    return build_test_pod(name, labels={"app": "ray"}, containers=containers)


def toleration_patch(resource_version: str) -> list[dict]:
    """The agent's ECI write: add the toleration, guarded by a `test` of the version it read."""
    return [
        {"op": "test", "path": "/metadata/resourceVersion", "value": resource_version},
        {"op": "add", "path": "/spec/tolerations/-", "value": ECI_TOLERATION},
    ]


async def test_toleration_json_patch_with_version_test(core):
    """The agent's write: add a toleration to a pending pod, guarded by a test on resourceVersion."""
    created = await core.create_namespaced_pod("default", pod("w"))
    patched = await core.patch_namespaced_pod(
        "w",
        "default",
        toleration_patch(created.metadata.resource_version),
    )
    assert patched.spec.tolerations[-1].key == "virtual-kubelet.io/provider"
    assert len(patched.spec.tolerations) == len(created.spec.tolerations) + 1
    assert int(patched.metadata.resource_version) > int(created.metadata.resource_version)


async def test_failed_json_patch_test_is_422(core):
    """A `test` op on a stale resourceVersion fails the whole patch with 422 and changes nothing."""
    created = await core.create_namespaced_pod("default", pod("w"))
    await core.patch_namespaced_pod("w", "default", {"metadata": {"labels": {"bump": "1"}}})
    with pytest.raises(ApiException) as caught:
        await core.patch_namespaced_pod(
            "w",
            "default",
            toleration_patch(created.metadata.resource_version),
        )
    assert caught.value.status == 422
    status = json.loads(caught.value.body)
    assert status["reason"] == "Invalid"
    assert "test failed" in status["details"]["causes"][0]["message"]
    current = await core.read_namespaced_pod("w", "default")
    assert len(current.spec.tolerations) == len(created.spec.tolerations)


async def test_strategic_merge_merges_containers_by_name(core):
    """A strategic patch changes one container's image and env by name, keeping the others."""
    await core.create_namespaced_pod("default", pod("w"))
    patched = await core.patch_namespaced_pod(
        "w", "default", {"spec": {"containers": [{"name": "side", "image": "envoy:v2"}]}}
    )
    assert [(c.name, c.image) for c in patched.spec.containers] == [
        ("main", "busybox"),
        ("side", "envoy:v2"),
    ]
    assert patched.spec.containers[0].env[0].name == "A"


async def test_strategic_merge_replaces_tolerations(core):
    """Tolerations have no merge key: a strategic patch replaces the list, dropping defaults → 422."""
    await core.create_namespaced_pod("default", pod("w"))
    with pytest.raises(ApiException) as caught:
        await core.patch_namespaced_pod("w", "default", {"spec": {"tolerations": [ECI_TOLERATION]}})
    assert caught.value.status == 422
    assert "existing toleration can not be modified" in json.loads(caught.value.body)["message"]


async def test_merge_patch_replaces_lists_and_deletes_with_null(core):
    """A merge patch deletes a label with null; its list values replace whole lists."""
    await core.create_namespaced_pod("default", pod("w"))
    patched = await core.patch_namespaced_pod(
        "w",
        "default",
        {"metadata": {"labels": {"app": None, "tier": "worker"}}},
        _content_type=MERGE,
    )
    assert patched.metadata.labels == {"tier": "worker"}
    with pytest.raises(ApiException) as caught:
        # a merge patch's containers list replaces both containers: a forbidden pod update
        await core.patch_namespaced_pod(
            "w",
            "default",
            {"spec": {"containers": [{"name": "main", "image": "busybox:2"}]}},
            _content_type=MERGE,
        )
    assert caught.value.status == 422


async def test_node_taints_and_status_subresource(api_server, core):
    """Node spec patches change taints; a status patch changes conditions only via /status."""
    await core.create_node({"metadata": {"name": "n1"}, "spec": {}})
    taint = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
    patched = await core.patch_node("n1", {"spec": {"taints": [taint]}})
    assert [t.key for t in patched.spec.taints] == ["node.kubernetes.io/not-ready"]
    ready = {"type": "Ready", "status": "True", "reason": "KubeletReady"}
    ignored = await core.patch_node("n1", {"status": {"conditions": [ready]}})
    assert ignored.status is None or not ignored.status.conditions
    status = await core.patch_node_status("n1", {"status": {"conditions": [ready]}})
    assert [(c.type, c.status) for c in status.status.conditions] == [("Ready", "True")]
    again = await core.patch_node_status(
        "n1", {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    )
    assert [(c.type, c.status, c.reason) for c in again.status.conditions] == [
        ("Ready", "False", "KubeletReady")
    ]


async def test_pod_status_patch_changes_only_status(core):
    """A pod status patch sets the phase; a spec change sent to /status is ignored."""
    await core.create_namespaced_pod("default", pod("w"))
    patched = await core.patch_namespaced_pod_status(
        "w", "default", {"status": {"phase": "Running"}, "spec": {"nodeName": "n1"}}
    )
    assert patched.status.phase == "Running"
    assert patched.spec.node_name is None
    assert (await core.read_namespaced_pod_status("w", "default")).status.phase == "Running"
