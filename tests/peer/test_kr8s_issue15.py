"""kr8s (pinned in pyproject's dev extra), async and sync, against `sim serve`: connecting (kr8s
checks GET /version/ first, with the trailing slash: issue 15), listing past its own page size of
100, getting by name and selector, watching, waiting for a condition, merge and JSON patches,
labels, deletion, and an eviction through kr8s's raw call (kr8s has no eviction method).

Waits poll with refresh() rather than kr8s's Pod.wait: that leaves its watch generator open when
it returns, and the generator's later close from another task raises anyio's "cancel scope in a
different task" as an unraisable exception (a kr8s matter, not the server's)."""

from __future__ import annotations

import contextlib
import gc
import json
import uuid
from typing import Any

import anyio
import kr8s
import kr8s.asyncio
import pytest
from kr8s.asyncio.objects import Namespace, Pod

from tests.peer.pods import ABSENT_NODE
from tests.peer.serving import Served

KR8S_PAGE = 100  # kr8s lists with limit=100 and follows `continue` (Api._async_get_single)


@pytest.fixture
async def api(served: Served) -> kr8s.asyncio.Api:
    return await kr8s.asyncio.api(kubeconfig=str(served.kubeconfig))


@pytest.fixture
async def ns(api: kr8s.asyncio.Api) -> str:
    name = f"kr8s-{uuid.uuid4().hex[:8]}"
    await Namespace({"metadata": {"name": name}}, api=api).create()
    return name


async def ready(pod: Pod) -> None:
    """Until the pod's Ready condition is True (bounded)."""
    with anyio.fail_after(10):
        while True:
            await pod.refresh()
            conditions = {c["type"]: c["status"] for c in pod.status.get("conditions", ())}
            if conditions.get("Ready") == "True":
                return
            await anyio.sleep(0.05)


async def deleted(pod: Pod) -> None:
    """Until the pod no longer exists (bounded)."""
    with anyio.fail_after(10):
        # the client offers no deletion event short of a watch (see the module docstring)
        while await pod.exists():  # noqa: ASYNC110
            await anyio.sleep(0.05)


def pod_spec(name: str, namespace: str, *, node: str | None = ABSENT_NODE, **labels: str) -> dict:
    """A busybox pod; by default bound to a node that does not exist, so nothing else changes it."""
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": spec,
    }


def test_sync_api_connects(served: Served):
    """kr8s.api(kubeconfig=...) checks the server's version as it connects."""
    api = kr8s.api(kubeconfig=str(served.kubeconfig))
    assert api.version()["gitVersion"].startswith("v1.")
    assert {"pods", "nodes", "namespaces"} <= {r["name"] for r in api.api_resources()}


async def test_list_past_one_page_get_by_name_and_selector(api: kr8s.asyncio.Api, ns: str):
    for index in range(KR8S_PAGE + 5):
        await Pod(pod_spec(f"p{index:03d}", ns, app="many" if index % 2 else "few"), api=api).create()  # fmt: skip
    everything = [pod.name async for pod in api.get("pods", namespace=ns)]
    assert everything == [f"p{index:03d}" for index in range(KR8S_PAGE + 5)]
    few = [pod.name async for pod in api.get("pods", namespace=ns, label_selector={"app": "few"})]
    assert few == [f"p{index:03d}" for index in range(0, KR8S_PAGE + 5, 2)]
    one = await Pod.get("p007", namespace=ns, api=api)
    assert one.labels == {"app": "many"}
    nodes = [node.name async for node in api.get("nodes")]
    assert nodes == ["cn-hangzhou.172.16.0.10"]


async def test_watch_since_a_version(api: kr8s.asyncio.Api, ns: str):
    """api.watch(since=rv) replays the changes after rv in order."""
    first = Pod(pod_spec("a", ns, app="w"), api=api)
    await first.create()
    since = first.metadata.resourceVersion
    await Pod(pod_spec("b", ns, app="w"), api=api).create()
    await first.label({"seen": "yes"})
    seen: list[tuple[str, str, str | None]] = []
    with anyio.fail_after(10):
        async with contextlib.aclosing(api.watch("pods", namespace=ns, since=since)) as stream:
            async for kind, obj in stream:
                seen.append((kind, obj.name, obj.labels.get("seen")))
                if len(seen) == 2:
                    break
    # kr8s leaves the response's line iterator to the garbage collector; finalise it on this
    # test's loop, not on a later test's
    gc.collect()
    await anyio.sleep(0.1)
    assert seen == [("ADDED", "b", None), ("MODIFIED", "a", "yes")]


async def test_ready_then_delete(api: kr8s.asyncio.Api, ns: str):
    """A scheduled pod becomes Ready on the demo node; deleted, it goes after its grace period."""
    pod = Pod(pod_spec("runs", ns, node=None, app="runs"), api=api)
    await pod.create()
    await ready(pod)
    assert pod.spec.nodeName == "cn-hangzhou.172.16.0.10"
    await pod.delete()
    await deleted(pod)


async def test_merge_and_json_patch(api: kr8s.asyncio.Api, ns: str):
    pod = Pod(pod_spec("patched", ns, app="p"), api=api)
    await pod.create()
    await pod.patch({"metadata": {"labels": {"merge": "1"}, "annotations": {"note": "x"}}})
    await pod.patch([{"op": "replace", "path": "/metadata/labels/app", "value": "q"}], type="json")
    await pod.refresh()
    assert pod.labels == {"app": "q", "merge": "1"}
    assert pod.annotations == {"note": "x"}


async def test_eviction_through_the_raw_call(api: kr8s.asyncio.Api, ns: str):
    """POST pods/NAME/eviction with a policy/v1 Eviction: 201, the pod terminates and goes."""
    pod = Pod(pod_spec("evicted", ns, node=None, app="e"), api=api)
    await pod.create()
    await ready(pod)
    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "evicted", "namespace": ns}}  # fmt: skip
    async with api.call_api("POST", version="v1", namespace=ns, url="pods/evicted/eviction", content=json.dumps(body)) as response:  # fmt: skip
        assert response.status_code == 201
    await deleted(pod)
