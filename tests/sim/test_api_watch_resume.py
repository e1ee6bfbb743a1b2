"""WATCH through kubernetes-asyncio: synthetic ADDED, resuming from a version, 410 Expired,
bookmarks, timeouts, selector transitions and the fault plan's stream cuts and expiries."""

from __future__ import annotations

import asyncio
import json

import pytest
from kubernetes_asyncio import watch
from kubernetes_asyncio.client.exceptions import ApiException

from tests.support.builders import build_test_pod


def pod(name: str, *, labels: dict[str, str] | None = None) -> dict:
    return build_test_pod(name, labels=labels or {})


def relabel(store, name: str, value: str) -> None:
    store.mutate(
        "pods", name, lambda p: p["metadata"]["labels"].update(app=value), namespace="default"
    )


async def collect(stream, count: int, *, timeout: float = 10.0) -> list[tuple[str, str]]:
    """The first `count` (type, name) pairs of a Watch stream, bounded in time."""
    seen: list[tuple[str, str]] = []

    async def read() -> None:
        async for event in stream:
            metadata = event["raw_object"]["metadata"]
            seen.append((event["type"], metadata.get("name", metadata["resourceVersion"])))
            if len(seen) == count:
                return

    await asyncio.wait_for(read(), timeout)
    return seen


async def test_unset_version_starts_with_synthetic_added(api_server, core):
    """Without a resourceVersion the watch opens with ADDED for each pod, then live changes."""
    store = api_server.store
    store.create("pods", pod("a"), namespace="default")
    store.create("pods", pod("b"), namespace="default")
    async with watch.Watch() as w:
        stream = w.stream(core.list_namespaced_pod, "default", timeout_seconds=5)
        first = await collect(stream, 2)
        store.create("pods", pod("c"), namespace="default")
        store.delete("pods", "a", namespace="default")
        later = await collect(stream, 2)
    assert sorted(first) == [("ADDED", "a"), ("ADDED", "b")]
    assert later == [("ADDED", "c"), ("DELETED", "a")]


async def test_resume_from_version_sends_only_later_changes(api_server, core):
    """A watch from the LIST's resourceVersion replays exactly the changes made after it."""
    store = api_server.store
    store.create("pods", pod("old", labels={"app": "x"}), namespace="default")
    listed = await core.list_namespaced_pod("default")
    store.create("pods", pod("new", labels={"app": "x"}), namespace="default")
    relabel(store, "old", "y")
    store.create("nodes", {"metadata": {"name": "n1"}})  # another resource: not in this stream
    async with watch.Watch() as w:
        stream = w.stream(
            core.list_namespaced_pod, "default",
            resource_version=listed.metadata.resource_version, timeout_seconds=5,
        )  # fmt: skip
        events = await collect(stream, 2)
    assert events == [("ADDED", "new"), ("MODIFIED", "old")]


async def test_deleted_event_carries_a_new_resource_version(api_server, core):
    """A DELETED event has the last state of the object with the deletion's resourceVersion."""
    store = api_server.store
    store.create("pods", pod("gone"), namespace="default")
    start = store.resource_version
    store.delete("pods", "gone", namespace="default")
    async with watch.Watch() as w:
        stream = w.stream(
            core.list_namespaced_pod, "default", resource_version=str(start), timeout_seconds=5
        )
        async for event in stream:
            assert event["type"] == "DELETED"
            assert event["raw_object"]["metadata"]["resourceVersion"] == str(start + 1)
            break


async def test_too_old_version_raises_410_after_one_retry(api_server, core):
    """A compacted version gives ApiException(410) once the client's single retry also fails."""
    store = api_server.store
    listed = await core.list_namespaced_pod("default")
    store.create("pods", pod("a"), namespace="default")
    store.compact()
    with pytest.raises(ApiException) as caught:
        async with watch.Watch() as w:
            stream = w.stream(
                core.list_namespaced_pod,
                "default",
                resource_version=listed.metadata.resource_version,
            )
            await collect(stream, 1)
    assert caught.value.status == 410
    assert "too old resource version" in caught.value.reason


async def test_too_old_version_is_200_with_one_error_event(api_server, core):
    """On the wire: HTTP 200, one ERROR event holding a 410 Expired Status, then EOF."""
    store = api_server.store
    old = store.resource_version
    store.create("pods", pod("a"), namespace="default")
    store.compact()
    response = await core.list_namespaced_pod(
        "default", watch=True, resource_version=str(old), _preload_content=False
    )
    assert response.status == 200
    lines = (await asyncio.wait_for(response.read(), 5)).splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410
    assert event["object"]["reason"] == "Expired"
    assert (
        event["object"]["message"]
        == f"too old resource version: {old} ({store.resource_version + 1})"
    )


async def test_bookmark_before_timeout_close(api_server, core):
    """With allowWatchBookmarks the stream ends with a BOOKMARK at the newest version, then EOF."""
    store = api_server.store
    store.create("nodes", {"metadata": {"name": "n1"}})
    async with watch.Watch() as w:
        stream = w.stream(
            core.list_namespaced_pod, "default", allow_watch_bookmarks=True, timeout_seconds=1,
            resource_version=str(store.resource_version),
        )  # fmt: skip
        events = [event async for event in stream]
    assert [event["type"] for event in events] == ["BOOKMARK"]
    bookmark = events[0]["raw_object"]
    assert bookmark == {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": str(store.resource_version)},
    }
    assert w.resource_version == str(store.resource_version)


