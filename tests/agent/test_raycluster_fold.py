"""The RayCluster demand fold (agent/ingest/rayclusters.py) on raw watch objects: KubeRay's
wanted-pod arithmetic, the worker built from the group's template, which pods count as existing,
and when a CR change pulls the batch trigger."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from agent.decide.request_builder import RequestSettings, build_request
from agent.ingest.free_room import beyond_free_room
from agent.ingest.label_selector import parse_selector
from agent.ingest.rayclusters import RayClusterDemand, is_anticipated, wanted_workers
from agent.ingest.view import ClusterView
from agent.model import Snapshot
from tests.support.builders import build_test_pod, build_test_raycluster

NS = "ray"


def cluster(replicas: int = 2, *, uid: str = "rc-uid", rv: str = "1", **fields: Any) -> Any:
    body = build_test_raycluster("rc", namespace=NS, replicas=replicas, **fields)
    body["metadata"].update(uid=uid, resourceVersion=rv)
    return body


def worker(name: str, *, group: str = "cpu-workers", **fields: Any) -> Any:
    labels = {"ray.io/cluster": "rc", "ray.io/group": group, "ray.io/node-type": "worker"}
    return build_test_pod(name, namespace=NS, uid=f"uid-{name}", labels=labels, **fields)


@pytest.mark.parametrize(
    ("group", "wanted"),
    [
        ({"replicas": 3, "minReplicas": 0, "maxReplicas": 5}, 3),
        ({"replicas": 9, "minReplicas": 0, "maxReplicas": 5}, 5),
        ({"replicas": 1, "minReplicas": 2, "maxReplicas": 5}, 2),
        ({"minReplicas": 2, "maxReplicas": 5}, 2),  # no replicas: minReplicas
        ({"replicas": 3, "maxReplicas": 5, "numOfHosts": 2}, 6),
        ({"replicas": 3, "maxReplicas": 5, "numOfHosts": 0}, 3),  # KubeRay: max(1, numOfHosts)
        ({"replicas": 3, "maxReplicas": 5, "suspend": True}, 0),
        ({"replicas": 3}, 3),  # maxReplicas defaults to int32 max
    ],
)
def test_wanted_workers_follow_kuberay(group: dict[str, Any], wanted: int) -> None:
    assert wanted_workers(group) == wanted


def test_a_suspended_cluster_wants_no_worker() -> None:
    assert wanted_workers({"replicas": 3}, cluster_suspended=True) == 0
    demand = RayClusterDemand()
    body = cluster(3)
    body["spec"]["suspend"] = True
    demand.sink.apply("ADDED", body)
    assert demand.missing() == ()


def test_the_worker_comes_from_the_template() -> None:
    """Requests (with KubeRay's wait-gcs-ready init container: 200m / 256Mi), nodeSelector,
    tolerations, affinity, annotations and KubeRay's labels."""
    body = cluster(2)
    group = body["spec"]["workerGroupSpecs"][0]
    group["template"]["spec"]["containers"][0]["resources"] = {
        "requests": {"cpu": "100m", "memory": "1Gi"}
    }
    affinity: dict[str, Any] = {
        "nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}
    }
    toleration = {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}
    group["template"]["spec"].update(
        nodeSelector={"disk": "ssd"}, tolerations=[toleration], affinity=affinity
    )
    group["template"]["metadata"] = {
        "labels": {"app": "ray", "ray.io/group": "not-this"},
        "annotations": {"ray-ack-scaler/placement": "eci", "k8s.aliyun.com/eci-use-specs": "2-4Gi"},
    }
    demand = RayClusterDemand()
    demand.sink.apply("ADDED", body)
    first, second = demand.missing()
    assert first.requests == {"cpu": "200m", "memory": str(2**30)}  # max(containers, init)
    assert first.node_selector == {"disk": "ssd"}
    assert first.tolerations == (toleration,)
    assert first.affinity == affinity
    assert first.annotations["ray-ack-scaler/placement"] == "eci"
    assert first.annotations["k8s.aliyun.com/eci-use-specs"] == "2-4Gi"
    assert first.labels["ray.io/group"] == "cpu-workers"  # labelPod: not overridable
    assert first.labels["app"] == "ray"
    assert first.namespace == NS
    assert {first.uid, second.uid} == {
        "anticipated/rc-uid/cpu-workers/0",
        "anticipated/rc-uid/cpu-workers/1",
    }
    assert all(is_anticipated(p.uid) for p in (first, second))


def test_existing_pods_are_counted_once_whichever_stream_has_them() -> None:
    demand = RayClusterDemand()
    demand.sink.apply("ADDED", cluster(4))
    demand.pods.unbound.apply("ADDED", worker("w0"))
    bound = worker("w0", node="n1")
    demand.pods.bound.apply("ADDED", bound)  # bound before the unbound stream drops it
    assert len(demand.missing()) == 3
    demand.pods.unbound.apply("DELETED", worker("w0"))
    assert len(demand.missing()) == 3
    demand.pods.bound.apply("ADDED", worker("w1", node="n1"))
    assert len(demand.missing()) == 2


def test_pods_that_do_not_count() -> None:
    """Terminating, finished, the head, another group or cluster: KubeRay replaces or ignores
    them, so the group's workers are still missing."""
    demand = RayClusterDemand()
    demand.sink.apply("ADDED", cluster(4))
    terminating = worker("t")
    terminating["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    failed = worker("f", status={"phase": "Failed"})
    head = worker("h")
    head["metadata"]["labels"]["ray.io/node-type"] = "head"
    other_group = worker("o", group="gpu-workers")
    other_cluster = worker("x")
    other_cluster["metadata"]["labels"]["ray.io/cluster"] = "other"
    for pod in (terminating, failed, head, other_group, other_cluster):
        demand.pods.unbound.apply("ADDED", pod)
    assert len(demand.missing()) == 4


def test_workers_to_delete_do_not_count() -> None:
    body = cluster(3)
    demand = RayClusterDemand()
    demand.sink.apply("ADDED", body)
    for name in ("w0", "w1", "w2"):
        demand.pods.unbound.apply("ADDED", worker(name))
    assert demand.missing() == ()
    body["spec"]["workerGroupSpecs"][0]["scaleStrategy"]["workersToDelete"] = ["w0"]
    demand.sink.apply("MODIFIED", body)
    assert len(demand.missing()) == 1  # a replacement: KubeRay deletes w0, creates one
    body["spec"]["workerGroupSpecs"][0]["replicas"] = 2
    demand.sink.apply("MODIFIED", body)
    assert demand.missing() == ()


def test_a_relist_forgets_what_is_gone() -> None:
    demand = RayClusterDemand()
    demand.sink.apply("ADDED", cluster(2))
    demand.pods.unbound.apply("ADDED", worker("w0"))
    demand.pods.unbound.relisted(set())
    assert len(demand.missing()) == 2
    demand.sink.relisted(set())
    assert demand.missing() == ()


def test_scope_follows_the_pod_watches() -> None:
    """Workers the agent's pod selector or Ray cluster setting leaves out are not anticipated."""
    for scoped, expected in (
        (RayClusterDemand(selector="ray.io/node-type=worker"), 2),
        (RayClusterDemand(selector="ray.io/node-type=worker,ray.io/cluster=rc"), 2),
        (RayClusterDemand(selector="app=other"), 0),
        (RayClusterDemand(ray_cluster="rc"), 2),
        (RayClusterDemand(ray_cluster="another"), 0),
        (RayClusterDemand(selector="this is (not a selector"), 0),
    ):
        scoped.sink.apply("ADDED", cluster(2))
        assert len(scoped.missing()) == expected


def test_a_raise_pulls_the_trigger_once_per_change() -> None:
    triggers: list[str] = []
    demand = RayClusterDemand(on_raise=triggers.append)
    body = cluster(0)
    demand.sink.apply("ADDED", body)
    assert triggers == []  # nothing wanted
    raised = copy.deepcopy(body)
    raised["spec"]["workerGroupSpecs"][0]["replicas"] = 2
    raised["metadata"]["resourceVersion"] = "2"
    demand.sink.apply("MODIFIED", raised)
    assert triggers == ["raycluster/rc-uid/2"]
    status_only = copy.deepcopy(raised)
    status_only["metadata"]["resourceVersion"] = "3"
    demand.sink.apply("MODIFIED", status_only)  # the operator's status write: same wants
    assert triggers == ["raycluster/rc-uid/2"]
    for name in ("w0", "w1", "w2"):
        demand.pods.unbound.apply("ADDED", worker(name))
    more = copy.deepcopy(raised)
    more["spec"]["workerGroupSpecs"][0]["replicas"] = 3
    demand.sink.apply("MODIFIED", more)  # the pods already cover it
    assert triggers == ["raycluster/rc-uid/2"]


def test_the_request_marks_anticipated_entries() -> None:
    demand = RayClusterDemand()
    demand.sink.apply("ADDED", cluster(2))
    body = build_request(
        Snapshot(pending=(), nodes=(), eci_running_pods=0),
        [],
        {},
        settings=RequestSettings(cluster_id="c", region="cn-hangzhou"),
        now="2026-01-01T00:00:00Z",
        anticipated=demand.missing(),
    )
    assert [p["anticipated"] for p in body["pods"]] == [True, True]
    assert body["pods"][0]["requests"] == {"cpu": "1", "memory": str(2 * 2**30)}
    assert body["pods"][0]["unschedulableSince"] is None


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ("", {}, True),
        ("a=b", {"a": "b"}, True),
        ("a==b", {"a": "c"}, False),
        ("a!=b", {}, True),
        ("a", {"a": ""}, True),
        ("!a", {"a": ""}, False),
        ("a in (x, y),b notin (z)", {"a": "y", "b": "w"}, True),
        ("a in (x, y),b notin (z)", {"a": "y", "b": "z"}, False),
        ("a notin (x)", {}, True),
    ],
)
def test_label_selectors_match_as_the_api_server_does(
    selector: str, labels: dict[str, str], matches: bool
) -> None:
    assert parse_selector(selector)(labels) is matches


