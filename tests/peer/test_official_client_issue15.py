"""The official `kubernetes` client on what issue 15 adds to the simulated API server, written to
kube-apiserver's behaviour: dryRun=All writes nothing, deletecollection with selectors, the
scheduler's Events (FailedScheduling, then Scheduled), namespaces that terminate in phases, and
GET /version/ (this client's VersionApi sends the trailing slash)."""

from __future__ import annotations

import json
import uuid

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from tests.peer.pods import parked, pod
from tests.peer.test_official_client import MERGE_PATCH, eventually, gone, names, running


def test_version_with_trailing_slash(api_client: client.ApiClient):
    """VersionApi.get_code() requests /version/; kube-apiserver serves it as /version."""
    info = client.VersionApi(api_client).get_code()
    assert info.git_version.startswith("v1.")
    assert info.major == "1"


def test_dry_run_all_changes_nothing(core: client.CoreV1Api, namespace: str):
    """dryRun=All on create, patch, delete and eviction answers with the would-be object and
    stores nothing: no object, no change, no watch event (apiserver's DryRunnableStorage)."""
    core.create_namespaced_pod(namespace, parked("kept", app="kept"))
    before = core.list_namespaced_pod(namespace)
    kept = core.read_namespaced_pod("kept", namespace)

    preview = core.create_namespaced_pod(namespace, parked("ghost", app="ghost"), dry_run="All")
    assert preview.metadata.name == "ghost"
    assert gone(core, namespace, "ghost")
    with pytest.raises(ApiException) as exists:  # a dry-run create still checks the name
        core.create_namespaced_pod(namespace, parked("kept"), dry_run="All")
    assert exists.value.status == 409

    patched = core.patch_namespaced_pod("kept", namespace, {"metadata": {"labels": {"dry": "run"}}}, dry_run="All", _content_type=MERGE_PATCH)  # fmt: skip
    assert patched.metadata.labels == {"app": "kept", "dry": "run"}

    core.delete_namespaced_pod("kept", namespace, dry_run="All")
    eviction = client.V1Eviction(metadata=client.V1ObjectMeta(name="kept", namespace=namespace))
    core.create_namespaced_pod_eviction("kept", namespace, eviction, dry_run="All")

    after = core.read_namespaced_pod("kept", namespace)
    assert after.metadata.resource_version == kept.metadata.resource_version
    assert after.metadata.labels == {"app": "kept"}
    assert after.metadata.deletion_timestamp is None
    # nothing happened in this namespace since `before`: a watch from it starts with the marker
    core.create_namespaced_pod(namespace, parked("marker"))
    stream = watch.Watch().stream(core.list_namespaced_pod, namespace, resource_version=before.metadata.resource_version, timeout_seconds=5)  # fmt: skip
    first = next(iter(stream))
    assert (first["type"], first["object"].metadata.name) == ("ADDED", "marker")


def test_unknown_dry_run_value_is_refused_as_invalid_options(
    core: client.CoreV1Api, namespace: str
):
    """Only "All" is a dryRun value; anything else is refused before any change: 422 Invalid
    CreateOptions (the create handler's ValidateCreateOptions, apiserver endpoints/handlers/
    create.go: errors.NewInvalid, not a 400)."""
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(namespace, parked("p"), dry_run="Everything")
    assert refused.value.status == 422
    assert json.loads(refused.value.body)["reason"] == "Invalid"
    assert gone(core, namespace, "p")


def test_deletecollection_by_label_and_field_selector(core: client.CoreV1Api, namespace: str):
    """DELETE on the pod collection deletes exactly the selected pods and answers with them as a
    PodList (the generic registry's DeleteCollection)."""
    for name, app in (("x0", "x"), ("x1", "x"), ("x2", "x"), ("y0", "y"), ("y1", "y")):
        # unschedulable, so unbound: kube-apiserver deletes an unbound pod at once
        core.create_namespaced_pod(namespace, pod(name, labels={"app": app}, cpu="64"))
    response = core.delete_collection_namespaced_pod(namespace, label_selector="app=x", _preload_content=False)  # fmt: skip
    deleted = json.loads(response.data)
    assert deleted["kind"] == "PodList"
    assert sorted(item["metadata"]["name"] for item in deleted["items"]) == ["x0", "x1", "x2"]
    eventually(lambda: not core.list_namespaced_pod(namespace, label_selector="app=x").items)
    core.delete_collection_namespaced_pod(namespace, field_selector="metadata.name=y1")
    eventually(lambda: names(core.list_namespaced_pod(namespace)) == ["y0"])


def scheduler_events(core: client.CoreV1Api, namespace: str, name: str, reason: str) -> list:
    listed = core.list_namespaced_event(
        namespace,
        field_selector=f"involvedObject.kind=Pod,involvedObject.name={name},reason={reason}",
    )
    return list(listed.items)


def test_failed_scheduling_then_scheduled_events(core: client.CoreV1Api, namespace: str):
    """A pod no node fits gets kube-scheduler's Warning FailedScheduling ("0/1 nodes are
    available: ..."); once the node is labelled to fit, Normal Scheduled names the node."""
    key = f"peer.example/{uuid.uuid4().hex[:8]}"
    waiting = pod("waiting", cpu="100m")
    waiting.spec.node_selector = {key: "yes"}
    core.create_namespaced_pod(namespace, waiting)
    failed = eventually(lambda: scheduler_events(core, namespace, "waiting", "FailedScheduling"))
    assert failed[0].type == "Warning"
    assert failed[0].message.startswith("0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.")  # fmt: skip
    assert "default-scheduler" in (failed[0].reporting_component, failed[0].source.component)

    node = core.list_node().items[0].metadata.name
    core.patch_node(node, {"metadata": {"labels": {key: "yes"}}}, _content_type=MERGE_PATCH)
    try:
        scheduled = eventually(lambda: scheduler_events(core, namespace, "waiting", "Scheduled"))
    finally:
        core.patch_node(node, {"metadata": {"labels": {key: None}}}, _content_type=MERGE_PATCH)
    assert scheduled[0].type == "Normal"
    assert scheduled[0].message == f"Successfully assigned {namespace}/waiting to {node}"
    assert running(core, namespace, "waiting").spec.node_name == node


def test_namespace_terminates_in_phases(core: client.CoreV1Api, namespace: str):
    """Deleting a namespace marks it Terminating, its pods are deleted with their grace periods,
    then the namespace itself goes (the namespace controller's finalization)."""
    core.create_namespaced_pod(namespace, pod("resident", cpu="100m"))
    running(core, namespace, "resident")
    core.delete_namespace(namespace)
    terminating = core.read_namespace(namespace)
    assert terminating.status.phase == "Terminating"
    assert terminating.metadata.deletion_timestamp is not None
    with pytest.raises(ApiException) as refused:  # no new content in a terminating namespace
        core.create_namespaced_pod(namespace, parked("late"))
    assert refused.value.status == 403

    def namespace_gone() -> bool:
        try:
            core.read_namespace(namespace)
        except ApiException as error:
            return error.status == 404
        return False

    eventually(namespace_gone)
    assert gone(core, namespace, "resident")
