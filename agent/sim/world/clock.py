"""The simulated clock: epoch seconds that run `speed` times faster than real time.

Every simulator component takes one `SimClock` through its constructor and asks it for the time,
so a 120 s Ray task and a 60 s node boot pass in a few real seconds at a high speed factor. Only
this module reads the wall clock.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone


class SimClock:
    """Simulated epoch seconds advancing at `speed` × real time from `start`."""

    def __init__(self, *, speed: float = 1.0, start: float | None = None) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed!r}")
        self.speed = float(speed)
        # monotonic, so a wall-clock step on the host cannot make simulated time jump backwards
        self._real_origin = time.monotonic()
        self._sim_origin = time.time() if start is None else float(start)

    def now(self) -> float:
        """Simulated epoch seconds."""
        return self._sim_origin + (time.monotonic() - self._real_origin) * self.speed

    def iso(self, t: float | None = None) -> str:
        """RFC3339 UTC with a "Z", whole seconds as Kubernetes writes timestamps."""
        moment = self.now() if t is None else t
        return datetime.fromtimestamp(int(moment), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def real_seconds(self, sim_seconds: float) -> float:
        """How long `sim_seconds` of simulated time lasts in real time."""
        return max(0.0, sim_seconds) / self.speed

    async def sleep(self, sim_seconds: float) -> None:
        """Sleep for `sim_seconds` of simulated time."""
        await asyncio.sleep(self.real_seconds(sim_seconds))

    async def sleep_until(self, sim_time: float) -> None:
        """Sleep until the simulated clock reads at least `sim_time`."""
        await asyncio.sleep(self.real_seconds(sim_time - self.now()))


def parse_iso(value: str) -> float:
    """Epoch seconds of an RFC3339 timestamp as Kubernetes writes them ("...Z", optional fraction)."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()
