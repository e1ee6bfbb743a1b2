"""Which node pools the agent scales: the configured list, checked against what CS reports.

A managed pool is listed in `managed_pools` with the bounds the agent keeps it in, and has ACK's
own node autoscaling off: `auto_scaling.enable=true` means ACK's autoscaler owns the pool's
desired size, and two autoscalers writing one pool undo each other. At start-up a listed pool
that does not exist, or that ACK autoscales (unless `allow_ack_autoscaled_pools`), stops the
agent with a message saying what to change. On every later read the same rules only filter:
a pool whose ACK autoscaling was switched on meanwhile is left alone, with an error logged once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from agent.model import PoolBounds, PoolInfo

log = logging.getLogger(__name__)


class PoolsRefused(Exception):
    """The configured pools cannot be managed as they are; the message says why and what to do."""


class ManagedPools:
    """The configured pools and the rule for using each."""

    def __init__(self, bounds: Iterable[PoolBounds], *, allow_ack_autoscaled: bool) -> None:
        self.bounds = {b.pool_id: b for b in bounds}
        self._allow_ack_autoscaled = allow_ack_autoscaled
        self._warned: set[str] = set()

    def check(self, pools: Iterable[PoolInfo]) -> list[str]:
        """Start-up: raises `PoolsRefused` naming every problem; returns warnings to log."""
        by_id = {pool.pool_id: pool for pool in pools}
        problems: list[str] = []
        warnings: list[str] = []
        for pool_id in self.bounds:
            pool = by_id.get(pool_id)
            if pool is None:
                known = ", ".join(f"{p.pool_id} ({p.name})" for p in by_id.values()) or "none"
                problems.append(f"node pool {pool_id} is not in the cluster (its pools: {known})")
            elif pool.ack_autoscaling and not self._allow_ack_autoscaled:
                problems.append(
                    f"node pool {pool_id} ({pool.name}) has ACK node autoscaling enabled, so ACK "
                    "already sets its desired size; turn auto scaling off on the pool, remove it "
                    "from managed_pools, or set allow_ack_autoscaled_pools to manage it anyway"
                )
            elif pool.ack_autoscaling:
                warnings.append(
                    f"node pool {pool_id} has ACK node autoscaling enabled and is managed anyway "
                    "(allow_ack_autoscaled_pools): both autoscalers will write its desired size"
                )
        if problems:
            raise PoolsRefused("; ".join(problems))
        if not self.bounds:
            warnings.append(
                "no managed_pools configured: pending pods go to ECI only, no node pool is scaled "
                "(set RAY_ACK_SCALER_MANAGED_POOLS=ID:MIN:MAX,...)"
            )
        return warnings

    def select(self, pools: Iterable[PoolInfo]) -> list[PoolInfo]:
        """The pools the agent may scale now (each carries its configured bounds)."""
        chosen = []
        for pool in pools:
            if pool.pool_id not in self.bounds:
                continue
            if pool.ack_autoscaling and not self._allow_ack_autoscaled:
                if pool.pool_id not in self._warned:
                    self._warned.add(pool.pool_id)
                    log.error(
                        "node pool left alone: ACK node autoscaling was turned on",
                        extra={"pool": pool.pool_id},
                    )
                continue
            self._warned.discard(pool.pool_id)
            chosen.append(pool)
        return chosen