async def test_no_bookmark_unless_asked(api_server, core):
    """Without allowWatchBookmarks the timeout closes the stream with no event at all."""
    async with watch.Watch() as w:
        stream = w.stream(
            core.list_namespaced_pod, "default", timeout_seconds=1,
            resource_version=str(api_server.store.resource_version),
        )  # fmt: skip
        events = [event async for event in stream]
    assert events == []


async def test_label_selector_transitions(api_server, core):
    """A pod relabelled out of the selector arrives as DELETED, relabelled back as ADDED."""
    store = api_server.store
    store.create("pods", pod("w", labels={"app": "ray"}), namespace="default")
    store.create("pods", pod("other", labels={"app": "web"}), namespace="default")
    async with watch.Watch() as w:
        stream = w.stream(
            core.list_namespaced_pod, "default", label_selector="app=ray", timeout_seconds=5
        )
        first = await collect(stream, 1)
        relabel(store, "other", "web2")  # never matched: nothing
        relabel(store, "w", "web")
        relabel(store, "w", "ray")
        later = await collect(stream, 2)
    assert first == [("ADDED", "w")]
    assert later == [("DELETED", "w"), ("ADDED", "w")]


async def test_field_selector_transition_when_pod_binds(api_server, core):
    """A watch on unbound pods sees a pod that gets a node as DELETED."""
    store = api_server.store
    store.create("pods", pod("p"), namespace="default")
    async with watch.Watch() as w:
        stream = w.stream(
            core.list_pod_for_all_namespaces, field_selector="spec.nodeName=", timeout_seconds=5
        )
        first = await collect(stream, 1)
        store.mutate(
            "pods", "p", lambda obj: obj["spec"].update(nodeName="n1"), namespace="default"
        )
        later = await collect(stream, 1)
    assert (first, later) == ([("ADDED", "p")], [("DELETED", "p")])


async def test_cut_streams_resume_without_loss_or_duplicates(api_server, core):
    """With the server cutting every stream after 3 events, the client still sees each change once."""
    store = api_server.store
    api_server.faults.watch_cut_every_events = 3
    start = str(store.resource_version)
    for index in range(10):
        store.create("pods", pod(f"p{index}"), namespace="default")
    raw = await core.list_namespaced_pod(
        "default", watch=True, resource_version=start, _preload_content=False
    )
    assert len((await asyncio.wait_for(raw.read(), 5)).splitlines()) == 3
    async with watch.Watch() as w:
        # no timeout_seconds: the client reconnects on EOF from the last version it saw
        stream = w.stream(core.list_namespaced_pod, "default", resource_version=start)
        events = await collect(stream, 10)
    assert events == [("ADDED", f"p{index}") for index in range(10)]


async def test_expiry_fault_compacts_history(api_server, core):
    """watch_expire_every_seconds compacts the history, so resuming from before it gets 410."""
    store = api_server.store
    old = str(store.resource_version)
    store.create("pods", pod("a"), namespace="default")
    api_server.faults.watch_expire_every_seconds = 0.05

    async def compacted() -> None:
        # compaction publishes no event to wait on, so poll the store (bounded below)
        while store.oldest_resource_version != store.resource_version:  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    await asyncio.wait_for(compacted(), 5)
    with pytest.raises(ApiException) as caught:
        async with watch.Watch() as w:
            await collect(w.stream(core.list_namespaced_pod, "default", resource_version=old), 1)
    assert caught.value.status == 410


async def test_a_cut_that_compacts_makes_the_resume_gone_and_the_plan_counts_both(api_server, core):
    """With watch_cut_expire_ratio 1, a cut also compacts the history (an apiserver restart):
    resuming from the stream's last version, older than the compaction when anything else changed
    in between, gets 410, and the fault plan counts the cut, the compaction and the 410."""
    store, faults = api_server.store, api_server.faults
    faults.watch_cut_every_events = 2
    faults.watch_cut_expire_ratio = 1.0
    start = str(store.resource_version)
    for name in ("a", "b"):
        store.create("pods", pod(name), namespace="default")
    # a change this stream does not show, before the cut: the store's version moves past "b"'s
    store.create("pods", pod("elsewhere"), namespace="kube-system")
    raw = await core.list_namespaced_pod(
        "default", watch=True, resource_version=start, _preload_content=False
    )
    lines = (await asyncio.wait_for(raw.read(), 5)).splitlines()
    last = json.loads(lines[-1])["object"]["metadata"]["resourceVersion"]
    assert int(last) < store.oldest_resource_version
    resumed = await core.list_namespaced_pod(
        "default", watch=True, resource_version=last, _preload_content=False
    )
    [error] = (await asyncio.wait_for(resumed.read(), 5)).splitlines()
    assert json.loads(error)["type"] == "ERROR"
    assert json.loads(error)["object"]["code"] == 410
    counts = faults.counts()
    assert (counts["watch_cuts"], counts["history_compactions"], counts["gone_410"]) == (1, 1, 1)


async def test_disconnected_watcher_releases_its_subscription(api_server, core):
    """When a client drops its watch, the server closes the stream's store subscription."""
    store = api_server.store
    store.create("pods", pod("a"), namespace="default")
    baseline = store.subscriber_count
    response = await core.list_namespaced_pod("default", watch=True, _preload_content=False)
    first = await asyncio.wait_for(response.content.readline(), 5)
    assert json.loads(first)["type"] == "ADDED"
    assert store.subscriber_count == baseline + 1
    response.close()

    async def released() -> None:
        # a disconnect publishes no store event to wait on, so poll (bounded below)
        while store.subscriber_count != baseline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    await asyncio.wait_for(released(), 5)
