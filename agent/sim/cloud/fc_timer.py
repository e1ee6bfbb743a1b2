"""Function Compute's Timer trigger, on simulated time: the hosted function invoked every
`interval_seconds` with the event FC's "Time triggers" page documents,
`{"triggerTime": "<UTC, seconds>Z", "triggerName": NAME, "payload": MESSAGE}` (the trigger
message is the event's `payload`).

A tick does not wait for the last one's run: FC invokes on schedule whether or not an earlier
invocation is still running, so a slow function runs twice at once, as on FC. The first tick
comes one interval after start (an interval trigger counts from its creation).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)


class SimTime(Protocol):
    def now(self) -> float: ...

    async def sleep(self, sim_seconds: float) -> None: ...


def timer_event(*, trigger_name: str, at: float, payload: str) -> bytes:
    """The event a Timer trigger passes, its time in whole seconds UTC."""
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
    return json.dumps(
        {"triggerTime": when, "triggerName": trigger_name, "payload": payload}
    ).encode()


class TimerTrigger:
    """A SimCluster component: `invoke(event)` every `interval_seconds` of simulated time."""

    def __init__(
        self,
        clock: SimTime,
        invoke: Callable[[bytes], Awaitable[Any]],
        *,
        interval_seconds: float = 60.0,
        trigger_name: str = "reconcile-timer",
        payload: str = "",
    ) -> None:
        self._clock = clock
        self._invoke = invoke
        self.interval_seconds = interval_seconds
        self.trigger_name = trigger_name
        self._payload = payload
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[Any]] = set()
        self.ticks = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"fc-timer:{self.trigger_name}")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._running) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._task = None

    async def _run(self) -> None:
        while True:
            await self._clock.sleep(self.interval_seconds)
            self.ticks += 1
            event = timer_event(
                trigger_name=self.trigger_name, at=self._clock.now(), payload=self._payload
            )
            task = asyncio.ensure_future(self._invoke(event))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
