"""Serve an aiohttp app on 127.0.0.1 with a free port, and a settable clock for the emulators."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web


class TestClock:
    """Wall time plus an offset tests can move, so SDK-stamped dates stay close to it."""

    __test__ = False  # not a test class, despite the name

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Yield the endpoint "127.0.0.1:PORT" the SDKs take as `Config.endpoint`."""
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await runner.cleanup()
