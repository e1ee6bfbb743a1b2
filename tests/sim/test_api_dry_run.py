"""Server-side dry run over real HTTP: `dryRun=All` on create, update, patch, delete (one object,
a collection, a namespace), the status subresource, eviction and binding answers what the write
would give — after every validation and admission check — and stores, publishes and counts
nothing; any other dryRun value is 422 Invalid on the request's options kind, as kube-apiserver's
ValidateDryRun makes it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from agent.sim.kube.disruption import refresh_budgets
from tests.support.builders import build_test_pod

NODE = "cn-hangzhou.172.16.0.17"
PODS = "/api/v1/namespaces/default/pods"
MERGE = {"Content-Type": "application/merge-patch+json"}
READY = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}


@pytest.fixture
async def http(api_server) -> AsyncIterator[Any]:
    """`await http(method, path, body=None, headers=None)` → (status, decoded JSON body)."""
    async with aiohttp.ClientSession(api_server.url, trust_env=False) as session:

        async def call(
            method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
        ) -> tuple[int, Any]:
            data = None if body is None else json.dumps(body)
            sent = {"Content-Type": "application/json", **(headers or {})}
            async with session.request(method, path, data=data, headers=sent) as response:
                return response.status, json.loads(await response.read())

        yield call


@pytest.fixture
def quiet(api_server):
    """Asserts, after the test's dry runs, that the store changed in no way a client can see."""

    class Quiet:
        def __init__(self) -> None:
            self.subscription = api_server.store.subscribe()
            self.version = api_server.store.resource_version

        def check(self) -> None:
            assert api_server.store.resource_version == self.version
            assert self.subscription.drain() == []

    return Quiet


def _bound_pod(store, name: str, **labels: str) -> dict:
    return store.create(
        "pods",
        build_test_pod(name, node=NODE, labels=labels or None, status=READY),
        namespace="default",
    )


async def test_dry_run_create_answers_the_prepared_pod_and_stores_nothing(api_server, http, quiet):
    """The would-be pod comes back defaulted, with uid and creationTimestamp but no
    resourceVersion (DryRunnableStorage.Create never stores it); no pod, no event, no version."""
    watched = quiet()
    status, body = await http("POST", PODS + "?dryRun=All", build_test_pod("w"))
    assert status == 201
    assert body["metadata"]["name"] == "w"
    assert body["metadata"]["uid"] and body["metadata"]["creationTimestamp"]
    assert "resourceVersion" not in body["metadata"]
    assert body["spec"]["restartPolicy"] == "Always"  # defaulted as a real create is
    assert body["status"]["phase"] == "Pending"
    assert api_server.store.list("pods")[0] == []
    watched.check()


async def test_dry_run_create_still_validates_and_admits(api_server, http, quiet):
    """Invalid pods, taken names and missing namespaces fail as a real create does."""
    _bound_pod(api_server.store, "taken")
    watched = quiet()
    no_image = build_test_pod("bad", image=None)
    assert (await http("POST", PODS + "?dryRun=All", no_image))[0] == 422
    assert (await http("POST", PODS + "?dryRun=All", build_test_pod("taken")))[0] == 409
    missing = "/api/v1/namespaces/nowhere/pods?dryRun=All"
    assert (await http("POST", missing, build_test_pod("w")))[0] == 404
    watched.check()


async def test_dry_run_update_and_patch_answer_the_result_and_keep_the_stored_pod(
    api_server, http, quiet
):
    """PUT and PATCH (the main endpoint and status) answer the updated pod at the version it
    was read at; the stored pod is unchanged; a stale resourceVersion is still 409."""
    stored = _bound_pod(api_server.store, "w", app="a")
    version = stored["metadata"]["resourceVersion"]
    watched = quiet()
    edited = json.loads(json.dumps(stored))
    edited["metadata"]["labels"]["app"] = "b"
    status, body = await http("PUT", f"{PODS}/w?dryRun=All", edited)
    assert (status, body["metadata"]["labels"]["app"]) == (200, "b")
    assert body["metadata"]["resourceVersion"] == version
    patch = {"metadata": {"labels": {"extra": "1"}}}
    status, body = await http("PATCH", f"{PODS}/w?dryRun=All", patch, MERGE)
    assert (status, body["metadata"]["labels"]) == (200, {"app": "a", "extra": "1"})
    status, body = await http(
        "PATCH", f"{PODS}/w/status?dryRun=All", {"status": {"phase": "Failed"}}, MERGE
    )
    assert (status, body["status"]["phase"]) == (200, "Failed")
    edited["metadata"]["resourceVersion"] = str(int(version) - 1)
    assert (await http("PUT", f"{PODS}/w?dryRun=All", edited))[0] == 409
    assert api_server.store.get("pods", "w", namespace="default") is stored
    watched.check()


async def test_dry_run_delete_answers_the_pod_as_the_delete_would_leave_it(api_server, http, quiet):
    """A bound pod's graceful delete answers it with deletionTimestamp set; an unbound pod's
    immediate delete answers it as stored; a node's delete its Success Status. dryRun in the
    DeleteOptions body (kubectl's way) counts as in the query. Everything stays."""
    _bound_pod(api_server.store, "bound")
    api_server.store.create("pods", build_test_pod("pending"), namespace="default")
    api_server.store.create("nodes", {"metadata": {"name": NODE}})
    watched = quiet()
    status, body = await http("DELETE", f"{PODS}/bound?dryRun=All")
    assert status == 200
    assert body["metadata"]["deletionTimestamp"]
    assert body["metadata"]["deletionGracePeriodSeconds"] == 30
    status, body = await http("DELETE", f"{PODS}/pending", {"dryRun": ["All"]})
    assert (status, body["metadata"]["name"]) == (200, "pending")
    status, body = await http("DELETE", f"/api/v1/nodes/{NODE}?dryRun=All")
    assert (status, body["status"]) == (200, "Success")
    assert "deletionTimestamp" not in api_server.store.get("pods", "bound")["metadata"]
    assert len(api_server.store.list("pods")[0]) == 2
    assert api_server.store.get("nodes", NODE)
    watched.check()


