"""Events of the simulated control plane: the recorder's correlation (dedup with count, the
similar-message aggregate, the per-object spam filter), the scheduler's and the kubelet's
reasons and messages, the API server's event TTL, and what `kubectl describe pod` shows."""

from __future__ import annotations

import asyncio
import json

import pytest

from agent.sim.kube.event_ttl import EventTtl
from agent.sim.kube.kubeconfig import write_kubeconfig
from agent.sim.kube.store import ObjectStore
from agent.sim.world.clock import SimClock
from agent.sim.world.events import (
    AGGREGATE_PREFIX,
    MAX_QUEUED_EVENTS,
    SPAM_BURST,
    EventRecorder,
    go_duration,
    object_reference,
)
from agent.sim.world.nodes import ready_node
from tests.support.clocks import ManualClock


class SteppedClock(SimClock):
    """A simulated clock that moves only when the test says (`advance`)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        super().__init__(start=start)
        self._manual = ManualClock(start)

    def now(self) -> float:
        return self._manual()

    def advance(self, seconds: float) -> None:
        self._manual.advance(seconds)


def _pod(store: ObjectStore, name: str = "w-1", cpu: str = "1") -> dict:
    return store.create(
        "pods",
        {
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "containers": [
                    {"name": "ray-worker", "image": "rayproject/ray:2.9.3",
                     "resources": {"requests": {"cpu": cpu}}}
                ]
            },
        },
    )  # fmt: skip


def _events(store: ObjectStore, reason: str | None = None) -> list[dict]:
    items, _ = store.list("events")
    return [e for e in items if reason is None or e["reason"] == reason]


@pytest.fixture
def clock() -> SteppedClock:
    return SteppedClock()


@pytest.fixture
def store(clock: SteppedClock) -> ObjectStore:
    return ObjectStore(now=clock.iso)


class TestCorrelation:
    async def test_a_repeated_event_is_one_object_whose_count_grows(self, store, clock):
        """Same object, reason and message: one Event, count 3, first and last timestamps apart."""
        recorder = EventRecorder(store, clock, component="default-scheduler")
        pod = object_reference(_pod(store))
        for _ in range(3):
            recorder.record(
                pod, reason="FailedScheduling", message="0/1 nodes", event_type="Warning"
            )
            clock.advance(30)
        await recorder.drain()
        [event] = _events(store, "FailedScheduling")
        assert event["count"] == 3
        assert event["firstTimestamp"] == clock.iso(clock.now() - 90)
        assert event["lastTimestamp"] == clock.iso(clock.now() - 30)
        assert event["metadata"]["name"].startswith("w-1.")
        int(event["metadata"]["name"].removeprefix("w-1."), 16)  # UnixNano in hex
        assert event["source"] == {"component": "default-scheduler"}
        assert event["reportingComponent"] == "default-scheduler"
        assert event["involvedObject"]["uid"] and event["involvedObject"]["resourceVersion"]

    async def test_ten_messages_of_one_reason_become_a_combined_event(self, store, clock):
        """The 10th distinct message within 10 minutes is recorded as "(combined from similar
        events): ...", and later ones bump that Event's count."""
        recorder = EventRecorder(store, clock, component="default-scheduler")
        pod = object_reference(_pod(store))
        for n in range(12):
            recorder.record(pod, reason="FailedScheduling", message=f"0/{n} nodes")
            clock.advance(1)
        await recorder.drain()
        events = _events(store, "FailedScheduling")
        plain = [e for e in events if not e["message"].startswith(AGGREGATE_PREFIX)]
        [combined] = [e for e in events if e["message"].startswith(AGGREGATE_PREFIX)]
        assert len(plain) == 9
        assert combined["count"] == 3 and combined["message"] == AGGREGATE_PREFIX + "0/11 nodes"

    async def test_the_spam_filter_holds_writes_but_keeps_counting(self, store, clock):
        """25 writes about one object, then none until the bucket refills (1 per 300 s); the
        next write carries every occurrence."""
        recorder = EventRecorder(store, clock, component="default-scheduler")
        pod = object_reference(_pod(store))
        for _ in range(SPAM_BURST + 10):
            recorder.record(pod, reason="FailedScheduling", message="same")
        await recorder.drain()
        assert recorder.written == SPAM_BURST
        assert _events(store)[0]["count"] == SPAM_BURST
        clock.advance(300)
        recorder.record(pod, reason="FailedScheduling", message="same")
        await recorder.drain()
        assert recorder.written == SPAM_BURST + 1
        assert _events(store)[0]["count"] == SPAM_BURST + 11

    async def test_the_scheduler_s_series_keeps_scheduled_after_many_failures(self, store, clock):
        """The events.k8s.io/v1 way: a repeat is written on its 2nd occurrence and then at the
        30-min refresh; no spam filter, so Scheduled follows fifty FailedScheduling."""
        recorder = EventRecorder(store, clock, component="default-scheduler", series=True)
        pod = object_reference(_pod(store))
        for _ in range(50):
            recorder.record(pod, reason="FailedScheduling", message="0/1 nodes")
            clock.advance(10)
        recorder.record(pod, reason="Scheduled", message="Successfully assigned default/w-1 to n1")
        await recorder.drain()
        assert recorder.written == 3
        [failed] = _events(store, "FailedScheduling")
        assert failed["count"] == 2
        assert _events(store, "Scheduled")
        clock.advance(1800)
        recorder.record(pod, reason="FailedScheduling", message="0/1 nodes")
        await recorder.drain()
        assert _events(store, "FailedScheduling")[0]["count"] == 51

    async def test_writes_queue_and_a_full_queue_drops(self, store, clock):
        """Recording returns at once; past 10 000 queued writes occurrences are dropped, as the
        broadcaster's full channel drops them."""
        recorder = EventRecorder(store, clock, component="default-scheduler")
        for n in range(MAX_QUEUED_EVENTS + 5):
            involved = {"kind": "Pod", "namespace": "default", "name": f"p{n}", "uid": str(n)}
            recorder.record(involved, reason="FailedScheduling", message="m")
        assert _events(store) == [], "nothing written before the writer runs"
        await recorder.drain()
        assert (recorder.written, recorder.dropped) == (MAX_QUEUED_EVENTS, 5)
        assert len(_events(store)) == MAX_QUEUED_EVENTS

    def test_go_durations_print_as_go_does(self):
        assert [go_duration(s) for s in (0.5, 2, 2.0045, 62.5, 3723)] == [
            "500ms", "2s", "2.004s", "1m2.5s", "1h2m3s",
        ]  # fmt: skip


