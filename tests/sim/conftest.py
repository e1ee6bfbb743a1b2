"""Fixtures shared by the simulator's tests."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from agent.sim.clock import SimClock, parse_iso
from agent.sim.kubelet import Kubelet
from agent.sim.scheduler import Scheduler
from agent.sim.store import ObjectStore


@dataclass
class SimCore:
    """Store, scheduler and kubelet on a fast simulated clock, without the HTTP server."""

    clock: SimClock
    store: ObjectStore
    scheduler: Scheduler
    kubelet: Kubelet

    async def until(self, predicate: Callable[[], object], *, timeout: float = 5.0) -> None:
        """Wait (bounded, in real seconds) until `predicate()` holds after some store change."""
        subscription = self.store.subscribe()

        async def watch() -> None:
            while not predicate():
                if not await subscription.next_batch():
                    raise AssertionError("store subscription closed")

        try:
            await asyncio.wait_for(watch(), timeout)
        finally:
            subscription.close()

    @staticmethod
    def parse(timestamp: str) -> float:
        return parse_iso(timestamp)


@pytest.fixture
async def sim() -> AsyncIterator[SimCore]:
    """Scheduler and kubelet over an in-process store, simulated time 100× real time."""
    clock = SimClock(speed=100)
    store = ObjectStore(now=clock.iso)
    core = SimCore(clock, store, Scheduler(store, clock), Kubelet(store, clock))
    await core.scheduler.start()
    await core.kubelet.start()
    try:
        yield core
    finally:
        await core.kubelet.stop()
        await core.scheduler.stop()
