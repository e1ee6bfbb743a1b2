"""The simulated scheduler's queue, as kube-scheduler's PriorityQueue keeps pending pods.

Upstream: pkg/scheduler/backend/queue/scheduling_queue.go (pkg/scheduler/internal/queue before
1.32). A pending pod is in one of three places, or in flight (popped, its attempt not answered):

- activeQ: pods to try now. A new pod goes here (`Add`); a pass pops them all (the stand-in
  decides a batch per pass where kube-scheduler pops one pod per cycle), and each pop counts an
  attempt (`Pop`: `Attempts++`).
- backoffQ: pods that may be schedulable again but whose backoff has not run out; the backoff is
  podInitialBackoffSeconds (1 s) doubled per attempt after the first, capped at
  podMaxBackoffSeconds (10 s) (`calculateBackoffDuration`; the defaults in
  pkg/scheduler/apis/config/v1/defaults.go), counted from the last failure (`Timestamp`). Every
  second the pods whose backoff ran out move to activeQ (`flushBackoffQCompleted`). A scheduler
  with activeQ empty pops from backoffQ without waiting (SchedulerPopFromBackoffQ, KEP-5142,
  on by default since 1.33): backoff only orders retries behind pods that are ready now. Pods
  that failed with no plugin rejecting them (no nodes at all) wait out their backoff
  (podErrorBackoffQ).
- unschedulablePods: pods that failed and wait for a cluster event that may change that. An event
  moves a pod back only when a QueueingHint of a plugin that rejected it says so
  (`movePodsToActiveOrBackoffQueue` → `isPodWorthRequeuing`, see `queueing_hints`), to backoffQ
  if it is still backing off, else to activeQ (`requeuePodViaQueueingHint`). Every 30 s the pods
  that have waited there longer than podMaxInUnschedulablePodsDuration (5 min) move back
  regardless (`flushUnschedulablePodsLeftover`).

A failed pod (`AddUnschedulableIfNotPresent`) goes to unschedulablePods unless an event received
while it was in flight may have changed its answer (`determineSchedulingHintForInFlightPod`), or
no plugin rejected it (no nodes at all): then it goes through backoff. An update of the pod itself
(`Update`) replaces it where it is; in unschedulablePods it is requeued when the update may make
it schedulable (the agent adding the ECI toleration), and a pod updated while in flight is added
to activeQ afresh, so the failure of the attempt in flight is dropped.

Times are simulated epoch seconds, passed in by the caller.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agent.sim.world import queueing_hints as hints

if TYPE_CHECKING:  # the scheduler imports this module
    from agent.sim.world.scheduler import NodeInfo, PodInfo

Key = tuple[str, str]

INITIAL_BACKOFF_SECONDS = 1.0  # podInitialBackoffSeconds
MAX_BACKOFF_SECONDS = 10.0  # podMaxBackoffSeconds
MAX_IN_UNSCHEDULABLE_SECONDS = 300.0  # podMaxInUnschedulablePodsDuration
BACKOFF_FLUSH_SECONDS = 1.0  # the flushBackoffQCompleted period
UNSCHEDULABLE_FLUSH_SECONDS = 30.0  # the flushUnschedulablePodsLeftover period

ACTIVE = "activeQ"
BACKOFF = "backoffQ"
UNSCHEDULABLE = "unschedulablePods"
IN_FLIGHT = "inFlight"

# An event kept for the pods in flight: does it queue a pod rejected by these plugins?
_Event = Callable[["PodInfo", frozenset[str]], bool]


def backoff_seconds(attempts: int) -> float:
    """The backoff after `attempts` attempts: 1 s, doubled per attempt after the first, ≤ 10 s."""
    duration = INITIAL_BACKOFF_SECONDS
    for _ in range(1, attempts):
        if duration > MAX_BACKOFF_SECONDS - duration:
            return MAX_BACKOFF_SECONDS
        duration += duration
    return duration


@dataclass
class QueuedPod:
    """QueuedPodInfo: the pod's scheduling view and its history in the queue."""

    key: Key
    pod: PodInfo
    timestamp: float  # added, or last failed
    attempts: int = 0
    rejectors: frozenset[str] = frozenset()  # UnschedulablePlugins of the last attempt

    def backoff_until(self) -> float:
        return self.timestamp + backoff_seconds(self.attempts)