class TestEventTtl:
    async def test_events_go_an_hour_after_their_last_write(self, store, clock):
        """An Event last written an hour ago is deleted; one written since is kept."""
        recorder = EventRecorder(store, clock, component="kubelet")
        ttl = EventTtl(store, now=clock.now)
        pod = object_reference(_pod(store))
        recorder.record(pod, reason="Pulling", message="old")
        recorder.record(pod, reason="Pulled", message="bumped")
        await recorder.drain()
        for event in _events(store):
            ttl.observe_write(
                event["metadata"]["namespace"], event["metadata"]["name"], clock.now()
            )
        clock.advance(1800)
        recorder.record(pod, reason="Pulled", message="bumped")
        await recorder.drain()
        [bumped] = _events(store, "Pulled")
        ttl.observe_write("default", bumped["metadata"]["name"], clock.now())
        clock.advance(1801)
        assert ttl.sweep() == 1
        assert [e["reason"] for e in _events(store)] == ["Pulled"]


class TestSchedulerAndKubeletEvents:
    async def test_a_pod_that_fits_nowhere_gets_failed_scheduling(self, sim):
        """Warning FailedScheduling from default-scheduler, the condition's message."""
        _pod(sim.store, cpu="64")
        sim.store.create("nodes", ready_node("n1", cpu="4"))
        await sim.until(lambda: _events(sim.store, "FailedScheduling"))
        [event] = _events(sim.store, "FailedScheduling")
        pod = sim.store.get("pods", "w-1", namespace="default")
        condition = pod["status"]["conditions"][0]
        assert event["type"] == "Warning" and event["message"] == condition["message"]
        assert event["message"].startswith("0/1 nodes are available: 1 Insufficient cpu.")
        assert event["source"]["component"] == "default-scheduler"

    async def test_a_bound_pod_records_scheduled_then_the_kubelet_s_events(self, sim):
        """Scheduled, Pulling, Pulled, Created, Started with the kubelet's wording; the second
        pod on the node finds the image already present."""
        sim.store.create("nodes", ready_node("n1"))
        _pod(sim.store, "w-1")
        await sim.until(lambda: _events(sim.store, "Started"))
        _pod(sim.store, "w-2")
        await sim.until(lambda: len(_events(sim.store, "Started")) == 2)
        first = {e["reason"]: e for e in _events(sim.store) if e["involvedObject"]["name"] == "w-1"}
        assert first["Scheduled"]["message"] == "Successfully assigned default/w-1 to n1"
        assert first["Pulling"]["message"] == 'Pulling image "rayproject/ray:2.9.3"'
        assert first["Pulled"]["message"].startswith(
            'Successfully pulled image "rayproject/ray:2.9.3" in 2'
        )
        assert "including waiting). Image size: " in first["Pulled"]["message"]
        assert first["Created"]["message"] == "Created container ray-worker"
        assert first["Started"]["message"] == "Started container ray-worker"
        assert first["Started"]["involvedObject"]["fieldPath"] == "spec.containers{ray-worker}"
        assert first["Started"]["source"] == {"component": "kubelet", "host": "n1"}
        second = {
            e["reason"]: e for e in _events(sim.store) if e["involvedObject"]["name"] == "w-2"
        }
        assert "Pulling" not in second
        assert second["Pulled"]["message"] == (
            'Container image "rayproject/ray:2.9.3" already present on machine'
        )

    async def test_a_booting_node_reports_not_ready_then_ready(self, sim):
        """NodeNotReady, then NodeReady, from the node's kubelet, about the node by name."""
        ready_at = sim.clock.now() + 20
        sim.store.create(
            "nodes",
            ready_node("n1", annotations={"sim.ray-ack-scaler.io/ready-at": f"{ready_at:.3f}"}),
        )
        await sim.until(lambda: _events(sim.store, "NodeReady"))
        reasons = [
            e["reason"] for e in sorted(_events(sim.store), key=lambda e: e["lastTimestamp"])
        ]
        assert reasons == ["NodeNotReady", "NodeReady"]
        ready = _events(sim.store, "NodeReady")[0]
        assert ready["message"] == "Node n1 status is now: NodeReady"
        assert ready["involvedObject"] == {"kind": "Node", "name": "n1", "uid": "n1"}
        assert ready["metadata"]["namespace"] == "default"


