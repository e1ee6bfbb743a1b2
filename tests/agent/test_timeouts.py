"""agent.clients.timeouts.within: a time limit that lets a shutdown cancel through."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from agent.clients.timeouts import within


async def cancelled_as_it_completes(limit: Callable[[Awaitable[Any]], Awaitable[Any]]) -> bool:
    """Cancel a task whose limited await completes in the same loop iteration: did it end
    cancelled (True) or carry on with the result (False)?"""
    inner: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(limit(inner))
    await asyncio.sleep(0)  # the task now awaits `inner`
    inner.set_result(1)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        return True
    return False


async def test_a_cancel_that_meets_the_result_still_cancels() -> None:
    assert await cancelled_as_it_completes(lambda aw: within(10, aw))


async def test_the_result_within_the_limit() -> None:
    assert await within(1, asyncio.sleep(0, result="done")) == "done"


async def test_past_the_limit_a_timeout_error() -> None:
    with pytest.raises(asyncio.TimeoutError):
        await within(0.01, asyncio.sleep(1))
