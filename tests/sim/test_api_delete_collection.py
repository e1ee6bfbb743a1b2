"""DELETE on a collection (deletecollection) over real HTTP with kubernetes-asyncio, and the
discovery facts clients need around it: label and field selectors pick what goes, each pod goes
as its own DELETE would (gracefully when bound), the reply is the list as it was; the verb,
shortNames and the "all" category are discovered as kube-apiserver lists them; /version,
/healthz, /livez and /readyz answer with a trailing slash too."""

from __future__ import annotations

import aiohttp
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tests.support.builders import build_test_pod

NODE = "cn-hangzhou.172.16.0.17"


def _pods(store, *specs: tuple[str, str, str | None]) -> None:
    for name, app, node in specs:
        pod = build_test_pod(name, labels={"app": app}, node=node)
        store.create("pods", pod, namespace="default")


async def test_label_selector_picks_what_goes_and_bound_pods_go_gracefully(api_server, core):
    """app=x picks two pods: the unbound one is gone at once, the bound one is marked for its
    kubelet (deletionTimestamp), the app=y pod stays; the reply lists both as they were."""
    _pods(api_server.store, ("a", "x", None), ("b", "x", NODE), ("c", "y", None))
    await core.delete_collection_namespaced_pod("default", label_selector="app=x")
    left = {p.metadata.name: p for p in (await core.list_namespaced_pod("default")).items}
    assert sorted(left) == ["b", "c"]
    assert left["b"].metadata.deletion_timestamp is not None
    assert left["c"].metadata.deletion_timestamp is None


async def test_reply_is_the_list_before_the_delete(api_server, api_client):
    """Store.DeleteCollection answers the List it deleted from (kind PodList, items as listed)."""
    _pods(api_server.store, ("a", "x", None), ("b", "x", None))
    raw = await client.CoreV1Api(api_client).delete_collection_namespaced_pod(
        "default", label_selector="app=x", _preload_content=False
    )
    body = await raw.json()
    assert body["kind"] == "PodList"
    assert [p["metadata"]["name"] for p in body["items"]] == ["a", "b"]
    assert api_server.store.list("pods")[0] == []


async def test_field_selector_and_other_resources(api_server, api_client, core):
    """A field selector works as on a LIST; events and leases have the verb too."""
    _pods(api_server.store, ("a", "x", NODE), ("b", "x", None))
    await core.delete_collection_namespaced_pod(
        "default", field_selector="spec.nodeName=", grace_period_seconds=0
    )
    assert [p.metadata.name for p in (await core.list_namespaced_pod("default")).items] == ["a"]
    for name in ("e1", "e2"):
        await core.create_namespaced_event(
            "default", {"metadata": {"name": name}, "involvedObject": {"kind": "Pod", "name": "a"}}
        )
    await core.delete_collection_namespaced_event("default", field_selector="metadata.name=e1")
    assert [e.metadata.name for e in (await core.list_namespaced_event("default")).items] == ["e2"]
    coordination = client.CoordinationV1Api(api_client)
    await coordination.create_namespaced_lease("kube-system", {"metadata": {"name": "l"}})
    await coordination.delete_collection_namespaced_lease("kube-system")
    assert (await coordination.list_namespaced_lease("kube-system")).items == []


@pytest.mark.parametrize("path", ["/api/v1/namespaces", "/api/v1/pods"])
async def test_no_deletecollection_on_namespaces_nor_across_namespaces(api_server, core, path):
    """kube-apiserver serves no deletecollection on namespaces, and a namespaced resource's
    all-namespaces path only lists and watches: DELETE there is 405, and nothing goes."""
    _pods(api_server.store, ("a", "x", None))
    with pytest.raises(ApiException) as caught:
        await core.api_client.call_api(path, "DELETE")
    assert caught.value.status == 405
    assert len(api_server.store.list("pods")[0]) == 1


async def test_discovery_lists_verbs_short_names_and_categories(core):
    """What kubectl reads for `get all`, `delete -l` and short names."""
    resources = {r.name: r for r in (await core.get_api_resources()).resources}
    assert resources["pods"].categories == ["all"]
    assert resources["events"].categories is None  # core events have none
    assert {n: resources[n].short_names for n in ("pods", "nodes", "namespaces", "events")} == {
        "pods": ["po"],
        "nodes": ["no"],
        "namespaces": ["ns"],
        "events": ["ev"],
    }
    for name in ("pods", "nodes", "events"):
        assert "deletecollection" in resources[name].verbs
    assert "deletecollection" not in resources["namespaces"].verbs
    assert resources["namespaces/finalize"].verbs == ["update"]


@pytest.mark.parametrize(
    "path", ["/version", "/version/", "/healthz/", "/livez", "/livez/", "/readyz", "/readyz/"]
)
async def test_trailing_slash_forms_answer(api_server, path):
    """kr8s asks /version/; kube-apiserver answers the health paths with a slash too."""
    async with (
        aiohttp.ClientSession(trust_env=False) as session,
        session.get(api_server.url + path) as response,
    ):
        assert response.status == 200
        if path.startswith("/version"):
            assert (await response.json())["major"] == "1"
        else:
            assert await response.text() == "ok"
