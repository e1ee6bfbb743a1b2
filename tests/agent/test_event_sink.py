"""The event sink writes pod Events off the decision path: repeats of one Event coalesce into a
count bumped by PATCH (client-go's event recorder), an unchanged outcome within the repeat window
writes nothing, a full queue drops and counts, and stopping drops what it could not write in time.
Real HTTP against the simulated API server; the token bucket alone is pure logic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent.actuate.event_sink import EventSink, TokenBucket
from agent.clients.kube import KubeClient
from agent.sim.cluster import SimCluster

NS = "ray"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def sim() -> AsyncIterator[SimCluster]:
    async with SimCluster(speed=1.0, namespaces=[NS]) as cluster:
        yield cluster


@pytest.fixture
async def kube(sim: SimCluster) -> AsyncIterator[KubeClient]:
    client = await KubeClient.connect(api_url=sim.url, request_timeout=5)
    try:
        yield client
    finally:
        await client.close()


def pod(name: str) -> dict[str, Any]:
    return {"uid": f"uid-{name}", "namespace": NS, "name": name}


def events(sim: SimCluster) -> list[dict[str, Any]]:
    items, _ = sim.store.list("events", namespace=NS)
    return sorted(items, key=lambda e: (e["involvedObject"]["name"], e["message"]))


async def test_repeats_while_queued_are_one_event_with_their_count(
    sim: SimCluster, kube: KubeClient
) -> None:
    """Three rounds saying the same before the first write went out: one Event, count 3."""
    sink = EventSink(kube)
    for at in ("2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z", "2026-01-01T00:00:03Z"):
        sink.record(pod("w-1"), reason="NotTriggerScaleUp", message="no room", now=at)
    await sink.flush()
    [event] = events(sim)
    assert (event["count"], event["firstTimestamp"], event["lastTimestamp"]) == (
        3,
        "2026-01-01T00:00:01Z",
        "2026-01-01T00:00:03Z",
    )
    assert event["involvedObject"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "namespace": NS,
        "name": "w-1",
        "uid": "uid-w-1",
    }
    assert (sink.counters["created"], sink.counters["coalesced"]) == (1, 2)


async def test_an_unchanged_outcome_within_the_window_writes_nothing(
    sim: SimCluster, kube: KubeClient
) -> None:
    """The same message on the next round writes nothing; a new message is a new Event."""
    sink = EventSink(kube, clock=Clock())
    sink.record(pod("w-1"), reason="NotTriggerScaleUp", message="no room", now="t1")
    await sink.flush()
    [before] = events(sim)
    sink.record(pod("w-1"), reason="NotTriggerScaleUp", message="no room", now="t2")
    await sink.flush()
    assert events(sim) == [before]
    sink.record(pod("w-1"), reason="NotTriggerScaleUp", message="pool at max", now="t3")
    await sink.flush()
    assert [e["message"] for e in events(sim)] == ["no room", "pool at max"]
    assert (sink.counters["created"], sink.counters["unchanged"]) == (2, 1)


async def test_a_repeat_after_the_window_bumps_the_count_by_patch(
    sim: SimCluster, kube: KubeClient
) -> None:
    """Past the window the same Event object is patched: count covers every observation."""
    clock = Clock()
    sink = EventSink(kube, clock=clock, repeat_after_seconds=60)
    for at in ("t1", "t2"):
        sink.record(pod("w-1"), reason="NotTriggerScaleUp", message="no room", now=at)
        await sink.flush()
    clock.now += 61
    sink.record(pod("w-1"), reason="NotTriggerScaleUp", message="no room", now="t3")
    await sink.flush()
    [event] = events(sim)
    assert (event["count"], event["firstTimestamp"], event["lastTimestamp"]) == (3, "t1", "t3")
    assert (sink.counters["created"], sink.counters["patched"]) == (1, 1)


async def test_an_expired_event_is_created_again_with_its_count(
    sim: SimCluster, kube: KubeClient
) -> None:
    """The patch of an Event the API server no longer has (404) becomes a create."""
    clock = Clock()
    sink = EventSink(kube, clock=clock, repeat_after_seconds=60)
    sink.record(pod("w-1"), reason="NotTriggerScaleUp", message="no room", now="t1")
    await sink.flush()
    [first] = events(sim)
    sim.store.delete("events", first["metadata"]["name"], namespace=NS)
    clock.now += 61
    sink.record(pod("w-1"), reason="NotTriggerScaleUp", message="no room", now="t2")
    await sink.flush()
    [again] = events(sim)
    assert again["metadata"]["name"] != first["metadata"]["name"]
    assert again["count"] == 2
    assert (sink.counters["created"], sink.counters["failed"]) == (2, 0)


async def test_a_full_queue_drops_and_counts_instead_of_waiting(
    sim: SimCluster, kube: KubeClient
) -> None:
    """`record` never waits: past `queue_size` queued Events the rest are dropped, counted."""
    sink = EventSink(kube, queue_size=2)
    for i in range(5):
        sink.record(pod(f"w-{i}"), reason="TriggeredScaleUp", message="up", now="t1")
    assert sink.counters["dropped"] == 3
    await sink.flush()
    assert [e["involvedObject"]["name"] for e in events(sim)] == ["w-0", "w-1"]


async def test_stop_writes_what_it_can_in_time_and_drops_the_rest(
    sim: SimCluster, kube: KubeClient
) -> None:
    """A rate limit of one write and no refill: stop() ends after its limit, the rest counted
    as dropped, and nothing is left running."""
    sink = EventSink(kube, qps=0.001, burst=1)
    for i in range(3):
        sink.record(pod(f"w-{i}"), reason="TriggeredScaleUp", message="up", now="t1")
    await sink.stop(0.2)
    assert [e["involvedObject"]["name"] for e in events(sim)] == ["w-0"]
    assert (sink.counters["created"], sink.counters["dropped"], sink.queued) == (1, 2, 0)
    await sink.flush()  # returns at once: no drain left


async def test_a_refused_write_is_counted_and_the_next_one_goes_out(
    sim: SimCluster, kube: KubeClient
) -> None:
    """An Event the API server refuses (its namespace does not exist) costs that Event only."""
    sink = EventSink(kube)
    sink.record(
        {"uid": "u", "namespace": "missing", "name": "w-0"}, reason="R", message="m", now="t"
    )
    sink.record(pod("w-1"), reason="R", message="m", now="t")
    await sink.flush()
    assert sink.counters["failed"] == 1
    assert [e["involvedObject"]["name"] for e in events(sim)] == ["w-1"]


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    """Burst 2 at 10/s: two tokens at once, then one every 100 ms."""
    clock = Clock()
    bucket = TokenBucket(10.0, 2, clock=clock)
    assert [bucket.wait_seconds(), bucket.wait_seconds()] == [0.0, 0.0]
    assert bucket.wait_seconds() == pytest.approx(0.1)
    clock.now += 0.1
    assert bucket.wait_seconds() == 0.0
    clock.now += 10
    assert [bucket.wait_seconds(), bucket.wait_seconds(), bucket.wait_seconds() > 0] == [
        0.0,
        0.0,
        True,
    ]
