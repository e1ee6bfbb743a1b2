"""Fault injection for the simulated cluster: one mutable plan that the API server and the cloud
emulators consult, so a scenario (or a test) can switch faults on and off while it runs, and the
tally of the faults they injected (`injected`), by kind, for a run's summary."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

# The kinds `FaultPlan.note` counts, in the order a summary lists them.
CS_THROTTLED = "cs_throttled"  # a CS call answered 400 Throttling.User
CS_5XX = "cs_5xx"  # a CS call answered 503 ServiceUnavailable
FC_ERRORS = "fc_errors"  # an FC invocation answered 503
FC_TIMEOUTS = "fc_timeouts"  # an FC invocation held past the client's read timeout, then 504
WATCH_CUTS = "watch_cuts"  # a watch stream closed after watch_cut_every_events events
HISTORY_COMPACTIONS = "history_compactions"  # the store's history compacted on schedule
GONE_410 = "gone_410"  # a watch resume answered 410 Expired (its version compacted away)
FAULT_KINDS = (
    CS_THROTTLED,
    CS_5XX,
    FC_ERRORS,
    FC_TIMEOUTS,
    WATCH_CUTS,
    HISTORY_COMPACTIONS,
    GONE_410,
)


@dataclass
class FaultPlan:
    """Probabilities are per request; durations are in real seconds."""

    # Kubernetes API server
    watch_cut_every_events: int | None = None  # close a watch stream after this many events
    watch_expire_every_seconds: float | None = None  # compact history so resumes get 410 Expired
    # The share of cuts that also compact the history, as a kube-apiserver restart does (its new
    # watch cache starts at the current version): the cut stream's resume then gets 410 Expired
    # whenever anything changed after its last event. A scheduled compaction alone lands between
    # a cut and its resume (a few milliseconds) too rarely to show.
    watch_cut_expire_ratio: float = 0.0
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
    # What was injected so far, by kind (FAULT_KINDS); only the plan's consumers add to it.
    injected: Counter[str] = field(init=False, repr=False, default_factory=Counter)
    # Nodes whose kubelet is stopped (a node-loss fault): no Lease renewals, no status posts, so
    # the node lifecycle controller marks the node NotReady (Unknown) after its grace period.
    _stopped_kubelets: set[str] = field(init=False, repr=False, default_factory=set)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def note(self, kind: str) -> None:
        """Count one injected fault of `kind` (one of FAULT_KINDS)."""
        self.injected[kind] += 1

    def counts(self) -> dict[str, int]:
        """Every kind with its count so far, 0 for those never injected."""
        return {kind: self.injected[kind] for kind in FAULT_KINDS}

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
