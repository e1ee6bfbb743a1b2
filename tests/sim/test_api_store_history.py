"""The object store under the API: one global resourceVersion, bounded history with 410 for
versions it no longer holds, no-op mutations emit nothing, subscriptions see every change."""

from __future__ import annotations

import asyncio

import pytest

from agent.sim.kube.store import ApiError, ObjectStore


def make_store(limit: int = 50_000) -> ObjectStore:
    return ObjectStore(now=lambda: "2026-01-01T00:00:00Z", history_limit=limit)


def test_history_is_bounded_and_old_versions_expire():
    """Past the limit, old versions are 410 Expired; recent ones still replay in order."""
    store = make_store(limit=8)
    start = store.resource_version
    for index in range(30):
        store.create("nodes", {"metadata": {"name": f"n{index}"}})
    with pytest.raises(ApiError) as caught:
        store.events_since("nodes", start)
    assert (caught.value.code, caught.value.reason) == (410, "Expired")
    recent = store.events_since("nodes", store.resource_version - 5)
    assert [e.object["metadata"]["name"] for e in recent] == [f"n{i}" for i in range(25, 30)]


def test_versions_are_global_and_increasing():
    """Every write of any resource takes the next resourceVersion."""
    store = make_store()
    node = store.create("nodes", {"metadata": {"name": "n"}})
    pod = store.create(
        "pods", {"metadata": {"name": "p"}, "spec": {"containers": []}}, namespace="default"
    )
    assert int(pod["metadata"]["resourceVersion"]) == int(node["metadata"]["resourceVersion"]) + 1
    assert store.resource_version == int(pod["metadata"]["resourceVersion"])


def test_noop_mutation_emits_nothing_and_keeps_the_object():
    """mutate() that changes nothing returns the same object with no new version."""
    store = make_store()
    node = store.create("nodes", {"metadata": {"name": "n"}})
    version = store.resource_version
    assert store.mutate("nodes", "n", lambda obj: None) is node
    assert store.resource_version == version


def test_stale_replace_is_conflict():
    """replace() with an old metadata.resourceVersion is 409 Conflict."""
    store = make_store()
    node = store.create("nodes", {"metadata": {"name": "n"}})
    store.mutate("nodes", "n", lambda obj: obj["metadata"].update(labels={"a": "b"}))
    with pytest.raises(ApiError) as caught:
        store.replace("nodes", node)
    assert caught.value.code == 409


async def test_subscription_sees_every_change_in_order():
    """A subscription yields ADDED, MODIFIED (with the previous state) and DELETED in order."""
    store = make_store()
    subscription = store.subscribe()
    store.create("nodes", {"metadata": {"name": "n"}})
    store.mutate("nodes", "n", lambda obj: obj.update(spec={"unschedulable": True}))
    store.delete("nodes", "n")
    events = await asyncio.wait_for(subscription.next_batch(), 1)
    subscription.close()
    assert [e.type for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert events[1].previous is events[0].object
    assert [e.resource_version for e in events] == sorted(e.resource_version for e in events)
    assert await subscription.next_batch() == []
