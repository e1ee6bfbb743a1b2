"""Batch windows: open on the first trigger, extend while pods keep coming, close at a hard cap."""

from __future__ import annotations

import asyncio

import pytest

from agent.ingest.batching import Batcher, BatchWindow
from tests.support.clocks import ManualClock


def test_single_pod_closes_after_idle() -> None:
    """One trigger: the window closes one idle period later, not at the cap."""
    window = BatchWindow(idle_seconds=0.2, max_seconds=2.0)
    window.add("a", 10.0)
    assert window.take(10.19) is None
    batch = window.take(10.2)
    assert batch is not None
    assert batch.uids == {"a"}
    assert (batch.opened_at, batch.closed_at, batch.reason) == (10.0, 10.2, "pods")
    assert not window.is_open


def test_burst_extends_the_window_and_yields_one_batch() -> None:
    """Triggers closer than the idle limit keep the window open and land in one batch."""
    window = BatchWindow(idle_seconds=0.2, max_seconds=2.0)
    for i in range(10):
        window.add(f"p{i}", 10.0 + i * 0.1)
    assert window.closes_at() == pytest.approx(11.1)
    assert window.take(11.05) is None
    batch = window.take(11.1)
    assert batch is not None and len(batch.uids) == 10


def test_hard_maximum_bounds_a_trickle() -> None:
    """Pods that never stop coming are cut at max_seconds after the window opened."""
    window = BatchWindow(idle_seconds=0.2, max_seconds=2.0)
    t = 0.0
    while t < 5.0:
        window.add(f"p{t:.1f}", t)
        if window.take(t) is not None:
            break
        t += 0.1
    assert t == pytest.approx(2.0)


def test_duplicate_uid_neither_counts_twice_nor_extends() -> None:
    """A uid already in the window (the scheduler rewrote its condition) changes nothing."""
    window = BatchWindow(idle_seconds=0.2, max_seconds=2.0)
    window.add("a", 0.0)
    window.add("a", 0.15)
    assert window.closes_at() == pytest.approx(0.2)
    assert len(window) == 1


def test_window_reopens_after_take() -> None:
    """After a batch is taken the next trigger opens a fresh window."""
    window = BatchWindow(idle_seconds=0.2, max_seconds=2.0)
    window.add("a", 0.0)
    window.take(0.2)
    window.add("a", 5.0)
    batch = window.take(5.2)
    assert batch is not None and batch.opened_at == 5.0


def test_negative_windows_are_rejected() -> None:
    """A negative window is a configuration error."""
    with pytest.raises(ValueError):
        BatchWindow(idle_seconds=-1)


async def test_batcher_turns_a_burst_into_one_round() -> None:
    """Triggers arriving together produce one batch with every pod, then nothing until more."""
    clock = ManualClock()
    batcher = Batcher(
        BatchWindow(idle_seconds=0.05, max_seconds=1.0), resync_seconds=3600, clock=clock
    )
    for i in range(50):
        batcher.trigger(f"p{i}")
    clock.advance(0.05)  # the idle period passes without another trigger
    batch = await asyncio.wait_for(batcher.next_batch(), timeout=5)
    assert batch.reason == "pods" and len(batch.uids) == 50
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(batcher.next_batch(), timeout=0.2)


async def test_batcher_wakes_for_a_trigger_while_idle() -> None:
    """A waiting decision loop is woken by the first trigger."""
    clock = ManualClock()
    batcher = Batcher(
        BatchWindow(idle_seconds=0.01, max_seconds=1.0), resync_seconds=3600, clock=clock
    )
    waiting = asyncio.ensure_future(batcher.next_batch())
    for _ in range(3):  # let it reach its wait; the clock stands still, so nothing is due
        await asyncio.sleep(0)
    assert not waiting.done()
    batcher.trigger("late")
    clock.advance(0.01)
    batch = await asyncio.wait_for(waiting, timeout=5)
    assert batch.uids == {"late"}


async def test_resync_round_when_nothing_happens() -> None:
    """With no trigger, a resync round comes after resync_seconds (or on request)."""
    clock = ManualClock()
    batcher = Batcher(BatchWindow(), resync_seconds=50.0, clock=clock)
    clock.set(100.0)
    batch = await asyncio.wait_for(batcher.next_batch(), timeout=5)
    assert batch.reason == "resync" and batch.uids == frozenset()
    clock.set(0.0)
    batcher = Batcher(BatchWindow(), resync_seconds=3600, clock=clock)
    batcher.request_resync()
    batch = await asyncio.wait_for(batcher.next_batch(), timeout=5)
    assert batch.reason == "resync"


def test_a_trigger_that_does_not_extend_joins_or_opens_the_window() -> None:
    """extend=False (a pod its RayCluster announced): it joins an open window without holding it
    open longer, and opens one like any trigger when none is open."""
    window = BatchWindow(idle_seconds=0.2, max_seconds=2.0)
    window.add("rc-change", 0.0)
    window.add("announced-pod", 0.15, extend=False)
    assert window.closes_at() == pytest.approx(0.2)
    batch = window.take(0.2)
    assert batch is not None and batch.uids == {"rc-change", "announced-pod"}
    window.add("late-pod", 1.0, extend=False)
    assert window.closes_at() == pytest.approx(1.2)
