"""Deleting pods through kubernetes-asyncio: graceful for bound pods, at once for unbound or
finished ones; eviction and binding subresources; namespaces, nodes, events and leases."""

from __future__ import annotations

import json

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tests.support.builders import build_test_pod
from tests.support.waiting import store_until


def pod(name: str, *, node: str | None = None) -> dict:
    return build_test_pod(name, node=node, terminationGracePeriodSeconds=20)


async def test_bound_pod_deletion_is_graceful(api_server, core):
    """A bound pod gets deletionTimestamp = now + grace and stays until its kubelet removes it."""
    await core.create_namespaced_pod("default", pod("w", node="n1"))
    before = api_server.clock.now()
    deleted = await core.delete_namespaced_pod("w", "default", _preload_content=False)
    body = json.loads(await deleted.read())
    assert body["metadata"]["deletionGracePeriodSeconds"] == 20
    still = await core.read_namespaced_pod("w", "default")
    assert still.metadata.deletion_timestamp is not None
    assert still.metadata.deletion_timestamp.timestamp() >= int(before) + 20


async def test_grace_period_zero_removes_at_once(core):
    """gracePeriodSeconds=0 removes even a bound pod immediately."""
    await core.create_namespaced_pod("default", pod("w", node="n1"))
    await core.delete_namespaced_pod("w", "default", grace_period_seconds=0)
    with pytest.raises(ApiException) as caught:
        await core.read_namespaced_pod("w", "default")
    assert caught.value.status == 404


async def test_unbound_and_finished_pods_go_at_once(api_server, core):
    """Pods with no node, or Succeeded, have no kubelet to wait for: deletion is immediate."""
    await core.create_namespaced_pod("default", pod("pending"))
    await core.create_namespaced_pod("default", pod("done", node="n1"))
    await core.patch_namespaced_pod_status("done", "default", {"status": {"phase": "Succeeded"}})
    await core.delete_namespaced_pod("pending", "default")
    await core.delete_namespaced_pod("done", "default")
    assert (await core.list_namespaced_pod("default")).items == []


async def test_delete_precondition_mismatch_is_409(core):
    """A uid precondition that does not match refuses the delete."""
    await core.create_namespaced_pod("default", pod("w"))
    with pytest.raises(ApiException) as caught:
        await core.delete_namespaced_pod(
            "w",
            "default",
            body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="nope")),
        )
    assert caught.value.status == 409


async def test_eviction_is_a_graceful_delete(core):
    """POST pods/eviction returns 201 and starts graceful deletion of the bound pod."""
    await core.create_namespaced_pod("default", pod("w", node="n1"))
    eviction = client.V1Eviction(metadata=client.V1ObjectMeta(name="w", namespace="default"))
    await core.create_namespaced_pod_eviction("w", "default", eviction)
    evicted = await core.read_namespaced_pod("w", "default")
    assert evicted.metadata.deletion_timestamp is not None


async def test_eviction_of_missing_pod_is_404(core):
    """Evicting a pod that does not exist is 404."""
    eviction = client.V1Eviction(metadata=client.V1ObjectMeta(name="ghost", namespace="default"))
    with pytest.raises(ApiException) as caught:
        await core.create_namespaced_pod_eviction("ghost", "default", eviction)
    assert caught.value.status == 404


async def test_binding_sets_node_once(core):
    """POST pods/binding assigns the node and marks PodScheduled; a second binding is 409."""
    await core.create_namespaced_pod("default", pod("w"))
    binding = client.V1Binding(
        metadata=client.V1ObjectMeta(name="w"),
        target=client.V1ObjectReference(kind="Node", name="n1"),
    )
    await core.create_namespaced_pod_binding("w", "default", binding, _preload_content=False)
    bound = await core.read_namespaced_pod("w", "default")
    assert bound.spec.node_name == "n1"
    assert [(c.type, c.status) for c in bound.status.conditions] == [("PodScheduled", "True")]
    # the reply is a Status, not a Binding: read it raw
    again = await core.create_namespaced_pod_binding(
        "w", "default", binding, _preload_content=False
    )
    assert again.status == 409
    assert json.loads(await again.read())["reason"] == "Conflict"


async def test_namespace_deletion_removes_its_objects(api_server, core):
    """Deleting a namespace deletes the pods in it, then the namespace (the namespace
    controller's work: tests/sim/test_api_namespace_lifecycle.py has the phases)."""
    await core.create_namespace({"metadata": {"name": "ray"}})
    await core.create_namespaced_pod("ray", pod("w"))
    await core.delete_namespace("ray")
    store = api_server.store
    await store_until(store, lambda: not store.list("pods")[0])
    names = lambda: {n["metadata"]["name"] for n in store.list("namespaces")[0]}  # noqa: E731
    await store_until(store, lambda: "ray" not in names())


async def test_node_lifecycle(core):
    """Nodes can be created, read, listed and deleted (a Status Success reply)."""
    await core.create_node(
        {"metadata": {"name": "cn-hangzhou.172.16.0.17", "labels": {"type": "ecs"}}}
    )
    node = await core.read_node("cn-hangzhou.172.16.0.17")
    assert node.metadata.labels == {"type": "ecs"}
    listed = await core.list_node(label_selector="type=ecs")
    assert [n.metadata.name for n in listed.items] == ["cn-hangzhou.172.16.0.17"]
    status = await core.delete_node("cn-hangzhou.172.16.0.17")
    assert status.status == "Success"
    assert (await core.list_node()).items == []


async def test_events_create_list_patch(core):
    """core/v1 Events: the agent's TriggeredScaleUp event can be written, found by reason, and bumped."""
    event = {
        "metadata": {"name": "w.triggered"},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "w"},
        "reason": "TriggeredScaleUp",
        "message": "pod triggered scale-up: [{np-1 0->1 (max: 10)}]",
        "type": "Normal",
        "count": 1,
        "source": {"component": "ray-ack-scaler"},
    }
    await core.create_namespaced_event("default", event)
    found = await core.list_event_for_all_namespaces(
        field_selector="reason=TriggeredScaleUp,involvedObject.name=w"
    )
    assert [e.message for e in found.items] == [event["message"]]
    bumped = await core.patch_namespaced_event("w.triggered", "default", {"count": 2})
    assert bumped.count == 2


async def test_leases_for_leader_election(api_client):
    """coordination.k8s.io/v1 Leases: create, read, and a conflicting replace is 409."""
    coordination = client.CoordinationV1Api(api_client)
    lease = {
        "metadata": {"name": "ray-ack-scaler"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15},
    }
    created = await coordination.create_namespaced_lease("kube-system", lease)
    read = await coordination.read_namespaced_lease("ray-ack-scaler", "kube-system")
    assert read.spec.holder_identity == "a"
    read.spec.holder_identity = "b"
    await coordination.replace_namespaced_lease("ray-ack-scaler", "kube-system", read)
    created.spec.holder_identity = "c"
    with pytest.raises(ApiException) as caught:
        await coordination.replace_namespaced_lease("ray-ack-scaler", "kube-system", created)
    assert caught.value.status == 409