async def test_kubectl_describe_pod_shows_failed_scheduling_then_scheduled(
    sim_cluster, tmp_path, clean_env
):
    """A Pending worker: FailedScheduling in `kubectl describe pod`; once a node with room is
    Ready, Scheduled too."""
    kubeconfig = write_kubeconfig(sim_cluster.url, tmp_path / "kubeconfig")

    async def describe() -> str:
        process = await asyncio.create_subprocess_exec(
            "kubectl", "--kubeconfig", str(kubeconfig), "describe", "pod", "w-1",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=clean_env,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, err.decode()
        return out.decode()

    store = sim_cluster.store
    store.create("nodes", ready_node("small", cpu="1"))
    _pod(store, cpu="2")
    await store_events(store, "FailedScheduling")
    text = await describe()
    assert "Warning  FailedScheduling" in text and "default-scheduler" in text
    assert "0/1 nodes are available: 1 Insufficient cpu." in text
    store.create("nodes", ready_node("big", cpu="8"))
    await store_events(store, "Started")
    events = (await describe()).split("\nEvents:\n", 1)[1]
    reasons = [line.split()[1] for line in events.splitlines()[2:]]
    # kubectl sorts by lastTimestamp (whole seconds); the kubelet's events share a second
    failed = reasons.count("FailedScheduling")
    assert failed >= 1 and set(reasons[:failed]) == {"FailedScheduling"}
    assert sorted(reasons[failed:]) == ["Created", "Pulled", "Pulling", "Scheduled", "Started"]
    assert "Successfully assigned default/w-1 to big" in events


async def store_events(store: ObjectStore, reason: str) -> None:
    from tests.support.waiting import store_until

    await store_until(store, lambda: _events(store, reason))


async def test_event_objects_serialise_as_json(store, clock):
    """eventTime null, count an integer: the shape core/v1 clients decode."""
    recorder = EventRecorder(store, clock, component="kubelet")
    recorder.record(
        {"kind": "Node", "name": "n1", "uid": "n1"}, reason="NodeReady", message="m", host="n1"
    )
    await recorder.drain()
    event = json.loads(json.dumps(_events(store)[0]))
    assert event["eventTime"] is None and event["count"] == 1
    assert event["reportingInstance"] == "n1" and event["type"] == "Normal"