def node(name: str, *, cpu: str = "4", ready: bool = True, **fields: Any) -> Any:
    body: dict[str, Any] = {
        "metadata": {"name": name, "labels": {"pool": "a"}},
        "spec": dict(fields),
        "status": {
            "allocatable": {"cpu": cpu, "memory": "16Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }
    return body


def test_workers_that_fit_free_room_are_left_out() -> None:
    """Free room: allocatable minus every bound pod's requests, on Ready, uncordoned,
    schedulable-for-the-worker nodes; placed first-fit, each worker taking its room."""
    view = ClusterView()
    demand = RayClusterDemand()
    demand.sink.apply("ADDED", cluster(4))  # 1 cpu workers (the init container is less)
    for raw in (
        node("n-busy"),  # 4 cpu, 3 taken below: room for 1
        node("n-cordoned", unschedulable=True),
        node("n-notready", ready=False),
        node("n-tainted", taints=[{"key": "gpu", "value": "x", "effect": "NoSchedule"}]),
    ):
        view.apply_node("ADDED", raw)
    view.node_pods.apply_pod("ADDED", worker("b0", cpu="3", node="n-busy"))
    workers = demand.missing()
    assert len(beyond_free_room(workers, tuple(view.nodes.values()), view.node_pods)) == 3
    view.apply_node("ADDED", node("n-empty"))  # room for 4
    assert beyond_free_room(workers, tuple(view.nodes.values()), view.node_pods) == ()
    # a worker that tolerates nothing and selects a label no node has fits nowhere
    picky = dataclasses.replace(workers[0], node_selector={"disk": "ssd"})
    assert beyond_free_room((picky,), tuple(view.nodes.values()), view.node_pods) == (picky,)


def test_a_pod_is_announced_while_its_group_wants_at_least_the_pods_that_exist() -> None:
    demand = RayClusterDemand()
    labels = {"ray.io/cluster": "rc", "ray.io/group": "cpu-workers"}
    assert not demand.announced(NS, labels)  # no RayCluster known
    demand.sink.apply("ADDED", cluster(2))
    demand.pods.unbound.apply("ADDED", worker("w0"))
    demand.pods.unbound.apply("ADDED", worker("w1"))
    assert demand.announced(NS, labels)
    demand.pods.unbound.apply("ADDED", worker("w2"))  # one more than wanted: not announced
    assert not demand.announced(NS, labels)
    assert not demand.announced(NS, {**labels, "ray.io/group": "other"})
    assert not demand.announced("elsewhere", labels)
