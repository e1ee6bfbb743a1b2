"""The simulated scheduler's queue: per-pod backoff, QueueingHints, pod updates, the leftover flush.

Times are simulated seconds handed to the queue, so each rule is checked at its exact edge; the
scheduler runs the same calls from its watch and its clock (tests/sim/test_scheduler_events.py).
"""

from __future__ import annotations

from typing import Any

from agent.sim.world.queueing_hints import NODE_RESOURCES_FIT, TAINT_TOLERATION
from agent.sim.world.scheduler import NodeInfo, PodInfo, node_info, plan, pod_info
from agent.sim.world.scheduling_queue import (
    ACTIVE,
    BACKOFF,
    UNSCHEDULABLE,
    SchedulingQueue,
    backoff_seconds,
)
from tests.support.builders import build_test_node, build_test_pod

ECI_TAINT = {"key": "virtual-kubelet.io/provider", "value": "alibabacloud", "effect": "NoSchedule"}
ECI_TOLERATION = {
    "key": "virtual-kubelet.io/provider",
    "operator": "Exists",
    "effect": "NoSchedule",
}
KEY = ("ray", "w")


def pod(*, cpu: str = "2", tolerations: list[dict[str, Any]] | None = None) -> PodInfo:
    raw = build_test_pod("w", namespace="ray", container="c", image=None, cpu=cpu)
    if tolerations:
        raw["spec"]["tolerations"] = tolerations
    return pod_info(raw)


def node(name: str, **fields: Any) -> NodeInfo:
    return node_info(build_test_node(name, **fields))


def failed_once(queue: SchedulingQueue, info: PodInfo, rejectors: set[str], at: float) -> None:
    """The pod added at `at`, popped, and refused by `rejectors` at the same time."""
    queue.add(KEY, info, at)
    assert [q.key for q in queue.pop_all()] == [KEY]
    assert queue.failed(KEY, frozenset(rejectors), at) == UNSCHEDULABLE


def test_backoff_doubles_from_one_second_and_stops_at_ten():
    """podInitialBackoffSeconds 1, doubled per attempt after the first, podMaxBackoffSeconds 10."""
    assert [backoff_seconds(n) for n in range(1, 8)] == [1, 2, 4, 8, 10, 10, 10]


