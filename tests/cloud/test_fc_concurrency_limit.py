"""The FC emulator's concurrency limit for asynchronous invocations (the EventBridge and Timer
triggers): at most `max_concurrency` runs at once; the others throttled and retried after 0.5 s,
then at doubling intervals (FC "Configure a retry mechanism"), dropped after 5 hours."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from agent.sim.cloud.credentials import static_test_keys
from agent.sim.cloud.fc_api import FC_STATE, FcSettings, build_fc_app, invocations_of
from agent.sim.cloud.fc_api import invoke_from_trigger as invoke
from agent.sim.cloud.fc_runtime import THROTTLE_RETRY_LIMIT_SECONDS, THROTTLED
from tests.support.waiting import until


class Gate:
    """A handler that holds every run until released, counting those inside."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.inside = 0
        self._lock = threading.Lock()

    def __call__(self, event: bytes, context: Any) -> bytes:
        with self._lock:
            self.inside += 1
        self.release.wait()
        return event


@contextlib.asynccontextmanager
async def hosted(
    handler: Any, *, limit: int, sleep: Callable[[float], Awaitable[None]]
) -> AsyncIterator[web.Application]:
    app = build_fc_app(
        handler,
        keys=static_test_keys(),
        service="s",
        function="f",
        now=lambda: 0.0,
        settings=FcSettings(max_concurrency=limit),
        sleep=sleep,
    )
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        yield app
    finally:
        await runner.cleanup()


async def test_runs_past_the_limit_wait_and_retry_at_doubling_intervals() -> None:
    """Five trigger invocations, limit 2: two run, three are throttled; their retries come at
    0.5, 1, 2 … s; once the two end the rest run, never more than two at once, all succeed."""
    gate = Gate()
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0.01)  # the retry interval itself passes on the fake clock

    async with hosted(gate, limit=2, sleep=sleep) as app:
        runs = [asyncio.create_task(invoke(app, b"%d" % i, kind="eventbridge")) for i in range(5)]
        await until(lambda: gate.inside == 2 and len(waits) >= 3, what="two in, three throttled")
        assert app[FC_STATE].running == 2
        gate.release.set()
        outcomes = await asyncio.gather(*runs)
    assert sorted(o.body for o in outcomes) == [b"%d" % i for i in range(5)]
    assert all(o.error_type is None for o in outcomes)
    assert app[FC_STATE].peak_running == 2 and gate.inside == 5
    assert waits.count(0.5) == 3  # each throttled invocation's first retry
    assert all(w in {0.5 * 2**k for k in range(20)} for w in waits)
    assert [r.status for r in invocations_of(app)] == [200] * 5


async def test_a_run_throttled_for_five_hours_is_dropped() -> None:
    """Limit 1 and a run that never ends: the second invocation retries 0.5, 1, 2 … s until the
    retries pass 5 hours, then is dropped as throttled (429), its handler never called."""
    gate = Gate()
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0)

    async with hosted(gate, limit=1, sleep=sleep) as app:
        first = asyncio.create_task(invoke(app, b"first", kind="timer"))
        await until(lambda: gate.inside == 1, what="the first run under way")
        second = await invoke(app, b"second", kind="eventbridge")
        gate.release.set()
        await first
    assert second.error_type == THROTTLED and gate.inside == 1
    assert waits == [0.5 * 2**k for k in range(len(waits))]
    assert sum(waits) >= THROTTLE_RETRY_LIMIT_SECONDS > sum(waits[:-1])
    assert [(r.kind, r.status) for r in invocations_of(app)] == [
        ("eventbridge", 429),
        ("timer", 200),
    ]
