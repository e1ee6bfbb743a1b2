"""`ray.io/v1` RayCluster through kubernetes-asyncio's CustomObjectsApi and plain HTTP: discovery,
create with the CRD's defaults, the status subresource and generation, JSON and merge patches (the
Ray autoscaler's), strategic merge refused (415), a malformed spec (422 with causes), finalizers,
selectors and watch."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from tests.support.builders import build_test_raycluster

GROUP, VERSION, PLURAL = "ray.io", "v1", "rayclusters"
MERGE = "application/merge-patch+json"


@pytest.fixture
def crs(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


async def create(crs: client.CustomObjectsApi, body: dict, namespace: str = "default") -> dict:
    return await crs.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)


async def get(crs: client.CustomObjectsApi, name: str, namespace: str = "default") -> dict:
    return await crs.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)


async def patch(crs: client.CustomObjectsApi, name: str, body, **kwargs) -> dict:
    return await crs.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, name, body, **kwargs
    )


async def test_discovery_lists_the_group_and_resource(api_server):
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{api_server.url}/apis") as response:
            groups = {group["name"]: group for group in (await response.json())["groups"]}
        async with session.get(f"{api_server.url}/apis/ray.io/v1") as response:
            resources = {r["name"]: r for r in (await response.json())["resources"]}
    assert groups["ray.io"]["preferredVersion"] == {"groupVersion": "ray.io/v1", "version": "v1"}
    cluster = resources["rayclusters"]
    assert (cluster["kind"], cluster["namespaced"], cluster["categories"]) == (
        "RayCluster",
        True,
        ["all"],
    )
    assert "shortNames" not in cluster
    assert set(cluster["verbs"]) >= {"create", "patch", "watch", "deletecollection"}
    assert resources["rayclusters/status"]["verbs"] == ["get", "patch", "update"]


async def test_create_defaults_drops_status_and_starts_generation(crs):
    body = build_test_raycluster("raycluster-kuberay")
    del body["spec"]["workerGroupSpecs"][0]["minReplicas"]
    body["spec"]["workerGroupSpecs"][0]["maxReplicas"] = None  # null: defaulted too
    body["status"] = {"state": "ready"}
    created = await create(crs, body)
    group = created["spec"]["workerGroupSpecs"][0]
    assert (group["minReplicas"], group["maxReplicas"], group["numOfHosts"]) == (0, 2147483647, 1)
    assert "status" not in created
    assert created["metadata"]["generation"] == 1
    assert (created["kind"], created["apiVersion"]) == ("RayCluster", "ray.io/v1")
    assert await get(crs, "raycluster-kuberay") == created


async def test_autoscaler_json_patches_and_generation(crs):
    """The KubeRay node provider's requests: replicas, then workersToDelete, then the clean-up;
    each spec change is a new generation."""
    await create(crs, build_test_raycluster("rc", replicas=1))
    path = "/spec/workerGroupSpecs/0"
    scaled = await patch(crs, "rc", [{"op": "replace", "path": f"{path}/replicas", "value": 3}])
    assert scaled["spec"]["workerGroupSpecs"][0]["replicas"] == 3
    assert scaled["metadata"]["generation"] == 2
    deleting = await patch(
        crs,
        "rc",
        [
            {"op": "replace", "path": f"{path}/replicas", "value": 2},
            {
                "op": "replace",
                "path": f"{path}/scaleStrategy",
                "value": {"workersToDelete": ["w1"]},
            },
        ],
    )
    assert deleting["spec"]["workerGroupSpecs"][0]["scaleStrategy"] == {"workersToDelete": ["w1"]}
    cleaned = await patch(
        crs,
        "rc",
        [{"op": "replace", "path": f"{path}/scaleStrategy", "value": {"workersToDelete": []}}],
    )
    assert cleaned["metadata"]["generation"] == 4
    labelled = await patch(crs, "rc", {"metadata": {"labels": {"a": "b"}}}, _content_type=MERGE)
    assert labelled["metadata"]["generation"] == 4  # metadata is no spec change


async def test_autoscaler_v2_patches(crs):
    """v2's merge patch of the spec (`suspend` here: the CRD in KubeRay's tree has no
    `idleSuspend`, and this server neither prunes nor refuses unknown fields), and its json patch that tests resourceVersion and adds a
    finalizer; a stale resourceVersion fails the test op with 422 and changes nothing."""
    created = await create(crs, build_test_raycluster("rc"))
    suspended = await patch(crs, "rc", {"spec": {"suspend": True}}, _content_type=MERGE)
    assert suspended["spec"]["suspend"] is True
    assert suspended["metadata"]["generation"] == 2
    guarded = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "stale"},
        {"op": "add", "path": "/metadata/finalizers", "value": ["ray.io/autoscaler"]},
    ]
    with pytest.raises(ApiException) as caught:
        await patch(crs, "rc", guarded)
    assert caught.value.status == 422
    guarded[0]["value"] = suspended["metadata"]["resourceVersion"]
    finalized = await patch(crs, "rc", guarded)
    assert finalized["metadata"]["finalizers"] == ["ray.io/autoscaler"]
    assert finalized["metadata"]["uid"] == created["metadata"]["uid"]


async def test_strategic_merge_patch_is_415(api_server):
    """A custom resource has no strategic merge keys: kube-apiserver offers it JSON and merge
    patch (and apply) only."""
    async with aiohttp.ClientSession() as session:
        url = f"{api_server.url}/apis/ray.io/v1/namespaces/default/rayclusters"
        async with session.post(url, json=build_test_raycluster("rc")) as response:
            assert response.status == 201
        async with session.patch(
            f"{url}/rc",
            data=json.dumps({"spec": {"suspend": True}}),
            headers={"Content-Type": "application/strategic-merge-patch+json"},
        ) as response:
            status = await response.json()
    assert (response.status, status["reason"]) == (415, "UnsupportedMediaType")
    assert status["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )


async def test_status_subresource_is_apart_from_the_object(crs):
    """Writes to the object keep its status; writes to /status keep all but status, and are no
    new generation."""
    await create(crs, build_test_raycluster("rc"))
    status = {"state": "ready", "desiredWorkerReplicas": 1, "availableWorkerReplicas": 1}
    written = await crs.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        "default",
        PLURAL,
        "rc",
        {"status": status, "spec": {"suspend": True}, "metadata": {"labels": {"x": "y"}}},
        _content_type=MERGE,
    )
    assert written["status"] == status
    assert "suspend" not in written["spec"]
    assert "labels" not in written["metadata"]
    assert written["metadata"]["generation"] == 1
    replaced = dict(written, status={"state": "failed"})
    replaced["spec"] = dict(written["spec"], suspend=True)
    updated = await crs.replace_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "rc", replaced
    )
    assert updated["status"] == status
    assert updated["spec"]["suspend"] is True
    assert updated["metadata"]["generation"] == 2


async def test_malformed_spec_is_422_with_every_cause(crs):
    body = build_test_raycluster("rc")
    body["spec"]["workerGroupSpecs"][0]["replicas"] = "three"
    del body["spec"]["workerGroupSpecs"][0]["groupName"]
    del body["spec"]["headGroupSpec"]["template"]
    with pytest.raises(ApiException) as caught:
        await create(crs, body)
    status = json.loads(caught.value.body)
    assert (caught.value.status, status["reason"]) == (422, "Invalid")
    assert status["details"]["group"] == "ray.io"
    assert status["details"]["kind"] == "RayCluster"
    fields = {(cause["field"], cause["reason"]) for cause in status["details"]["causes"]}
    assert fields == {
        ("spec.headGroupSpec.template", "FieldValueRequired"),
        ("spec.workerGroupSpecs[0].groupName", "FieldValueRequired"),
        ("spec.workerGroupSpecs[0].replicas", "FieldValueTypeInvalid"),
    }
    assert status["message"].startswith('RayCluster.ray.io "rc" is invalid: [')
    assert (
        'spec.workerGroupSpecs[0].replicas: Invalid value: "string": '
        'spec.workerGroupSpecs[0].replicas in body must be of type integer: "string"'
    ) in status["message"]
    missing_head = build_test_raycluster("rc")
    del missing_head["spec"]["headGroupSpec"]
    with pytest.raises(ApiException) as caught:
        await create(crs, missing_head)
    assert json.loads(caught.value.body)["message"] == (
        'RayCluster.ray.io "rc" is invalid: spec.headGroupSpec: Required value'
    )
    # an update is validated too, and a failed one changes nothing
    await create(crs, build_test_raycluster("rc"))
    with pytest.raises(ApiException) as caught:
        await patch(
            crs,
            "rc",
            [{"op": "replace", "path": "/spec/workerGroupSpecs/0/replicas", "value": "x"}],
        )
    assert caught.value.status == 422
    assert (await get(crs, "rc"))["spec"]["workerGroupSpecs"][0]["replicas"] == 1


async def test_finalizers_hold_a_deleted_cluster(crs):
    """DELETE only marks an object its finalizers hold; removing the last finalizer deletes it;
    a marked object takes no new finalizers."""
    await create(crs, build_test_raycluster("rc", finalizers=["ray.io/gcs-ft-redis-cleanup"]))
    marked = await crs.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "rc")
    assert marked["kind"] == "RayCluster"
    assert marked["metadata"]["deletionTimestamp"]
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 0
    assert marked["metadata"]["generation"] == 2
    again = await crs.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "rc")
    assert again["metadata"]["resourceVersion"] == marked["metadata"]["resourceVersion"]
    with pytest.raises(ApiException) as caught:
        await patch(crs, "rc", {"metadata": {"finalizers": ["a", "b"]}}, _content_type=MERGE)
    assert caught.value.status == 422
    assert "no new finalizers can be added if the object is being deleted" in caught.value.body
    last = await patch(crs, "rc", [{"op": "remove", "path": "/metadata/finalizers"}])
    assert last["metadata"]["name"] == "rc"
    with pytest.raises(ApiException) as caught:
        await get(crs, "rc")
    assert caught.value.status == 404
    assert json.loads(caught.value.body)["message"] == 'rayclusters.ray.io "rc" not found'


async def test_plain_delete_answers_a_status(crs):
    created = await create(crs, build_test_raycluster("rc"))
    status = await crs.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "rc")
    assert status["status"] == "Success"
    assert status["details"] == {
        "name": "rc",
        "group": "ray.io",
        "kind": "rayclusters",
        "uid": created["metadata"]["uid"],
    }


async def test_list_selectors_and_watch(crs, core):
    await core.create_namespace({"metadata": {"name": "ray"}})
    await create(crs, build_test_raycluster("a"))
    await create(
        crs, dict(build_test_raycluster("b"), metadata={"name": "b", "labels": {"t": "1"}})
    )
    await create(crs, build_test_raycluster("c"), namespace="ray")
    everywhere = await crs.list_cluster_custom_object(GROUP, VERSION, PLURAL)
    assert everywhere["kind"] == "RayClusterList"
    assert [item["metadata"]["name"] for item in everywhere["items"]] == ["a", "b", "c"]
    labelled = await crs.list_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, label_selector="t=1"
    )
    assert [item["metadata"]["name"] for item in labelled["items"]] == ["b"]
    named = await crs.list_cluster_custom_object(
        GROUP, VERSION, PLURAL, field_selector="metadata.namespace=ray"
    )
    assert [item["metadata"]["name"] for item in named["items"]] == ["c"]
    with pytest.raises(ApiException) as caught:
        await crs.list_cluster_custom_object(
            GROUP, VERSION, PLURAL, field_selector="spec.suspend=true"
        )
    assert caught.value.status == 400
    # a watch from the list's resourceVersion sees the autoscaler's patch
    rv = everywhere["metadata"]["resourceVersion"]

    async def first_event() -> dict:
        stream = watch.Watch().stream(
            crs.list_namespaced_custom_object,
            GROUP,
            VERSION,
            "default",
            PLURAL,
            resource_version=rv,
            timeout_seconds=5,
        )
        async for event in stream:
            return event
        raise AssertionError("no event")

    waiting = asyncio.ensure_future(first_event())
    await patch(
        crs, "a", [{"op": "replace", "path": "/spec/workerGroupSpecs/0/replicas", "value": 4}]
    )
    event = await asyncio.wait_for(waiting, 10)
    assert event["type"] == "MODIFIED"
    assert event["object"]["spec"]["workerGroupSpecs"][0]["replicas"] == 4


async def test_dry_run_creates_nothing(crs):
    created = await crs.create_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, build_test_raycluster("rc"), dry_run="All"
    )
    assert created["metadata"]["generation"] == 1
    assert not (await crs.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL))["items"]


async def test_deletecollection_marks_what_finalizers_hold(crs):
    await create(crs, build_test_raycluster("a"))
    await create(crs, build_test_raycluster("b", finalizers=["x.io/y"]))
    await crs.delete_collection_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)
    left = (await crs.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL))["items"]
    assert [item["metadata"]["name"] for item in left] == ["b"]
    assert left[0]["metadata"]["deletionTimestamp"]


async def test_finalizers_hold_a_lease_too(api_client):
    """The generic store's finalizer handling is not the custom resource's own: a Lease with a
    finalizer is marked on DELETE and goes with its last finalizer."""
    leases = client.CoordinationV1Api(api_client)
    body = {"metadata": {"name": "l", "finalizers": ["x.io/y"]}, "spec": {}}
    await leases.create_namespaced_lease("default", body)
    await leases.delete_namespaced_lease("l", "default")
    marked = await leases.read_namespaced_lease("l", "default")
    assert marked.metadata.deletion_timestamp is not None
    await leases.patch_namespaced_lease(
        "l", "default", [{"op": "remove", "path": "/metadata/finalizers"}]
    )
    with pytest.raises(ApiException) as caught:
        await leases.read_namespaced_lease("l", "default")
    assert caught.value.status == 404
