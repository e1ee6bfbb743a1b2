"""Batching: turns a stream of "this pod became unschedulable" triggers into decision rounds.

A window opens on the first trigger, extends on each new one until no trigger has arrived for
`idle_seconds`, and closes at the latest `max_seconds` after it opened; triggers are de-duplicated
by pod uid. Between windows a resync round fires every `resync_seconds` as a safety net (a lost
event, a pool that recovered, a node that never became Ready).

Defaults: 200 ms idle / 2 s max. Karpenter uses 1 s / 10 s because a launch takes minutes anyway;
we also place pods on ECI, where a pod starts in ~30 s, so a second of waiting is a visible share
of the reaction. The scheduler marks the pods of one Ray scale-up within tens of milliseconds of
each other (KubeRay creates them in one reconcile), so 200 ms of quiet means the burst is over:
one decision for the burst, a few hundred ms of reaction for a single pod. The 2 s cap bounds the
delay when pods trickle in forever (a large job ramping up). 30 s resync matches ACK's
cluster-autoscaler scan interval, which is how often people already expect a second look.

`BatchWindow` is pure (the time is an argument); `Batcher` drives it on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from agent.clients.timeouts import within

DEFAULT_IDLE_SECONDS = 0.2
DEFAULT_MAX_SECONDS = 2.0
DEFAULT_RESYNC_SECONDS = 30.0


@dataclass(frozen=True)
class Batch:
    """One decision round: the pods that triggered it (empty for a resync) and why it ran."""

    uids: frozenset[str]
    reason: str  # "pods" | "resync"
    opened_at: float
    closed_at: float


class BatchWindow:
    """The window's arithmetic, with the time passed in."""

    def __init__(
        self,
        *,
        idle_seconds: float = DEFAULT_IDLE_SECONDS,
        max_seconds: float = DEFAULT_MAX_SECONDS,
    ) -> None:
        if idle_seconds < 0 or max_seconds < 0:
            raise ValueError("batch windows cannot be negative")
        self.idle_seconds = idle_seconds
        self.max_seconds = max(max_seconds, idle_seconds)
        self._uids: set[str] = set()
        self._opened_at: float | None = None
        self._last_at = 0.0

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None

    def __len__(self) -> int:
        return len(self._uids)

    def add(self, uid: str, now: float, *, extend: bool = True) -> None:
        """Count a trigger; a uid already in the window does not extend it, nor does one with
        `extend=False` (a pod its RayCluster announced, already decided for): it joins the
        window, or opens one, but never holds an open window longer."""
        opening = self._opened_at is None
        if opening:
            self._opened_at = now
        elif uid in self._uids:
            return
        self._uids.add(uid)
        if extend or opening:
            self._last_at = now

    def closes_at(self) -> float | None:
        """When the window closes if no further trigger arrives; None when closed."""
        if self._opened_at is None:
            return None
        return min(self._last_at + self.idle_seconds, self._opened_at + self.max_seconds)

    def take(self, now: float) -> Batch | None:
        """The batch if the window is due at `now` (and reset), else None."""
        closes_at = self.closes_at()
        if closes_at is None or now < closes_at or self._opened_at is None:
            return None
        batch = Batch(frozenset(self._uids), "pods", self._opened_at, now)
        self._uids = set()
        self._opened_at = None
        return batch


class Batcher:
    """Waits for the next round: a closed window, or the resync tick when nothing happened.

    `trigger` is synchronous so the view's fold can call it inline; `next_batch` is awaited by the
    agent's decision loop. `clock` is a monotonic seconds function."""

    def __init__(
        self,
        window: BatchWindow,
        *,
        resync_seconds: float = DEFAULT_RESYNC_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window
        self.resync_seconds = resync_seconds
        self._clock = clock
        self._wakeup = asyncio.Event()
        self._next_resync = clock() + resync_seconds

    def trigger(self, uid: str, *, extend: bool = True) -> None:
        self.window.add(uid, self._clock(), extend=extend)
        self._wakeup.set()

    def request_resync(self) -> None:
        """Make the next round a resync as soon as no window is open (e.g. after a re-LIST)."""
        self._next_resync = self._clock()
        self._wakeup.set()

    async def next_batch(self) -> Batch:
        while True:
            now = self._clock()
            batch = self.window.take(now)
            if batch is not None:
                self._next_resync = now + self.resync_seconds
                return batch
            closes_at = self.window.closes_at()
            if closes_at is None and now >= self._next_resync:
                self._next_resync = now + self.resync_seconds
                return Batch(frozenset(), "resync", now, now)
            deadline = closes_at if closes_at is not None else self._next_resync
            self._wakeup.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await within(max(0.0, deadline - now), self._wakeup.wait())
