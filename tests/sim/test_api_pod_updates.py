"""Pod update validation through kubernetes-asyncio: what an existing pod may change, the
apiserver's 422 message for what it may not, and optimistic concurrency on replace."""

from __future__ import annotations

import json

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from tests.support.builders import build_test_pod

FORBIDDEN_PREFIX = (
    'Pod "w" is invalid: spec: Forbidden: pod updates may not change fields other than '
    "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
    "`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)


def pod(*, gates: list[str] | None = None) -> dict:
    spec: dict = {"activeDeadlineSeconds": 600}
    if gates:
        spec["schedulingGates"] = [{"name": gate} for gate in gates]
    return build_test_pod("w", labels={"app": "ray"}, cpu="1", **spec)


async def test_resource_change_is_forbidden_with_apiserver_message(core):
    """Changing a container's requests is 422 Invalid with the apiserver's Forbidden message."""
    await core.create_namespaced_pod("default", pod())
    with pytest.raises(ApiException) as caught:
        await core.patch_namespaced_pod(
            "w", "default",
            [{"op": "replace", "path": "/spec/containers/0/resources/requests/cpu", "value": "2"}],
        )  # fmt: skip
    assert caught.value.status == 422
    status = json.loads(caught.value.body)
    assert status["reason"] == "Invalid"
    assert status["message"].startswith(FORBIDDEN_PREFIX)
    assert "spec.containers[0].resources.requests.cpu" in status["message"]


async def test_node_name_change_is_forbidden(core):
    """Binding by writing spec.nodeName through an update is refused."""
    await core.create_namespaced_pod("default", pod())
    with pytest.raises(ApiException) as caught:
        await core.patch_namespaced_pod("w", "default", {"spec": {"nodeName": "n1"}})
    assert caught.value.status == 422


async def test_allowed_changes_pass(core):
    """Image, labels, annotations, a shorter activeDeadlineSeconds and an added toleration are accepted."""
    created = await core.create_namespaced_pod("default", pod())
    toleration = {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}
    patched = await core.patch_namespaced_pod(
        "w",
        "default",
        [
            {"op": "replace", "path": "/spec/containers/0/image", "value": "busybox:2"},
            {"op": "add", "path": "/metadata/labels/tier", "value": "worker"},
            {"op": "add", "path": "/metadata/annotations", "value": {"note": "x"}},
            {"op": "replace", "path": "/spec/activeDeadlineSeconds", "value": 300},
            {"op": "add", "path": "/spec/tolerations/-", "value": toleration},
        ],
    )
    assert patched.spec.containers[0].image == "busybox:2"
    assert patched.metadata.labels == {"app": "ray", "tier": "worker"}
    assert patched.spec.active_deadline_seconds == 300
    assert len(patched.spec.tolerations) == len(created.spec.tolerations) + 1


async def test_longer_active_deadline_is_invalid(core):
    """activeDeadlineSeconds may only shrink."""
    await core.create_namespaced_pod("default", pod())
    with pytest.raises(ApiException) as caught:
        await core.patch_namespaced_pod("w", "default", {"spec": {"activeDeadlineSeconds": 900}})
    assert caught.value.status == 422
    assert "spec.activeDeadlineSeconds" in json.loads(caught.value.body)["message"]


async def test_scheduling_gates_can_only_be_removed(core):
    """Removing a scheduling gate is accepted; adding one is 422."""
    await core.create_namespaced_pod("default", pod(gates=["a", "b"]))
    patched = await core.patch_namespaced_pod(
        "w", "default", [{"op": "remove", "path": "/spec/schedulingGates/0"}]
    )
    assert [g.name for g in patched.spec.scheduling_gates] == ["b"]
    with pytest.raises(ApiException) as caught:
        await core.patch_namespaced_pod(
            "w",
            "default",
            [{"op": "add", "path": "/spec/schedulingGates/-", "value": {"name": "c"}}],
        )
    assert caught.value.status == 422
    assert "spec.schedulingGates" in json.loads(caught.value.body)["message"]


async def test_replace_with_stale_version_is_409(core):
    """PUT with an old resourceVersion is 409 Conflict; with the current one it succeeds."""
    created = await core.create_namespaced_pod("default", pod())
    await core.patch_namespaced_pod("w", "default", {"metadata": {"labels": {"bump": "1"}}})
    created.metadata.labels = {"app": "web"}
    with pytest.raises(ApiException) as caught:
        await core.replace_namespaced_pod("w", "default", created)
    assert caught.value.status == 409
    assert json.loads(caught.value.body)["reason"] == "Conflict"
    current = await core.read_namespaced_pod("w", "default")
    current.metadata.labels = {"app": "web"}
    replaced = await core.replace_namespaced_pod("w", "default", current)
    assert replaced.metadata.labels == {"app": "web"}


async def test_status_sent_to_main_endpoint_is_ignored(core):
    """An update through the pod itself keeps the stored status."""
    await core.create_namespaced_pod("default", pod())
    patched = await core.patch_namespaced_pod(
        "w", "default", {"metadata": {"labels": {"x": "y"}}, "status": {"phase": "Running"}}
    )
    assert patched.status.phase == "Pending"


async def test_pod_without_containers_is_invalid(core):
    """Creating a pod with no containers is 422 Invalid."""
    with pytest.raises(ApiException) as caught:
        await core.create_namespaced_pod(
            "default", {"metadata": {"name": "empty"}, "spec": {"containers": []}}
        )
    assert caught.value.status == 422
    assert (
        json.loads(caught.value.body)["message"]
        == 'Pod "empty" is invalid: spec.containers: Required value'
    )


@pytest.mark.parametrize("name", ["P", "w_1", "-w", "w."])
async def test_a_pod_name_that_is_no_dns_subdomain_is_invalid(core, name):
    """kube-apiserver's ValidatePodName: a lowercase RFC 1123 subdomain, with its message."""
    body = {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    with pytest.raises(ApiException) as caught:
        await core.create_namespaced_pod("default", body)
    assert caught.value.status == 422
    message = json.loads(caught.value.body)["message"]
    assert message.startswith(
        f'Pod "{name}" is invalid: metadata.name: Invalid value: "{name}": a lowercase RFC 1123 '
        "subdomain must consist of lower case alphanumeric characters"
    )


async def test_a_dotted_lowercase_pod_name_is_valid(core):
    body = {"metadata": {"name": "w-1.a"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    assert (await core.create_namespaced_pod("default", body)).metadata.name == "w-1.a"
