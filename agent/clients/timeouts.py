"""A time limit on one await that never swallows a cancellation.

Before Python 3.12, `asyncio.wait_for` returns the inner result when a cancellation arrives in the
same loop iteration as that result (CPython gh-86296). A loop that awaits it and then carries on —
the pool refresh, the batcher — would then miss the agent's shutdown cancel and run forever.
`asyncio.timeout` (3.11+) re-raises the cancellation; Python 3.10 keeps `wait_for`, which only the
functions/ code package still needs to run on, and that never awaits this.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def within(seconds: float, awaitable: Awaitable[T]) -> T:
    """`awaitable`'s result, or asyncio.TimeoutError once `seconds` have passed."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)  # pragma: no cover - Python 3.10
