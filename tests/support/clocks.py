"""Clocks tests hand to code that takes one (`now=`, `clock=`), so time moves when a test says."""

from __future__ import annotations

import time


class ManualClock:
    """Seconds that change only by `advance` (or `set`): time as an argument, never waited for."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now

    def set(self, now: float) -> None:
        self.now = now


class TestClock:
    """Wall time plus an offset tests can move, so SDK-stamped dates stay close to it."""

    __test__ = False  # not a test class, despite the name

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds
