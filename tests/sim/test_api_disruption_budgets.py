"""PodDisruptionBudgets over real HTTP with kubernetes-asyncio: policy/v1 discovered and served,
the status the disruption controller keeps, and the eviction rule kube-apiserver applies with it
(pkg/registry/core/pod/storage/eviction.go): 429 TooManyRequests with a DisruptionBudget cause
when the budget allows no disruption, 500 for a pod under two budgets."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from tests.support.builders import build_test_pod
from tests.support.waiting import until

NODE = "cn-hangzhou.172.16.0.17"
OWNER = [
    {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "web",
        "uid": "rs-1",
        "controller": True,
    }
]
READY = {
    "phase": "Running",
    "conditions": [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}],
}
NOT_READY = {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}


@pytest.fixture
def policy(api_client: client.ApiClient) -> client.PolicyV1Api:
    return client.PolicyV1Api(api_client)


def web_pods(store: Any, *names: str, status: dict[str, Any] = READY, app: str = "web") -> None:
    """Running, Ready pods of one ReplicaSet, bound to NODE (the API server alone: no kubelet)."""
    for name in names:
        pod = build_test_pod(name, labels={"app": app}, owners=OWNER, node=NODE, status=status)
        store.create("pods", pod, namespace="default")


def budget(name: str = "web", app: str = "web", **spec: Any) -> dict[str, Any]:
    """A policy/v1 PDB selecting app=`app`; `spec` keys as the API spells them (minAvailable)."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": app}}, **spec},
    }


async def synced(policy: client.PolicyV1Api, name: str = "web") -> dict[str, Any]:
    """The budget once the disruption controller has observed its generation."""
    seen: dict[str, Any] = {}
    for _ in range(100):
        response = await policy.read_namespaced_pod_disruption_budget(
            name, "default", _preload_content=False
        )
        seen = json.loads(await response.read())
        if seen["status"].get("observedGeneration") == seen["metadata"]["generation"]:
            return seen
        await asyncio.sleep(0.05)
    raise AssertionError(f"budget {name} never synced: {seen.get('status')}")


async def evict(core: client.CoreV1Api, name: str) -> None:
    body = client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace="default"))
    await core.create_namespaced_pod_eviction(name, "default", body)


async def refused(core: client.CoreV1Api, name: str) -> tuple[int, dict[str, Any]]:
    """(HTTP status, Status body) of an eviction that must fail."""
    with pytest.raises(ApiException) as caught:
        await evict(core, name)
    return caught.value.status, json.loads(caught.value.body)


async def test_policy_v1_is_discovered_with_the_pdb_short_name(api_client):
    """/apis lists the policy group; policy/v1 serves poddisruptionbudgets (shortName pdb)."""
    groups = await client.ApisApi(api_client).get_api_versions()
    assert "policy" in [g.name for g in groups.groups]
    resources = await client.PolicyV1Api(api_client).get_api_resources()
    by_name = {r.name: r for r in resources.resources}
    assert by_name["poddisruptionbudgets"].short_names == ["pdb"]
    assert by_name["poddisruptionbudgets"].namespaced
    assert "poddisruptionbudgets/status" in by_name


async def test_status_counts_healthy_pods_and_allowed_disruptions(api_server, policy):
    """minAvailable 2 over three Ready pods: 3 healthy, 2 desired, 1 disruption allowed."""
    web_pods(api_server.store, "web-1", "web-2", "web-3")
    created = await policy.create_namespaced_pod_disruption_budget(
        "default", budget(minAvailable=2)
    )
    assert created.metadata.generation == 1
    status = (await synced(policy))["status"]
    assert (
        status["currentHealthy"],
        status["desiredHealthy"],
        status["expectedPods"],
        status["disruptionsAllowed"],
    ) == (3, 2, 3, 1)
    (condition,) = status["conditions"]
    assert (condition["type"], condition["status"], condition["reason"]) == (
        "DisruptionAllowed",
        "True",
        "SufficientPods",
    )


async def test_an_eviction_uses_up_the_budget_and_the_next_one_is_refused(api_server, policy, core):
    """The first eviction marks the pod for deletion; the second gets 429 with kube-apiserver's
    message and a DisruptionBudget cause that counts the healthy pods."""
    web_pods(api_server.store, "web-1", "web-2", "web-3")
    await policy.create_namespaced_pod_disruption_budget("default", budget(minAvailable=2))
    await synced(policy)
    await evict(core, "web-1")
    first = api_server.store.get("pods", "web-1", namespace="default")
    assert first["metadata"].get("deletionTimestamp")
    status, body = await refused(core, "web-2")
    assert status == 429
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "TooManyRequests", 429)
    assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert body["details"]["causes"] == [
        {
            "reason": "DisruptionBudget",
            "message": "The disruption budget web needs 2 healthy pods and has 2 currently",
        }
    ]
    second = api_server.store.get("pods", "web-2", namespace="default")
    assert not second["metadata"].get("deletionTimestamp")


async def test_a_budget_the_controller_cannot_compute_allows_nothing(api_server, policy, core):
    """maxUnavailable needs the pods' controller's scale, which the simulator cannot read: the
    controller fails safe, so the eviction waits on a generation never observed (retry in 10 s)."""
    web_pods(api_server.store, "web-1", "web-2")
    await policy.create_namespaced_pod_disruption_budget("default", budget(maxUnavailable=1))
    await until(
        lambda: api_server.store.get("poddisruptionbudgets", "web", namespace="default")[
            "status"
        ].get("conditions"),
        timeout=5,
        what="the controller's first sync",
    )
    stored = api_server.store.get("poddisruptionbudgets", "web", namespace="default")
    assert stored["status"]["disruptionsAllowed"] == 0
    assert stored["status"]["conditions"][0]["reason"] == "SyncFailed"
    status, body = await refused(core, "web-1")
    assert status == 429 and body["details"]["retryAfterSeconds"] == 10
    assert body["details"]["causes"][0]["message"] == (
        "The disruption budget web is still being processed by the server."
    )


async def test_a_pod_under_two_budgets_cannot_be_evicted(api_server, policy, core):
    """Two budgets select the pod: 500, which the eviction subresource does not support."""
    web_pods(api_server.store, "web-1", "web-2", "web-3")
    await policy.create_namespaced_pod_disruption_budget("default", budget("a", minAvailable=1))
    await policy.create_namespaced_pod_disruption_budget("default", budget("b", minAvailable=1))
    status, body = await refused(core, "web-1")
    assert status == 500
    assert body["message"] == (
        "This pod has more than one PodDisruptionBudget, which the eviction subresource does "
        "not support."
    )


async def test_pods_no_budget_counts_are_evicted_freely(api_server, policy, core):
    """A Pending pod, and an unready one while the budget is met without it, go at once."""
    web_pods(api_server.store, "web-1", "web-2")
    web_pods(api_server.store, "web-sick", status=NOT_READY)
    web_pods(api_server.store, "web-new", status={"phase": "Pending"})
    await policy.create_namespaced_pod_disruption_budget("default", budget(minAvailable=2))
    await synced(policy)
    await evict(core, "web-sick")
    await evict(core, "web-new")
    for name in ("web-sick", "web-new"):
        pod = api_server.store.get("pods", name, namespace="default")
        assert pod["metadata"].get("deletionTimestamp"), name
    assert (await synced(policy))["status"]["disruptionsAllowed"] == 0


async def test_a_new_spec_is_a_new_generation_and_status_is_the_controllers(api_server, policy):
    """A spec change bumps metadata.generation; status written through the main endpoint is
    dropped (the status subresource and the controller own it)."""
    web_pods(api_server.store, "web-1", "web-2")
    await policy.create_namespaced_pod_disruption_budget("default", budget(minAvailable=1))
    await synced(policy)
    patched = await policy.patch_namespaced_pod_disruption_budget(
        "web",
        "default",
        {"spec": {"minAvailable": 2}, "status": {"disruptionsAllowed": 7}},
        _content_type="application/merge-patch+json",
    )
    assert patched.metadata.generation == 2
    assert patched.status.disruptions_allowed != 7
    assert (await synced(policy))["status"]["disruptionsAllowed"] == 0


INVALID = [
    (
        {"minAvailable": 1, "maxUnavailable": 1},
        "minAvailable and maxUnavailable cannot be both set",
    ),
    ({"minAvailable": -1}, "spec.minAvailable: Invalid value: -1: must be greater than or equal"),
    ({"maxUnavailable": "120%"}, 'Invalid value: "120%": must not be greater than 100%'),
    ({"unhealthyPodEvictionPolicy": "Never"}, 'Unsupported value: "Never"'),
]


@pytest.mark.parametrize(("spec", "problem"), INVALID)
async def test_invalid_budgets_are_refused(policy, spec, problem):
    """ValidatePodDisruptionBudget: 422 Invalid naming the field."""
    with pytest.raises(ApiException) as caught:
        await policy.create_namespaced_pod_disruption_budget("default", budget(**spec))
    assert caught.value.status == 422
    body = json.loads(caught.value.body)
    assert body["reason"] == "Invalid" and problem in body["message"]
    assert body["message"].startswith('PodDisruptionBudget.policy "web" is invalid: ')