async def test_delete_body_without_dry_run_ignores_the_query(api_server, http):
    """handlers/delete.go reads DeleteOptions from the body when there is one, the query only
    when there is none: a body without dryRun is a real delete whatever the query says."""
    api_server.store.create("pods", build_test_pod("w"), namespace="default")
    status, _ = await http("DELETE", f"{PODS}/w?dryRun=All", {"gracePeriodSeconds": 0})
    assert status == 200
    assert api_server.store.list("pods")[0] == []


async def test_dry_run_eviction_checks_the_budget_and_uses_nothing_up(api_server, http, quiet):
    """An eviction the budget allows answers 201 and neither marks the pod nor spends the
    budget's disruption (eviction.go's checkAndDecrement stops before its write on a dry run);
    one the budget refuses is still 429. Binding likewise answers 201 and binds nothing."""
    store = api_server.store
    for name in ("a", "b"):
        _bound_pod(store, name, app="web")
    api_server.store.create("pods", build_test_pod("loose"), namespace="default")
    selector = {"matchLabels": {"app": "web"}}
    budget = {"metadata": {"name": "web"}, "spec": {"minAvailable": 1, "selector": selector}}
    store.create("poddisruptionbudgets", budget, namespace="default")
    refresh_budgets(store, "default", now=api_server.clock.now())
    before = store.get("poddisruptionbudgets", "web", namespace="default")
    assert before["status"]["disruptionsAllowed"] == 1
    watched = quiet()
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "a"}}
    status, body = await http("POST", f"{PODS}/a/eviction?dryRun=All", eviction)
    assert (status, body["status"]) == (201, "Success")
    in_body = {**eviction, "metadata": {"name": "b"}, "deleteOptions": {"dryRun": ["All"]}}
    assert (await http("POST", f"{PODS}/b/eviction", in_body))[0] == 201
    binding = {"metadata": {"name": "loose"}, "target": {"kind": "Node", "name": NODE}}
    assert (await http("POST", f"{PODS}/loose/binding?dryRun=All", binding))[0] == 201
    assert store.get("poddisruptionbudgets", "web", namespace="default") is before
    assert not any(p["metadata"].get("deletionTimestamp") for p in store.list("pods")[0])
    assert "nodeName" not in store.get("pods", "loose")["spec"]
    watched.check()
    # with b unready the budget allows nothing: a dry run is refused as the eviction would be
    store.mutate("pods", "b", lambda p: p["status"].update(conditions=[]), namespace="default")
    assert (await http("POST", f"{PODS}/a/eviction?dryRun=All", eviction))[0] == 429


async def test_dry_run_collection_and_namespace_deletes_change_nothing(api_server, http, quiet):
    """DELETE on a collection answers the list it would delete; a namespace's DELETE answers it
    Terminating; the store keeps both as they were."""
    store = api_server.store
    _bound_pod(store, "a", app="x")
    store.create("namespaces", {"metadata": {"name": "ray"}})
    watched = quiet()
    status, body = await http("DELETE", PODS + "?labelSelector=app%3Dx&dryRun=All")
    assert (status, [p["metadata"]["name"] for p in body["items"]]) == (200, ["a"])
    status, body = await http("DELETE", "/api/v1/namespaces/ray?dryRun=All")
    assert (status, body["status"]["phase"]) == (200, "Terminating")
    assert body["metadata"]["deletionTimestamp"]
    assert store.get("namespaces", "ray")["status"]["phase"] == "Active"
    assert not store.get("pods", "a", namespace="default")["metadata"].get("deletionTimestamp")
    watched.check()


@pytest.mark.parametrize(
    ("method", "path", "options"),
    [
        ("POST", PODS, "CreateOptions"),
        ("PUT", PODS + "/w", "UpdateOptions"),
        ("PATCH", PODS + "/w", "PatchOptions"),
        ("DELETE", PODS + "/w", "DeleteOptions"),
    ],
)
async def test_unknown_dry_run_value_is_422_on_the_options_kind(
    api_server, http, method, path, options
):
    """Only "All" is a dry-run value: any other is errors.NewInvalid on meta.k8s.io's options
    kind with ValidateDryRun's NotSupported cause, and nothing happens."""
    api_server.store.create("pods", build_test_pod("w"), namespace="default")
    version = api_server.store.resource_version
    body = build_test_pod("w") if method in ("POST", "PUT") else {}
    headers = MERGE if method == "PATCH" else None
    status, reply = await http(method, path + "?dryRun=All&dryRun=Some", body or None, headers)
    assert status == 422
    assert reply["reason"] == "Invalid"
    assert reply["message"] == (
        f'{options}.meta.k8s.io "" is invalid: dryRun: Unsupported value: '
        '[]string{"All", "Some"}: supported values: "All"'
    )
    assert reply["details"]["kind"] == options
    assert reply["details"]["causes"][0]["field"] == "dryRun"
    assert api_server.store.resource_version == version
