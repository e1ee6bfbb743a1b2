"""A namespace ends in phases over real HTTP (kubernetes-asyncio), as kube-apiserver and the
namespace controller end it: DELETE marks it Terminating with deletionTimestamp (the `kubernetes`
finalizer still in spec.finalizers); the NamespaceLifecycle admission refuses new content in it
(403, cause NamespaceTerminating) and refuses to delete default, kube-system and kube-public;
its pods go with their grace periods; the deletion conditions say what remains; once nothing
does, the finalizer goes and so does the namespace."""

from __future__ import annotations

import json

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from tests.support.builders import build_test_pod
from tests.support.waiting import store_until

NODE = "cn-hangzhou.172.16.0.17"


def _condition(namespace: dict, kind: str) -> dict:
    return next(c for c in namespace["status"]["conditions"] if c["type"] == kind)


async def test_terminating_until_its_last_pod_is_gone(api_server, core):
    """A bound pod (no kubelet here to finish it) holds the namespace in Terminating; the unbound
    one goes at once; when the bound one is removed, the namespace is finalized and removed."""
    store = api_server.store
    await core.create_namespace({"metadata": {"name": "ray"}})
    await core.create_namespaced_pod("ray", build_test_pod("bound", node=NODE))
    await core.create_namespaced_pod("ray", build_test_pod("pending"))
    reply = await core.delete_namespace("ray", _preload_content=False)
    body = json.loads(await reply.read())
    assert body["status"]["phase"] == "Terminating"
    assert body["metadata"]["deletionTimestamp"]
    assert body["spec"]["finalizers"] == ["kubernetes"]

    def remaining() -> bool:
        conditions = store.get("namespaces", "ray")["status"].get("conditions") or []
        return any(c["type"] == "NamespaceContentRemaining" for c in conditions)

    await store_until(store, remaining)
    namespace = store.get("namespaces", "ray")
    assert _condition(namespace, "NamespaceContentRemaining") == {
        "type": "NamespaceContentRemaining",
        "status": "True",
        "lastTransitionTime": namespace["metadata"]["deletionTimestamp"],
        "reason": "SomeResourcesRemain",
        "message": "Some resources are remaining: pods. has 1 resource instances",
    }
    assert _condition(namespace, "NamespaceDeletionContentFailure")["status"] == "False"
    pods = store.list("pods", namespace="ray")[0]
    assert [p["metadata"]["name"] for p in pods] == ["bound"]
    assert pods[0]["metadata"]["deletionTimestamp"]
    store.delete("pods", "bound", namespace="ray")  # what its kubelet does at the end

    def gone() -> bool:
        return "ray" not in {n["metadata"]["name"] for n in store.list("namespaces")[0]}

    await store_until(store, gone)
    with pytest.raises(ApiException) as caught:
        await core.read_namespace("ray")
    assert caught.value.status == 404


async def test_nothing_new_in_a_terminating_namespace(api_server, core):
    """Creates (and the eviction and binding subresources) are 403 with the admission plugin's
    message and cause; a second DELETE is 409 while the finalizer is there."""
    await core.create_namespace({"metadata": {"name": "ray"}})
    await core.create_namespaced_pod("ray", build_test_pod("bound", node=NODE))
    await core.delete_namespace("ray")
    with pytest.raises(ApiException) as caught:
        await core.create_namespaced_pod("ray", build_test_pod("late"))
    refusal = json.loads(caught.value.body)
    assert (refusal["code"], refusal["reason"]) == (403, "Forbidden")
    assert refusal["message"] == (
        'pods "late" is forbidden: unable to create new content in namespace ray because it is '
        "being terminated"
    )
    assert refusal["details"]["causes"] == [
        {
            "reason": "NamespaceTerminating",
            "message": "namespace ray is being terminated",
            "field": "metadata.namespace",
        }
    ]
    eviction = {"metadata": {"name": "bound"}}
    with pytest.raises(ApiException) as caught:
        await core.create_namespaced_pod_eviction("bound", "ray", eviction)
    assert caught.value.status == 403
    with pytest.raises(ApiException) as caught:
        await core.delete_namespace("ray")
    assert caught.value.status == 409
    message = json.loads(caught.value.body)["message"]
    assert "The system is ensuring all content is removed" in message


@pytest.mark.parametrize("name", ["default", "kube-system", "kube-public"])
async def test_immortal_namespaces_may_not_be_deleted(core, name):
    """NamespaceLifecycle's immortal namespaces: 403, even as a dry run."""
    for dry_run in (None, "All"):
        with pytest.raises(ApiException) as caught:
            await core.delete_namespace(name, dry_run=dry_run)
        refusal = json.loads(caught.value.body)
        assert refusal["code"] == 403
        assert refusal["message"] == (
            f'namespaces "{name}" is forbidden: this namespace may not be deleted'
        )


async def test_only_finalize_changes_spec_finalizers(api_server, core):
    """The namespace strategy keeps spec.finalizers on an update; the finalize subresource
    changes it, and a namespace created without it still gets `kubernetes`."""
    await core.create_namespace({"metadata": {"name": "ray"}, "spec": {"finalizers": ["x.io/y"]}})
    namespace = await core.read_namespace("ray")
    assert namespace.spec.finalizers == ["x.io/y", "kubernetes"]
    namespace.spec.finalizers = []
    updated = await core.replace_namespace("ray", namespace)
    assert updated.spec.finalizers == ["x.io/y", "kubernetes"]
    updated.spec.finalizers = ["kubernetes"]
    finalized = await core.replace_namespace_finalize("ray", updated)
    assert finalized.spec.finalizers == ["kubernetes"]
