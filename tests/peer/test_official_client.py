"""The official `kubernetes` Python client (pinned in pyproject's dev extra) against `sim serve`:
label-selected, paginated lists; watches resumed from a resourceVersion; the three patch types;
and policy/v1 eviction, allowed and refused by a PodDisruptionBudget. Nobody here wrote the client,
so these are the calls a user's program makes, on the wire it sends."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from tests.peer.pods import parked, pod

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
DEMO_INSTANCE_TYPE = "ecs.g7.xlarge"  # the bare server's one node (agent/sim/cli.py)


def names(pods: Any) -> list[str]:
    return [item.metadata.name for item in pods.items]


def events(stream: Any, count: int) -> list[tuple[str, str]]:
    """The first `count` (type, pod name) pairs of a Watch stream (the server's timeoutSeconds
    bounds the wait)."""
    seen: list[tuple[str, str]] = []
    for event in stream:
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == count:
            break
    return seen


def eventually(check: Any, *, timeout: float = 10.0) -> Any:
    """Poll `check()` until it returns something truthy (bounded): the client offers no push."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {check}")
        time.sleep(0.05)


def test_label_selected_list_in_pages_is_one_snapshot(core: client.CoreV1Api, namespace: str):
    """limit/continue pages of a label-selected list add up to the whole selection, and a pod
    created between pages is not in them: the continue token reads the first page's snapshot
    (ListOptions.limit: "identical to issuing a single list call without a limit")."""
    for index in range(5):
        core.create_namespaced_pod(namespace, parked(f"x{index}", app="x"))
    core.create_namespaced_pod(namespace, parked("y0", app="y"))
    pages = [core.list_namespaced_pod(namespace, label_selector="app=x", limit=2)]
    core.create_namespaced_pod(namespace, parked("x5", app="x"))
    while pages[-1].metadata._continue:
        token = pages[-1].metadata._continue
        pages.append(core.list_namespaced_pod(namespace, label_selector="app=x", limit=2, _continue=token))  # fmt: skip
    assert [names(page) for page in pages] == [["x0", "x1"], ["x2", "x3"], ["x4"]]
    assert names(core.list_namespaced_pod(namespace, label_selector="app=x")) == [
        f"x{index}" for index in range(6)
    ]
    set_based = core.list_namespaced_pod(namespace, label_selector="app in (x,y),app notin (x)")
    assert names(set_based) == ["y0"]


def test_nodes_by_label_selector(core: client.CoreV1Api):
    """Nodes filter by label like pods: the demo node by its instance type, none by another."""
    listed = core.list_node(label_selector=f"node.kubernetes.io/instance-type={DEMO_INSTANCE_TYPE}")
    assert len(listed.items) == 1
    assert listed.items[0].status.allocatable["cpu"]
    assert core.list_node(label_selector="node.kubernetes.io/instance-type=none").items == []
    assert len(core.list_node(limit=1).items) == 1


