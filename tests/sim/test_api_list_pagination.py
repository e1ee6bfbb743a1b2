"""LIST through kubernetes-asyncio: limit/continue over one snapshot, selectors, Status errors."""

from __future__ import annotations

import json

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from tests.support.builders import build_test_pod


def pod(name: str, *, labels: dict[str, str] | None = None, node: str | None = None) -> dict:
    return build_test_pod(name, labels=labels or {}, node=node)


async def test_pages_cover_one_snapshot(api_server, core):
    """Pages of 4 return all 10 pods once, in name order, ignoring pods created mid-way."""
    for index in range(10):
        await core.create_namespaced_pod("default", pod(f"p{index:02d}"))
    first = await core.list_namespaced_pod("default", limit=4)
    names = [p.metadata.name for p in first.items]
    assert first.metadata.remaining_item_count == 6
    api_server.store.create("pods", pod("p00-late"), namespace="default")
    token = first.metadata._continue
    while token:
        page = await core.list_namespaced_pod("default", limit=4, _continue=token)
        assert page.metadata.resource_version == first.metadata.resource_version
        names += [p.metadata.name for p in page.items]
        token = page.metadata._continue
    assert names == [f"p{index:02d}" for index in range(10)]


async def test_list_items_is_empty_list_not_null(core):
    """An empty LIST has `items: []` and a resourceVersion."""
    response = await core.list_namespaced_pod("kube-system", _preload_content=False)
    body = json.loads(await response.read())
    assert body["items"] == []
    assert body["kind"] == "PodList"
    assert int(body["metadata"]["resourceVersion"]) > 0


async def test_continue_token_expires_after_compaction(api_server, core):
    """A continue token older than the compacted history is 410 Expired."""
    for index in range(3):
        await core.create_namespaced_pod("default", pod(f"p{index}"))
    first = await core.list_namespaced_pod("default", limit=1)
    await core.create_namespaced_pod("default", pod("later"))
    api_server.store.compact()
    with pytest.raises(ApiException) as caught:
        await core.list_namespaced_pod("default", limit=1, _continue=first.metadata._continue)
    assert caught.value.status == 410
    assert json.loads(caught.value.body)["reason"] == "Expired"


async def test_label_selector_operators(core):
    """=, !=, in, notin, exists and !exists select as the apiserver does."""
    await core.create_namespaced_pod("default", pod("a", labels={"app": "ray", "tier": "head"}))
    await core.create_namespaced_pod("default", pod("b", labels={"app": "ray", "tier": "worker"}))
    await core.create_namespaced_pod("default", pod("c", labels={"app": "web"}))

    async def names(selector: str) -> list[str]:
        listed = await core.list_namespaced_pod("default", label_selector=selector)
        return sorted(p.metadata.name for p in listed.items)

    assert await names("app=ray") == ["a", "b"]
    assert await names("app==ray,tier!=head") == ["b"]
    assert await names("tier!=head") == ["b", "c"]
    assert await names("tier in (head, worker)") == ["a", "b"]
    assert await names("tier notin (head)") == ["b", "c"]
    assert await names("tier") == ["a", "b"]
    assert await names("!tier") == ["c"]


async def test_field_selectors_across_namespaces(core):
    """spec.nodeName= selects unbound pods; metadata.namespace and != work on the all-namespaces list."""
    await core.create_namespace({"metadata": {"name": "ray"}})
    await core.create_namespaced_pod("default", pod("bound", node="n1"))
    await core.create_namespaced_pod("default", pod("pending"))
    await core.create_namespaced_pod("ray", pod("other"))
    unbound = await core.list_pod_for_all_namespaces(field_selector="spec.nodeName=")
    assert sorted(p.metadata.name for p in unbound.items) == ["other", "pending"]
    elsewhere = await core.list_pod_for_all_namespaces(field_selector="metadata.namespace!=default")
    assert [p.metadata.name for p in elsewhere.items] == ["other"]
    on_node = await core.list_pod_for_all_namespaces(
        field_selector="spec.nodeName==n1,status.phase=Pending"
    )
    assert [p.metadata.name for p in on_node.items] == ["bound"]


async def test_unknown_field_label_is_400(core):
    """An unsupported field selector is a 400 Status "field label not supported"."""
    with pytest.raises(ApiException) as caught:
        await core.list_namespaced_pod("default", field_selector="spec.hostname=x")
    assert caught.value.status == 400
    status = json.loads(caught.value.body)
    assert status["kind"] == "Status"
    assert status["message"] == "field label not supported: spec.hostname"


async def test_malformed_label_selector_is_400(core):
    """A label selector that does not parse is a 400 BadRequest Status."""
    with pytest.raises(ApiException) as caught:
        await core.list_namespaced_pod("default", label_selector="app in ray")
    assert caught.value.status == 400
    assert json.loads(caught.value.body)["reason"] == "BadRequest"


async def test_missing_object_is_404_status(core):
    """Reading a pod that does not exist is a 404 NotFound Status naming it."""
    with pytest.raises(ApiException) as caught:
        await core.read_namespaced_pod("ghost", "default")
    assert caught.value.status == 404
    status = json.loads(caught.value.body)
    assert (status["reason"], status["message"]) == ("NotFound", 'pods "ghost" not found')


async def test_create_conflicts_and_missing_namespace(core):
    """A second create is 409 AlreadyExists; a pod in a missing namespace is 404."""
    await core.create_namespaced_pod("default", pod("twice"))
    with pytest.raises(ApiException) as caught:
        await core.create_namespaced_pod("default", pod("twice"))
    assert caught.value.status == 409
    assert json.loads(caught.value.body)["reason"] == "AlreadyExists"
    with pytest.raises(ApiException) as missing:
        await core.create_namespaced_pod("nowhere", pod("lost"))
    assert missing.value.status == 404


async def test_generate_name_and_defaults(core):
    """generateName gets a 5-character suffix; the new pod is Pending with a uid and default tolerations."""
    created = await core.create_namespaced_pod(
        "default", {"metadata": {"generateName": "worker-"}, "spec": pod("x")["spec"]}
    )
    assert created.metadata.name.startswith("worker-") and len(created.metadata.name) == 12
    assert created.metadata.uid and created.metadata.creation_timestamp
    assert created.status.phase == "Pending"
    keys = {t.key for t in created.spec.tolerations}
    assert keys == {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"}
