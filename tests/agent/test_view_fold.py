"""The cluster view folds raw pod and node events into pending pods, nodes and ECI counts."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from agent.ingest.raw import effective_requests
from agent.ingest.view import ClusterView, unschedulable_condition
from agent.model import PendingPod
from functions.quantity import parse_quantity

UNSCHEDULABLE = {
    "type": "PodScheduled",
    "status": "False",
    "reason": "Unschedulable",
    "message": "0/3 nodes are available: 3 Insufficient cpu.",
    "lastTransitionTime": "2026-11-29T04:59:58Z",
}


def pod(
    uid: str = "u-1",
    *,
    rv: str = "10",
    containers: list[dict] | None = None,
    conditions: list[dict] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {
            "uid": uid,
            "name": f"worker-{uid}",
            "namespace": "ray",
            "resourceVersion": rv,
            "labels": {"ray.io/cluster": "c", "ray.io/group": "g", "ray.io/node-type": "worker"},
            "annotations": {"ray.io/ft-enabled": "false"},
        },
        "spec": {
            "containers": containers
            if containers is not None
            else [{"name": "ray", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}],
            **spec,
        },
        "status": {
            "phase": "Pending",
            "conditions": [UNSCHEDULABLE] if conditions is None else conditions,
        },
    }


def node(name: str, *, ready: bool = True, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "kind": "Node",
        "metadata": {"name": name, "resourceVersion": "5", "labels": labels or {}},
        "spec": {},
        "status": {
            "allocatable": {"cpu": "3900m", "memory": "14Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def bound(uid: str, node_name: str, phase: str = "Running") -> dict[str, Any]:
    return {
        "metadata": {"uid": uid, "name": uid, "namespace": "ray", "resourceVersion": "1"},
        "spec": {"nodeName": node_name},
        "status": {"phase": phase},
    }


def container(
    cpu: str | None = None, memory: str | None = None, *, limits: dict[str, str] | None = None
) -> dict[str, Any]:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    resources: dict[str, Any] = {"requests": requests}
    if limits:
        resources["limits"] = limits
    return {"name": "c", "resources": resources}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"containers": [container("1", "1Gi")]}, {"cpu": "1", "memory": "1Gi"}),
        (
            {"containers": [container("500m", "512Mi"), container("250m", "512Mi")]},
            {"cpu": "750m", "memory": str(1024**3)},
        ),
        (
            {"containers": [container("1", "1Gi")], "initContainers": [container("2", "256Mi")]},
            {"cpu": "2", "memory": "1Gi"},
        ),
        (
            {"containers": [container("1")], "initContainers": [container("500m"), container("3")]},
            {"cpu": "3"},
        ),
        (
            {"containers": [container(limits={"cpu": "2", "nvidia.com/gpu": "1"})]},
            {"cpu": "2", "nvidia.com/gpu": "1"},
        ),
        ({"containers": [container("1")], "overhead": {"cpu": "250m"}}, {"cpu": "1250m"}),
        ({"containers": [{"name": "no-resources"}]}, {}),
    ],
    ids=[
        "one-container",
        "sum",
        "init-larger-cpu",
        "largest-init",
        "limits-stand-in",
        "overhead",
        "none",
    ],
)
def test_effective_requests_table(spec: dict[str, Any], expected: dict[str, str]) -> None:
    """Effective request = max(sum of containers, largest init container) + overhead."""
    computed = effective_requests(spec)
    assert computed is not None
    assert {k: parse_quantity(v) for k, v in computed.items()} == {
        k: parse_quantity(v) for k, v in expected.items()
    }


def test_unparsable_quantity_is_not_tracked() -> None:
    """A pod with a malformed quantity is ignored instead of poisoning the whole decision."""
    view = ClusterView()
    view.apply_pod("ADDED", pod(containers=[container("lots")]))
    assert view.pending == {}


@pytest.mark.parametrize(
    ("mutate", "tracked"),
    [
        (lambda p: None, True),
        (lambda p: p["status"].update(conditions=[]), False),
        (
            lambda p: p["status"].update(
                conditions=[{**UNSCHEDULABLE, "reason": "SchedulingGated"}]
            ),
            False,
        ),
        (lambda p: p["status"].update(conditions=[{**UNSCHEDULABLE, "status": "True"}]), False),
        (lambda p: p["spec"].update(nodeName="n1"), False),
        (lambda p: p["status"].update(phase="Running"), False),
        (lambda p: p["metadata"].update(deletionTimestamp="2026-11-29T05:00:00Z"), False),
    ],
    ids=["unschedulable", "no-condition", "gated", "scheduled", "bound", "running", "deleting"],
)
def test_unschedulable_detection(mutate: Any, tracked: bool) -> None:
    """Only live, unbound, Pending pods with PodScheduled=False/Unschedulable are tracked."""
    raw = pod()
    mutate(raw)
    assert (unschedulable_condition(raw) is not None) is tracked
    view = ClusterView()
    view.apply_pod("ADDED", raw)
    assert (raw["metadata"]["uid"] in view.pending) is tracked


def test_pending_pod_fields_follow_the_contract() -> None:
    """The tracked pod carries what decide/v1 needs: volumes, privilege, since, message."""
    raw = pod(
        hostNetwork=True,
        nodeSelector={"gpu": "a100"},
        tolerations=[{"key": "k", "operator": "Exists"}],
        affinity={"nodeAffinity": {}},
        volumes=[
            {"name": "a", "emptyDir": {}},
            {"name": "b", "hostPath": {"path": "/x"}},
            {"name": "c", "emptyDir": {}},
        ],
        initContainers=[{"name": "i", "securityContext": {"privileged": True}}],
    )
    view = ClusterView()
    view.apply_pod("ADDED", raw)
    tracked = view.pending["u-1"]
    assert tracked.volume_types == ("emptyDir", "hostPath")
    assert tracked.privileged is True
    assert tracked.host_network is True
    assert tracked.node_selector == {"gpu": "a100"}
    assert tracked.tolerations == ({"key": "k", "operator": "Exists"},)
    assert tracked.unschedulable_since == "2026-11-29T04:59:58Z"
    assert tracked.message == UNSCHEDULABLE["message"]
    assert tracked.resource_version == "10"


def test_deleted_and_bound_pods_leave_the_view() -> None:
    """DELETED (or leaving the unbound selector) drops a pending pod."""
    view = ClusterView()
    view.apply_pod("ADDED", pod("a"))
    view.apply_pod("ADDED", pod("b"))
    view.apply_pod("DELETED", pod("a"))
    scheduled = pod("b", rv="11")
    scheduled["spec"]["nodeName"] = "n1"
    view.apply_pod("MODIFIED", scheduled)
    assert view.pending == {}


@pytest.mark.parametrize("stream", ["bound", "node_pods_sink"])
@pytest.mark.parametrize("bound_first", [False, True], ids=["unbound-first", "bound-first"])
def test_a_pod_a_bound_stream_shows_is_not_pending(stream: str, bound_first: bool) -> None:
    """The streams are separate reads: a pod bound between them is in the unbound one as
    Unschedulable and in a bound one on its node. Whichever the view folds first, the pod is
    bound, not pending — counted pending too, a round raised a pool for a pod already placed."""
    view = ClusterView()
    sink = getattr(view, stream)
    view.apply_node("ADDED", node("n1"))
    if bound_first:
        sink.apply("ADDED", bound("a", "n1"))
        view.pods.apply("ADDED", pod("a"))
    else:
        view.pods.apply("ADDED", pod("a"))
        sink.apply("ADDED", bound("a", "n1"))
    view.pods.apply("ADDED", pod("b"))
    assert set(view.pending) == {"b"}
    assert [p.uid for p in view.snapshot().pending] == ["b"]


def test_trigger_fires_once_per_pod_becoming_pending() -> None:
    """on_pending fires when a pod starts being unschedulable, not on every status rewrite."""
    seen: list[PendingPod] = []
    view = ClusterView(on_pending=seen.append)
    view.apply_pod("ADDED", pod("a"))
    first = view.pending["a"]
    rewritten = pod("a", rv="11")
    rewritten["status"]["conditions"][0] = {**UNSCHEDULABLE, "message": "0/4 nodes"}
    view.apply_pod("MODIFIED", rewritten)
    view.apply_pod("MODIFIED", pod("a", rv="11"))
    assert [p.uid for p in seen] == ["a"]
    # A rewrite of the scheduler's message alone is no refold: the first fold is kept
    # (tests/agent/test_request_incremental.py holds what does count).
    assert view.pending["a"] is first
    assert view.versions == {"a": "11"}  # the version the request carries
    view.apply_pod("DELETED", pod("a", rv="12"))
    assert view.versions == {}
    view.apply_pod("ADDED", pod("a", rv="13"))
    assert [p.uid for p in seen] == ["a", "a"]


def test_relist_drops_pods_missing_from_the_new_list() -> None:
    """After a re-LIST, pods not in it are gone (deleted while the watch was down)."""
    view = ClusterView()
    for uid in ("a", "b", "c"):
        view.pods.apply("ADDED", pod(uid))
    view.pods.relisted({"b"})
    assert set(view.pending) == {"b"}


def test_nodes_per_pool_and_readiness() -> None:
    """Nodes group by the nodepool-id label; NotReady is kept as not ready."""
    view = ClusterView()
    view.apply_node("ADDED", node("n1", labels={"alibabacloud.com/nodepool-id": "np-a"}))
    view.apply_node(
        "ADDED", node("n2", ready=False, labels={"alibabacloud.com/nodepool-id": "np-a"})
    )
    view.apply_node("ADDED", node("n3", labels={"alibabacloud.com/nodepool-id": "np-b"}))
    view.apply_node("ADDED", node("plain"))
    pools = view.nodes_by_pool()
    assert {k: sorted((n.name, n.ready) for n in v) for k, v in pools.items()} == {
        "np-a": [("n1", True), ("n2", False)],
        "np-b": [("n3", True)],
    }
    view.apply_node("DELETED", node("n2"))
    assert [n.name for n in view.nodes_by_pool()["np-a"]] == ["n1"]


def test_eci_running_pods_count_only_live_pods_on_virtual_nodes() -> None:
    """ECI count: bound pods on a type=virtual-kubelet node that have not finished."""
    view = ClusterView()
    view.apply_node(
        "ADDED", node("virtual-kubelet-cn-hangzhou-k", labels={"type": "virtual-kubelet"})
    )
    view.apply_node("ADDED", node("n1", labels={"alibabacloud.com/nodepool-id": "np-a"}))
    view.apply_bound_pod("ADDED", bound("e1", "virtual-kubelet-cn-hangzhou-k"))
    view.apply_bound_pod("ADDED", bound("e2", "virtual-kubelet-cn-hangzhou-k", "Pending"))
    view.apply_bound_pod("ADDED", bound("e3", "virtual-kubelet-cn-hangzhou-k", "Succeeded"))
    view.apply_bound_pod("ADDED", bound("x", "n1"))
    assert view.eci_running_pods == 2
    view.apply_bound_pod("DELETED", bound("e1", "virtual-kubelet-cn-hangzhou-k"))
    view.apply_bound_pod("MODIFIED", bound("e2", "virtual-kubelet-cn-hangzhou-k", "Failed"))
    assert view.eci_running_pods == 0
    snapshot = view.snapshot()
    virtual = [n for n in snapshot.nodes if n.virtual]
    assert [n.name for n in virtual] == ["virtual-kubelet-cn-hangzhou-k"]
    assert virtual[0].pool_id is None


def test_snapshot_orders_oldest_first_and_shares_repeated_values() -> None:
    """Snapshot lists the longest-waiting pods first; a Ray group's repeated maps are shared."""
    view = ClusterView()
    newer = pod("new")
    newer["status"]["conditions"] = [
        {**UNSCHEDULABLE, "lastTransitionTime": "2026-11-29T05:00:00Z"}
    ]
    view.apply_pod("ADDED", newer)
    view.apply_pod("ADDED", copy.deepcopy(pod("old")))
    snapshot = view.snapshot()
    assert [p.uid for p in snapshot.pending] == ["old", "new"]
    first, second = snapshot.pending
    assert first.labels is second.labels
    assert first.requests is second.requests
    assert first.tolerations is second.tolerations
