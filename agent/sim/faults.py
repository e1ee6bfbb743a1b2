"""Fault injection for the simulated cluster: one mutable plan that the API server and the cloud
emulators consult, so a scenario (or a test) can switch faults on and off while it runs."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class FaultPlan:
    """Probabilities are per request; durations are in real seconds."""

    # Kubernetes API server
    watch_cut_every_events: int | None = None  # close a watch stream after this many events
    watch_expire_every_seconds: float | None = None  # compact history so resumes get 410 Expired
    # ACK CS API
    cs_throttle_ratio: float = 0.0  # 400 Throttling.User
    cs_error_ratio: float = 0.0  # 503 ServiceUnavailable
    cs_latency_seconds: float = 0.0
    # Function Compute
    fc_error_ratio: float = 0.0  # 5xx from the service
    fc_timeout_ratio: float = 0.0  # the invocation hangs past the client's read timeout
    fc_latency_seconds: float = 0.0
    fc_cold_start_seconds: float = 0.0  # added to the first invocation after idle
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def roll(self, ratio: float) -> bool:
        """True with probability `ratio`, reproducibly for a given seed."""
        return ratio > 0 and self._rng.random() < ratio