def test_a_requeued_pod_waits_out_its_backoff_then_each_failure_doubles_it():
    queue = SchedulingQueue()
    failed_once(queue, pod(), {NODE_RESOURCES_FIT}, at=100.0)

    queue.node_changed(None, node("big", cpu="8"), 100.2)  # fits: NodeResourcesFit queues it
    assert queue.where(KEY) == BACKOFF
    assert not queue.flush_backoff(100.9)  # attempt 1: backing off until 101
    assert queue.flush_backoff(101.0)
    assert queue.where(KEY) == ACTIVE

    for attempt, backoff in ((2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (6, 10.0)):
        failed_at = 200.0 * attempt
        assert queue.pop_all()[0].attempts == attempt
        queue.failed(KEY, frozenset({NODE_RESOURCES_FIT}), failed_at)
        queue.node_changed(None, node(f"n{attempt}", cpu="8"), failed_at)
        assert not queue.flush_backoff(failed_at + backoff - 0.01)
        assert queue.flush_backoff(failed_at + backoff)


def test_an_event_after_the_backoff_moves_the_pod_straight_to_active():
    queue = SchedulingQueue()
    failed_once(queue, pod(), {NODE_RESOURCES_FIT}, at=100.0)
    queue.node_changed(None, node("big", cpu="8"), 105.0)
    assert queue.where(KEY) == ACTIVE


def test_node_hints_queue_only_what_the_rejecting_plugins_may_now_accept():
    """A 2-CPU pod refused for room: a 1-CPU node, a label, a taint change leave it waiting; a
    node it fits on, or more allocatable on a node it now fits, moves it."""
    queue = SchedulingQueue()
    failed_once(queue, pod(), {NODE_RESOURCES_FIT}, at=0.0)

    small = node("small", cpu="1")
    queue.node_changed(None, small, 20.0)  # added, but the pod would not fit it even empty
    queue.node_changed(small, node("small", cpu="1", labels={"team": "a"}), 20.0)
    queue.node_changed(small, node("small", cpu="1", taints=[ECI_TAINT]), 20.0)
    assert queue.where(KEY) == UNSCHEDULABLE

    queue.node_changed(small, node("small", cpu="4"), 20.0)  # allocatable grew and now fits
    assert queue.where(KEY) == ACTIVE


def test_taint_hint_queues_a_pod_when_a_node_it_was_refused_by_turns_ready():
    """Refused by the not-ready taint of a booting node and for room elsewhere: the node turning
    Ready (the taint gone) moves it; the same node turning Ready does not move a pod that only
    lacked room, since its allocatable did not change."""
    booting = node("boot", cpu="8", ready=False)
    ready = node("boot", cpu="8")
    tainted_out, room_only = SchedulingQueue(), SchedulingQueue()
    failed_once(tainted_out, pod(), {NODE_RESOURCES_FIT, TAINT_TOLERATION}, at=0.0)
    failed_once(room_only, pod(), {NODE_RESOURCES_FIT}, at=0.0)

    for queue in (tainted_out, room_only):
        queue.node_changed(booting, ready, 30.0)
    assert tainted_out.where(KEY) == ACTIVE
    assert room_only.where(KEY) == UNSCHEDULABLE


def test_an_assigned_pod_freed_queues_pods_refused_for_room_only():
    room, taint = SchedulingQueue(), SchedulingQueue()
    failed_once(room, pod(), {NODE_RESOURCES_FIT}, at=0.0)
    failed_once(taint, pod(), {TAINT_TOLERATION}, at=0.0)
    for queue in (room, taint):
        queue.assigned_pod_freed(30.0)
    assert room.where(KEY) == ACTIVE
    assert taint.where(KEY) == UNSCHEDULABLE


def test_a_pod_refused_with_no_nodes_at_all_goes_through_backoff():
    """No rejecting plugin (no nodes): retried after its backoff, without waiting for an event."""
    queue = SchedulingQueue()
    queue.add(KEY, pod(), 0.0)
    queue.pop_all()
    [placement] = plan([queue.get(KEY).pod], {}, {})
    assert placement.rejectors == frozenset()
    assert queue.failed(KEY, placement.rejectors, 0.0) == BACKOFF
    assert not queue.flush_backoff(0.9)
    assert queue.flush_backoff(1.0)


def test_the_agent_adding_the_eci_toleration_requeues_the_pod():
    """Pod update (the queue's Update with the TaintToleration pod hint): within the backoff to
    backoffQ, after it to activeQ; a change no rejecting plugin asked about leaves it waiting."""
    eci, full = node("eci", cpu="1000", taints=[ECI_TAINT]), node("full", cpu="1")
    [placement] = plan([pod()], {"eci": eci, "full": full}, {})
    assert placement.rejectors == {NODE_RESOURCES_FIT, TAINT_TOLERATION}

    early, late = SchedulingQueue(), SchedulingQueue()
    for queue in (early, late):
        failed_once(queue, pod(), set(placement.rejectors), at=10.0)
    early.update(KEY, pod(tolerations=[ECI_TOLERATION]), 10.5)
    late.update(KEY, pod(tolerations=[ECI_TOLERATION]), 11.5)
    assert early.where(KEY) == BACKOFF
    assert late.where(KEY) == ACTIVE

    room_only = SchedulingQueue()
    failed_once(room_only, pod(), {NODE_RESOURCES_FIT}, at=10.0)
    room_only.update(KEY, pod(tolerations=[ECI_TOLERATION]), 11.5)
    assert room_only.where(KEY) == UNSCHEDULABLE
    assert room_only.get(KEY).pod.tolerations  # the queue holds the updated pod


def test_pods_unschedulable_for_over_five_minutes_are_flushed_back():
    queue = SchedulingQueue()
    failed_once(queue, pod(), {NODE_RESOURCES_FIT}, at=0.0)
    queue.flush_unschedulable_leftover(300.0)
    assert queue.where(KEY) == UNSCHEDULABLE
    queue.flush_unschedulable_leftover(300.5)
    assert queue.where(KEY) == ACTIVE


def test_an_event_while_the_pod_was_in_flight_is_not_lost():
    """A node added during the pod's attempt, which that attempt did not see, sends the failed
    pod to backoff rather than to wait for another event."""
    queue = SchedulingQueue()
    queue.add(KEY, pod(), 0.0)
    queue.pop_all()
    queue.node_changed(None, node("late", cpu="8"), 0.1)
    assert queue.failed(KEY, frozenset({NODE_RESOURCES_FIT}), 0.2) == BACKOFF


def test_a_pod_updated_in_flight_is_queued_afresh_and_its_failure_dropped():
    queue = SchedulingQueue()
    queue.add(KEY, pod(), 0.0)
    queue.pop_all()
    queue.update(KEY, pod(tolerations=[ECI_TOLERATION]), 0.1)
    assert queue.failed(KEY, frozenset({TAINT_TOLERATION}), 0.2) is None
    assert queue.where(KEY) == ACTIVE
    assert queue.get(KEY).attempts == 0


def test_an_idle_scheduler_pops_backoff_pods_at_once_but_busy_it_does_not():
    """SchedulerPopFromBackoffQ: with activeQ empty, rejected pods in backoffQ are popped before
    their backoff ends; with pods in activeQ, those go first and the backoffQ waits."""
    queue = SchedulingQueue()
    failed_once(queue, pod(), {NODE_RESOURCES_FIT}, at=0.0)
    queue.node_changed(None, node("big", cpu="8"), 0.1)
    assert queue.where(KEY) == BACKOFF
    other = ("ray", "other")
    queue.add(other, pod(), 0.2)
    assert [q.key for q in queue.pop_all()] == [other]
    assert queue.where(KEY) == BACKOFF
    assert queue.failed(other, frozenset({NODE_RESOURCES_FIT}), 0.3) == UNSCHEDULABLE
    assert queue.has_work()
    assert [q.key for q in queue.pop_all()] == [KEY]


def test_a_pod_no_plugin_rejected_sits_out_its_backoff_even_when_idle():
    """podErrorBackoffQ: no nodes at all is no plugin's rejection, so no early pop."""
    queue = SchedulingQueue()
    queue.add(KEY, pod(), 0.0)
    queue.pop_all()
    assert queue.failed(KEY, frozenset(), 0.0) == BACKOFF
    assert not queue.has_work()
    assert queue.pop_all() == []
    assert queue.flush_backoff(1.0)
    assert [q.key for q in queue.pop_all()] == [KEY]