@dataclass
class _Group:
    """Unschedulable pods with equal constraints and rejectors: every hint answers them alike."""

    pod: PodInfo
    rejectors: frozenset[str]
    members: dict[Key, QueuedPod] = field(default_factory=dict)


class SchedulingQueue:
    """activeQ, backoffQ, unschedulablePods and the pods in flight, keyed by (namespace, name)."""

    def __init__(self) -> None:
        self._active: dict[Key, QueuedPod] = {}
        self._backoff: dict[Key, QueuedPod] = {}
        self._backoff_heap: list[tuple[float, Key]] = []  # (backoff_until, key); stale ones skipped
        self._rejected_in_backoff = 0  # pods in backoffQ some plugin rejected (see `pop_all`)
        self._groups: dict[tuple[str, frozenset[str]], _Group] = {}
        self._group_of: dict[Key, tuple[str, frozenset[str]]] = {}
        self._in_flight: dict[Key, QueuedPod] = {}
        self._in_flight_events: list[_Event] = []
        # per (shape, rejectors): whether an event received in flight queues such a pod
        self._in_flight_hints: dict[tuple[str, frozenset[str]], bool] = {}

    # --- where pods are ---

    def where(self, key: Key) -> str | None:
        """Which queue holds the pod (ACTIVE, BACKOFF, UNSCHEDULABLE, IN_FLIGHT), or None."""
        if key in self._active:
            return ACTIVE
        if key in self._backoff:
            return BACKOFF
        if key in self._group_of:
            return UNSCHEDULABLE
        if key in self._in_flight:
            return IN_FLIGHT
        return None

    def get(self, key: Key) -> QueuedPod | None:
        """The queued pod wherever it is (in flight included)."""
        for place in (self._active, self._backoff, self._in_flight):
            if key in place:
                return place[key]
        group = self._group_of.get(key)
        return self._groups[group].members[key] if group is not None else None

    def has_work(self) -> bool:
        """Whether a pass would pop anything (see `pop_all`)."""
        return bool(self._active or self._rejected_in_backoff)

    def counts(self) -> dict[str, int]:
        """PendingPods' summary: how many pods each queue holds."""
        return {
            ACTIVE: len(self._active),
            BACKOFF: len(self._backoff),
            UNSCHEDULABLE: len(self._group_of),
            IN_FLIGHT: len(self._in_flight),
        }

    # --- the pod's own events ---

    def add(self, key: Key, pod: PodInfo, now: float) -> None:
        """A pod this scheduler owes a decision (new, or pending again): to activeQ."""
        if self.where(key) is not None:
            self.update(key, pod, now)
            return
        self._active[key] = QueuedPod(key, pod, now)

    def update(self, key: Key, pod: PodInfo, now: float) -> None:
        """The pod's scheduling constraints changed."""
        for place in (self._active, self._backoff):
            if key in place:
                place[key].pod = pod
                return
        group = self._group_of.get(key)
        if group is not None:
            queued = self._ungroup(key)
            old = queued.pod
            queued.pod = pod
            if hints.pod_update_queues(queued.rejectors, old, pod):
                self._requeue(queued, now)
            else:
                self._group(queued)
            return
        # in flight or unknown: a fresh entry in activeQ; a failure in flight is then dropped
        self._active[key] = QueuedPod(key, pod, now)

    def delete(self, key: Key) -> None:
        """The pod is bound, gone, or no longer this scheduler's."""
        self._active.pop(key, None)
        self._leave_backoff(key)
        self._in_flight.pop(key, None)
        if key in self._group_of:
            self._ungroup(key)

    # --- a scheduling pass ---

    def pop_all(self) -> list[QueuedPod]:
        """Every pod in activeQ, now in flight, each with one more attempt; with activeQ empty,
        every pod in backoffQ instead, backoff or not (SchedulerPopFromBackoffQ, KEP-5142: an
        idle scheduler does not sit out a backoff)."""
        if self._active:
            popped = list(self._active.values())
            self._active.clear()
        else:
            # only pods some plugin rejected: one that failed with no rejector (an error) sits
            # in podErrorBackoffQ, which is never popped early (backend/queue/backoff_queue.go)
            popped = [queued for queued in self._backoff.values() if queued.rejectors]
            for queued in popped:
                self._leave_backoff(queued.key)  # its heap entry is stale now
        self._done_in_flight()
        for queued in popped:
            queued.attempts += 1
            queued.rejectors = frozenset()
            self._in_flight[queued.key] = queued
        return popped

    def failed(self, key: Key, rejectors: frozenset[str], now: float) -> str | None:
        """The pod's attempt found no node; returns where it went, None if it was not in flight
        or was queued again meanwhile (updated while in flight)."""
        queued = self._in_flight.pop(key, None)
        if queued is None or self.where(key) is not None:
            self._done_in_flight()
            return None
        queued.timestamp = now
        queued.rejectors = rejectors
        group = (queued.pod.shape, rejectors)
        worth = self._in_flight_hints.get(group)
        if worth is None:
            worth = self._in_flight_hints[group] = not rejectors or any(
                event(queued.pod, rejectors) for event in self._in_flight_events
            )
        place = self._requeue(queued, now) if worth else self._group(queued)
        self._done_in_flight()
        return place

    def scheduled(self, key: Key) -> None:
        """The pod's attempt bound it."""
        self._in_flight.pop(key, None)
        self._done_in_flight()

    # --- cluster events ---

    def node_changed(self, old: NodeInfo | None, new: NodeInfo, now: float) -> None:
        """A node added (`old` None) or updated in a way the scheduler sees."""
        self._move_if(
            lambda pod, rejectors: hints.node_change_queues(pod, rejectors, old, new), now
        )

    def assigned_pod_freed(self, now: float) -> None:
        """An assigned pod was deleted or finished: its room is free."""
        self._move_if(lambda _pod, rejectors: hints.assigned_pod_freed_queues(rejectors), now)

    def flush_backoff(self, now: float) -> bool:
        """Move the pods whose backoff ran out to activeQ; True if any moved."""
        moved = False
        heap = self._backoff_heap
        while heap and heap[0][0] <= now:
            until, key = heapq.heappop(heap)
            queued = self._backoff.get(key)
            if queued is None or queued.backoff_until() != until:
                continue  # left backoffQ since, or went back in with a later expiry
            self._leave_backoff(key)
            self._active[key] = queued
            moved = True
        return moved

    def flush_unschedulable_leftover(self, now: float) -> None:
        """Move the pods unschedulable for longer than podMaxInUnschedulablePodsDuration back."""
        stale = [
            key
            for group in self._groups.values()
            for key, queued in group.members.items()
            if now - queued.timestamp > MAX_IN_UNSCHEDULABLE_SECONDS
        ]
        for key in stale:
            self._requeue(self._ungroup(key), now)

    # --- internals ---

    def _move_if(self, event: _Event, now: float) -> None:
        if self._in_flight:
            self._in_flight_events.append(event)
            self._in_flight_hints.clear()
        moving = [g for g, group in self._groups.items() if event(group.pod, group.rejectors)]
        for group_key in moving:
            group = self._groups.pop(group_key)
            for key, queued in group.members.items():
                del self._group_of[key]
                self._requeue(queued, now)

    def _requeue(self, queued: QueuedPod, now: float) -> str:
        """To backoffQ while the pod backs off, else to activeQ."""
        until = queued.backoff_until()
        if queued.attempts and until > now:
            self._backoff[queued.key] = queued
            self._rejected_in_backoff += bool(queued.rejectors)
            heapq.heappush(self._backoff_heap, (until, queued.key))
            return BACKOFF
        self._active[queued.key] = queued
        return ACTIVE

    def _leave_backoff(self, key: Key) -> None:
        queued = self._backoff.pop(key, None)
        if queued is not None:
            self._rejected_in_backoff -= bool(queued.rejectors)

    def _group(self, queued: QueuedPod) -> str:
        group_key = (queued.pod.shape, queued.rejectors)
        group = self._groups.get(group_key)
        if group is None:
            group = self._groups[group_key] = _Group(queued.pod, queued.rejectors)
        group.members[queued.key] = queued
        self._group_of[queued.key] = group_key
        return UNSCHEDULABLE

    def _ungroup(self, key: Key) -> QueuedPod:
        group_key = self._group_of.pop(key)
        group = self._groups[group_key]
        queued = group.members.pop(key)
        if not group.members:
            del self._groups[group_key]
        return queued

    def _done_in_flight(self) -> None:
        # events older than every pod in flight concern none of them (`done`)
        if not self._in_flight:
            self._in_flight_events.clear()
            self._in_flight_hints.clear()

    def __iter__(self) -> Iterator[QueuedPod]:
        yield from self._active.values()
        yield from self._backoff.values()
        for group in self._groups.values():
            yield from group.members.values()
        yield from self._in_flight.values()
