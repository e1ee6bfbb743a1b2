"""Bounded waits in real seconds, for state that other tasks move (a simulated world, an agent's
loops). Where a clock can be injected instead, tests inject it (tests.support.clocks)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from agent.sim.kube.store import ObjectStore


async def until(
    predicate: Callable[[], object],
    *,
    timeout: float = 15.0,
    what: str | None = None,
    interval: float = 0.02,
) -> None:
    """Poll `predicate` until it holds; fail naming `what` after `timeout` real seconds. For state
    that several parties move (agent, store, driver): there is no single event to await."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        await asyncio.sleep(interval)


async def store_until(
    store: ObjectStore, predicate: Callable[[], object], *, timeout: float = 5.0
) -> None:
    """Wait (bounded, in real seconds) until `predicate()` holds, re-checking on store changes."""
    subscription = store.subscribe()

    async def watch() -> None:
        while not predicate():
            if not await subscription.next_batch():
                raise AssertionError("store subscription closed")

    try:
        await asyncio.wait_for(watch(), timeout)
    finally:
        subscription.close()