def test_watch_from_a_listed_version_then_resume_from_the_last_event(
    core: client.CoreV1Api, namespace: str
):
    """A watch from a LIST's resourceVersion replays exactly the later changes; a second watch
    from the last event's version (what Watch keeps in `resource_version`) starts after it."""
    core.create_namespaced_pod(namespace, parked("a", app="w"))
    listed = core.list_namespaced_pod(namespace)
    core.create_namespaced_pod(namespace, parked("b", app="w"))
    core.patch_namespaced_pod("a", namespace, {"metadata": {"labels": {"seen": "yes"}}}, _content_type=MERGE_PATCH)  # fmt: skip
    core.delete_namespaced_pod("b", namespace, grace_period_seconds=0)
    first = watch.Watch()
    stream = first.stream(
        core.list_namespaced_pod, namespace,
        resource_version=listed.metadata.resource_version, timeout_seconds=5,
    )  # fmt: skip
    assert events(stream, 3) == [("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]
    first.stop()
    resume_from = first.resource_version
    assert int(resume_from) > int(listed.metadata.resource_version)

    core.create_namespaced_pod(namespace, parked("c", app="w"))
    second = watch.Watch()
    stream = second.stream(core.list_namespaced_pod, namespace, resource_version=resume_from, timeout_seconds=5)  # fmt: skip
    assert events(stream, 1) == [("ADDED", "c")]
    second.stop()


def test_watch_with_label_selector_sees_relabelling_as_delete_and_add(
    core: client.CoreV1Api, namespace: str
):
    """Under a label selector, a pod relabelled out of it arrives as DELETED and back as ADDED."""
    core.create_namespaced_pod(namespace, parked("r", app="in"))
    listed = core.list_namespaced_pod(namespace, label_selector="app=in")
    for value in ("out", "in"):
        core.patch_namespaced_pod("r", namespace, {"metadata": {"labels": {"app": value}}}, _content_type=MERGE_PATCH)  # fmt: skip
    stream = watch.Watch().stream(
        core.list_namespaced_pod, namespace, label_selector="app=in",
        resource_version=listed.metadata.resource_version, timeout_seconds=5,
    )  # fmt: skip
    assert events(stream, 2) == [("DELETED", "r"), ("ADDED", "r")]


def test_json_patch_merge_patch_and_strategic_merge_patch(core: client.CoreV1Api, namespace: str):
    """Each Content-Type gets its own semantics: RFC 6902 operations, RFC 7386 merge (null
    deletes, lists replaced), and strategic merge (containers merged by name)."""
    core.create_namespaced_pod(namespace, pod("p", labels={"app": "p"}, node="peer-absent-node", containers=("main", "side")))  # fmt: skip
    patched = core.patch_namespaced_pod(
        "p", namespace,
        [{"op": "test", "path": "/metadata/labels/app", "value": "p"},
         {"op": "add", "path": "/metadata/labels/tier", "value": "a"}],
        _content_type=JSON_PATCH,
    )  # fmt: skip
    assert patched.metadata.labels == {"app": "p", "tier": "a"}
    with pytest.raises(ApiException) as failed_test:
        core.patch_namespaced_pod("p", namespace, [{"op": "test", "path": "/metadata/labels/app", "value": "q"}], _content_type=JSON_PATCH)  # fmt: skip
    assert failed_test.value.status == 422

    patched = core.patch_namespaced_pod("p", namespace, {"metadata": {"labels": {"tier": None, "m": "1"}}}, _content_type=MERGE_PATCH)  # fmt: skip
    assert patched.metadata.labels == {"app": "p", "m": "1"}

    side_image = {"spec": {"containers": [{"name": "side", "image": "busybox:1.37"}]}}
    patched = core.patch_namespaced_pod("p", namespace, side_image, _content_type=STRATEGIC)
    assert [(c.name, c.image) for c in patched.spec.containers] == [
        ("main", "busybox"),
        ("side", "busybox:1.37"),
    ]
    # the same body as a merge patch replaces the list, dropping "main": a pod's containers
    # cannot be removed, so the update is invalid
    with pytest.raises(ApiException) as replaced:
        core.patch_namespaced_pod("p", namespace, side_image, _content_type=MERGE_PATCH)
    assert replaced.value.status == 422
    assert len(core.read_namespaced_pod("p", namespace).spec.containers) == 2


def running(core: client.CoreV1Api, namespace: str, name: str) -> client.V1Pod:
    def ready() -> client.V1Pod | None:
        current = core.read_namespaced_pod(name, namespace)
        conditions = {c.type: c.status for c in current.status.conditions or ()}
        return current if conditions.get("Ready") == "True" else None

    found: client.V1Pod = eventually(ready)
    return found


def eviction(namespace: str, name: str) -> client.V1Eviction:
    return client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace=namespace))


def gone(core: client.CoreV1Api, namespace: str, name: str) -> bool:
    try:
        core.read_namespaced_pod(name, namespace)
    except ApiException as error:
        return error.status == 404
    return False


def test_eviction_deletes_gracefully(core: client.CoreV1Api, namespace: str):
    """An eviction of a running pod with no budget is granted: the pod gets a deletionTimestamp
    with its grace period, and is gone once the kubelet has stopped it."""
    core.create_namespaced_pod(namespace, pod("e", labels={"app": "e"}, cpu="100m"))
    running(core, namespace, "e")
    core.create_namespaced_pod_eviction("e", namespace, eviction(namespace, "e"))
    terminating = core.read_namespaced_pod("e", namespace)
    assert terminating.metadata.deletion_timestamp is not None
    assert terminating.metadata.deletion_grace_period_seconds == 30
    eventually(lambda: gone(core, namespace, "e"))


def test_eviction_refused_by_a_disruption_budget(
    api_client: client.ApiClient, core: client.CoreV1Api, namespace: str
):
    """With minAvailable covering every healthy pod, the eviction is 429 TooManyRequests with a
    DisruptionBudget cause, and the pod stays (pkg/registry/core/pod/storage/eviction.go)."""
    policy = client.PolicyV1Api(api_client)
    core.create_namespaced_pod(namespace, pod("g", labels={"app": "g"}, cpu="100m"))
    running(core, namespace, "g")
    budget = client.V1PodDisruptionBudget(
        metadata=client.V1ObjectMeta(name="g"),
        spec=client.V1PodDisruptionBudgetSpec(
            min_available=1, selector=client.V1LabelSelector(match_labels={"app": "g"})
        ),
    )
    policy.create_namespaced_pod_disruption_budget(namespace, budget)

    def synced() -> bool:
        status = policy.read_namespaced_pod_disruption_budget("g", namespace).status
        return status.observed_generation == 1 and status.current_healthy == 1

    eventually(synced)
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod_eviction("g", namespace, eviction(namespace, "g"))
    assert refused.value.status == 429
    assert "disruption budget" in refused.value.body
    assert core.read_namespaced_pod("g", namespace).metadata.deletion_timestamp is None
