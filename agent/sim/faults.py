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
    # Nodes whose kubelet is stopped (a node-loss fault): no Lease renewals, no status posts, so
    # the node lifecycle controller marks the node NotReady (Unknown) after its grace period.
    _stopped_kubelets: set[str] = field(init=False, repr=False, default_factory=set)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def roll(self, ratio: float) -> bool:
        """True with probability `ratio`, reproducibly for a given seed."""
        return ratio > 0 and self._rng.random() < ratio

    def stop_kubelet(self, node: str) -> None:
        """Stop `node`'s kubelet, as a crashed kubelet or a host cut off from the API server."""
        self._stopped_kubelets.add(node)

    def start_kubelet(self, node: str) -> None:
        """Start `node`'s kubelet again: at its next heartbeat (within 10 s) it renews its Lease
        and posts its status."""
        self._stopped_kubelets.discard(node)

    def kubelet_stopped(self, node: str) -> bool:
        return node in self._stopped_kubelets
