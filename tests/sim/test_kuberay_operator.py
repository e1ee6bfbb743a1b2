"""The KubeRay operator stand-in over a served SimCluster: RayClusters created and patched over
HTTP become head and worker pods within minReplicas/maxReplicas, named workers go first, pods
carry KubeRay's labels and the RayCluster's uid, a deleted head comes back, and the status is
written through the status subresource."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from agent.sim.cluster import SimCluster
from agent.sim.kube.in_cluster import InClusterAccess
from agent.sim.kube.store import ObjectStore
from agent.sim.scenario import (
    SCENARIO_DIR,
    ScenarioError,
    build_world,
    load_scenario,
    parse_scenario,
)
from agent.sim.world.clock import SimClock
from agent.sim.world.kuberay_operator import KubeRayOperator
from agent.sim.world.nodes import ready_node
from agent.sim.world.raycluster_spec import OPERATOR_DELAY_SECONDS
from tests.support.builders import build_test_raycluster

NAME = "rc"
PATH = f"/apis/ray.io/v1/namespaces/default/rayclusters/{NAME}"
JSON_PATCH = "application/json-patch+json"
SUFFIX = "[bcdfghjklmnpqrstvwxz2456789]{5}"


@pytest.fixture
async def operator(sim_cluster: SimCluster) -> AsyncIterator[KubeRayOperator]:
    """The operator on the served cluster, with room for every pod on one Ready node."""
    sim_cluster.store.create("nodes", ready_node("n1", cpu="64", memory="256Gi"))
    running = KubeRayOperator(sim_cluster.store, sim_cluster.clock, seed=3)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def http(sim_cluster: SimCluster) -> AsyncIterator[Any]:
    """`await http(method, path, body, content_type)` → (status, JSON answer)."""
    async with aiohttp.ClientSession() as session:

        async def call(
            method: str, path: str, body: Any = None, content_type: str = "application/json"
        ) -> tuple[int, Any]:
            data = None if body is None else json.dumps(body)
            async with session.request(
                method, sim_cluster.url + path, data=data, headers={"Content-Type": content_type}
            ) as response:
                return response.status, await response.json(content_type=None)

        yield call


async def create(http: Any, **kwargs: Any) -> dict[str, Any]:
    body = build_test_raycluster(NAME, **kwargs)
    status, answer = await http("POST", "/apis/ray.io/v1/namespaces/default/rayclusters", body)
    assert status == 201, answer
    result: dict[str, Any] = answer
    return result


async def patch(http: Any, *operations: dict[str, Any]) -> dict[str, Any]:
    status, answer = await http("PATCH", PATH, list(operations), JSON_PATCH)
    assert status == 200, answer
    result: dict[str, Any] = answer
    return result


def replace(path: str, value: Any) -> dict[str, Any]:
    return {"op": "replace", "path": path, "value": value}


def pods(cluster: SimCluster, node_type: str = "worker", *, live: bool = True) -> list[dict]:
    items, _ = cluster.store.list("pods", namespace="default")
    return [
        p
        for p in items
        if p["metadata"]["labels"].get("ray.io/node-type") == node_type
        and not (live and p["metadata"].get("deletionTimestamp"))
    ]


def raycluster(cluster: SimCluster) -> dict[str, Any]:
    return cluster.store.get("rayclusters", NAME, namespace="default")


async def test_pods_follow_replicas_within_min_and_max(sim_cluster, until, operator, http):
    """replicas 3 → 3 workers and a head; replicas 50 → maxReplicas 10; replicas 0 under
    minReplicas 2 with autoscaling off → the operator deletes down to 2."""
    await create(http, replicas=3, max_replicas=10)
    await until(lambda: len(pods(sim_cluster)) == 3 and len(pods(sim_cluster, "head")) == 1)
    await patch(http, replace("/spec/workerGroupSpecs/0/replicas", 50))
    await until(lambda: len(pods(sim_cluster)) == 10)
    await sim_cluster.clock.sleep(3)
    assert len(pods(sim_cluster)) == 10
    await patch(
        http,
        replace("/spec/enableInTreeAutoscaling", False),
        replace("/spec/workerGroupSpecs/0/minReplicas", 2),
        replace("/spec/workerGroupSpecs/0/replicas", 0),
    )
    await until(lambda: len(pods(sim_cluster)) == 2)


async def test_with_autoscaling_on_lower_replicas_delete_no_unnamed_pod(
    sim_cluster, until, operator, http
):
    """With enableInTreeAutoscaling the autoscaler alone picks pods to delete: lowering replicas
    without naming any leaves the pods be (KubeRay's random deletion is off)."""
    await create(http, replicas=4)
    await until(lambda: len(pods(sim_cluster)) == 4)
    await patch(http, replace("/spec/workerGroupSpecs/0/replicas", 1))
    reconciles = operator.reconciles
    await until(lambda: operator.reconciles > reconciles)
    await sim_cluster.clock.sleep(3)
    assert len(pods(sim_cluster)) == 4


async def test_workers_to_delete_go_first_and_the_list_stays(sim_cluster, until, operator, http):
    """A named worker is deleted, no other is, none is created for it while replicas agree;
    the operator leaves scaleStrategy.workersToDelete as it is (the autoscaler clears it)."""
    await create(http, replicas=3)
    await until(lambda: len(pods(sim_cluster)) == 3)
    names = sorted(p["metadata"]["name"] for p in pods(sim_cluster))
    doomed = names[1]
    await patch(
        http,
        replace("/spec/workerGroupSpecs/0/replicas", 2),
        replace("/spec/workerGroupSpecs/0/scaleStrategy", {"workersToDelete": [doomed]}),
    )
    await until(lambda: doomed not in {p["metadata"]["name"] for p in pods(sim_cluster)})
    await sim_cluster.clock.sleep(5)
    assert sorted(p["metadata"]["name"] for p in pods(sim_cluster)) == [names[0], names[2]]
    strategy = raycluster(sim_cluster)["spec"]["workerGroupSpecs"][0]["scaleStrategy"]
    assert strategy == {"workersToDelete": [doomed]}


async def test_a_named_worker_is_deleted_even_when_replicas_stay(
    sim_cluster, until, operator, http
):
    """workersToDelete regardless of replicas: the named pod goes, and a new one replaces it."""
    await create(http, replicas=2)
    await until(lambda: len(pods(sim_cluster)) == 2)
    doomed = pods(sim_cluster)[0]["metadata"]["name"]
    await patch(
        http, replace("/spec/workerGroupSpecs/0/scaleStrategy", {"workersToDelete": [doomed]})
    )
    await until(
        lambda: (
            len(pods(sim_cluster)) == 2
            and doomed not in {p["metadata"]["name"] for p in pods(sim_cluster, live=False)}
        ),
        timeout=10,
    )


async def test_pods_carry_kuberay_labels_names_and_the_real_uid(sim_cluster, until, operator, http):
    await created_and_checked(sim_cluster, until, http)


async def created_and_checked(sim_cluster: SimCluster, until: Any, http: Any) -> None:
    created = await create(http, replicas=2, group="cpu")
    await until(lambda: len(pods(sim_cluster)) == 2 and pods(sim_cluster, "head"))
    uid = created["metadata"]["uid"]
    (head,) = pods(sim_cluster, "head")
    assert re.fullmatch(rf"{NAME}-head-{SUFFIX}", head["metadata"]["name"])
    assert head["metadata"]["generateName"] == f"{NAME}-head-"
    assert "ray start --head" in head["spec"]["containers"][0]["args"][0]
    for pod in pods(sim_cluster):
        meta = pod["metadata"]
        assert re.fullmatch(rf"{NAME}-cpu-worker-{SUFFIX}", meta["name"])
        labels = meta["labels"]
        assert {k: labels[k] for k in labels if k.startswith("ray.io/")} == {
            "ray.io/cluster": NAME,
            "ray.io/group": "cpu",
            "ray.io/node-type": "worker",
            "ray.io/is-ray-node": "yes",
            "ray.io/identifier": f"{NAME}-worker",
        }
        assert labels["app.kubernetes.io/created-by"] == "kuberay-operator"
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "ray.io/v1",
                "kind": "RayCluster",
                "name": NAME,
                "uid": uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        container = pod["spec"]["containers"][0]
        assert container["resources"]["requests"] == {"cpu": "1", "memory": "2Gi"}
        command = container["args"][0]
        assert f"--address={NAME}-head-svc.default.svc.cluster.local:6379" in command
        assert "--num-cpus=1" in command and "--block" in command


async def test_a_deleted_head_is_recreated(sim_cluster, until, operator, http):
    await create(http, replicas=0)
    await until(lambda: pods(sim_cluster, "head"))
    old = pods(sim_cluster, "head")[0]["metadata"]["name"]
    status, _ = await http(
        "DELETE", f"/api/v1/namespaces/default/pods/{old}", {"gracePeriodSeconds": 0}
    )
    assert status == 200
    await until(
        lambda: [p["metadata"]["name"] for p in pods(sim_cluster, "head")] not in ([], [old])
    )


async def test_status_is_written_without_a_new_generation(sim_cluster, until, operator, http):
    """Once the head and both workers run: ready, 2 available, 2 desired, the sums of the
    groups, observedGeneration the object's generation, which the status write leaves alone."""
    created = await create(http, replicas=2, min_replicas=1, max_replicas=5)
    await until(lambda: (raycluster(sim_cluster).get("status") or {}).get("state") == "ready")
    stored = raycluster(sim_cluster)
    status = stored["status"]
    assert stored["metadata"]["generation"] == created["metadata"]["generation"] == 1
    assert status["availableWorkerReplicas"] == 2
    assert status["desiredWorkerReplicas"] == 2
    assert (status["minWorkerReplicas"], status["maxWorkerReplicas"]) == (1, 5)
    assert status["desiredCPU"] == "3"  # the head's 1 CPU and two 1-CPU workers
    assert status["observedGeneration"] == 1
    assert status["lastUpdateTime"]
    # the answer of a GET shows the same status
    code, answer = await http("GET", PATH)
    assert code == 200 and answer["status"]["state"] == "ready"
    await patch(http, replace("/spec/workerGroupSpecs/0/replicas", 3))
    await until(lambda: raycluster(sim_cluster)["status"]["desiredWorkerReplicas"] == 3)
    assert raycluster(sim_cluster)["status"]["observedGeneration"] == 2


async def test_the_reconcile_waits_the_configured_delay(sim_cluster, until, http):
    """With a 20 s delay, the pods come no sooner than 20 simulated seconds after the change."""
    operator = KubeRayOperator(sim_cluster.store, sim_cluster.clock, delay_seconds=20)
    await operator.start()
    try:
        await create(http, replicas=1)
        created_at = sim_cluster.clock.now()
        await until(lambda: pods(sim_cluster, "head"), timeout=10)
        assert sim_cluster.clock.now() - created_at >= 20
    finally:
        await operator.stop()


def test_a_scenario_sets_the_operator_delay():
    """`ray.operatorDelaySeconds` reaches the world's operator (a bench varies it); the
    default is raycluster_spec's estimate; a negative delay is refused."""
    text = (SCENARIO_DIR / "seed.yaml").read_text()
    assert load_scenario("seed").ray.operator_delay_seconds == OPERATOR_DELAY_SECONDS
    slow = parse_scenario(
        text.replace(
            "  namespace: default\n", "  namespace: default\n  operatorDelaySeconds: 7\n", 1
        ),
        name="slow",
    )
    world = build_world(
        slow,
        store=ObjectStore(now=lambda: ""),
        clock=SimClock(),
        api=lambda: InClusterAccess("http://unused"),
    )
    assert world.operator.delay_seconds == 7
    with pytest.raises(ScenarioError, match="operatorDelaySeconds"):
        parse_scenario(
            text.replace(
                "  namespace: default\n", "  namespace: default\n  operatorDelaySeconds: -1\n", 1
            ),
            name="bad",
        )
