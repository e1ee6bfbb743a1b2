"""Which node pools the agent decides with, and who owns each: the configured list, checked
against what CS reports.

A managed pool is listed in `managed_pools` with the bounds the agent keeps it in, and has ACK's
own node autoscaling off: the agent writes its desired size and removes its nodes. A companion
pool has ACK's node autoscaling on (`auto_scaling.enable=true`), listed or not: ACK's
cluster-autoscaler owns its desired size within its `min_instances`/`max_instances`, so the
decision sees it (pods it gives the pool are left to ACK) and the agent never writes it — two
autoscalers writing one pool undo each other. `allow_ack_autoscaled_pools` keeps a listed such
pool managed anyway; with `companion_pools` off a listed one is refused at start-up instead (the
behaviour before companion mode). The CS client stamps each pool's owner on every read
(agent.clients.cs.pool_info_from), so a pool whose ACK autoscaling is switched on or off changes
owner at the next pool resync, without a restart; each change is logged once. At start-up a
listed pool that does not exist stops the agent with a message saying what to change.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from agent.actuate.actuation import kube_event
from agent.model import PoolBounds, PoolInfo

log = logging.getLogger(__name__)

MANAGED = "managed"
COMPANION = "companion"
REFUSED = "refused"  # listed, ACK autoscaling on, companion_pools off: left alone
UNUSED = "unused"  # neither listed nor ACK-autoscaled
COMPANION_EVENT_REASON = "CompanionPools"


class PoolsRefused(Exception):
    """The configured pools cannot be managed as they are; the message says why and what to do."""


class ManagedPools:
    """The configured pools and the rule for using each."""

    def __init__(
        self,
        bounds: Iterable[PoolBounds],
        *,
        allow_ack_autoscaled: bool,
        companion_pools: bool = True,
    ) -> None:
        self.bounds = {b.pool_id: b for b in bounds}
        self._allow_ack_autoscaled = allow_ack_autoscaled
        self._companion_pools = companion_pools
        # pool id -> MANAGED | COMPANION | REFUSED | UNUSED as last selected; None before then
        self.owners: dict[str, str] | None = None

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
            elif pool.companion and not self._companion_pools:
                problems.append(
                    f"node pool {pool_id} ({pool.name}) has ACK node autoscaling enabled, so ACK "
                    "already sets its desired size; turn auto scaling off on the pool, remove it "
                    "from managed_pools, turn companion_pools on to leave it to ACK, or set "
                    "allow_ack_autoscaled_pools to manage it anyway"
                )
            elif pool.ack_autoscaling and not pool.companion:
                warnings.append(
                    f"node pool {pool_id} has ACK node autoscaling enabled and is managed anyway "
                    "(allow_ack_autoscaled_pools): both autoscalers will write its desired size"
                )
        if problems:
            raise PoolsRefused("; ".join(problems))
        companions = self._companion_pools and any(p.companion for p in by_id.values())
        if not self.bounds and not companions:
            warnings.append(
                "no managed_pools configured: pending pods go to ECI only, no node pool is scaled "
                "(set RAY_ACK_SCALER_MANAGED_POOLS=ID:MIN:MAX,...)"
            )
        return warnings

    def owner(self, pool: PoolInfo) -> str:
        """MANAGED, COMPANION, REFUSED or UNUSED: what the agent does with the pool now."""
        if pool.companion:
            if self._companion_pools:
                return COMPANION
            return REFUSED if pool.pool_id in self.bounds else UNUSED
        return MANAGED if pool.pool_id in self.bounds else UNUSED

    def select(self, pools: Iterable[PoolInfo]) -> list[PoolInfo]:
        """The pools the decision sees now: the managed ones (with their configured bounds) and
        the companions (with ACK's). Logs each change of owner since the last call."""
        pools = list(pools)
        owners = {pool.pool_id: self.owner(pool) for pool in pools}
        if self.owners is not None:
            by_id = {pool.pool_id: pool for pool in pools}
            for pool_id, now in owners.items():
                before = self.owners.get(pool_id, UNUSED)
                if now != before:
                    _log_change(by_id[pool_id], before, now)
        self.owners = owners
        return [pool for pool in pools if owners[pool.pool_id] in (MANAGED, COMPANION)]


def _log_change(pool: PoolInfo, before: str, now: str) -> None:
    level = logging.WARNING
    if now == COMPANION:
        text = (
            "node pool is now a companion: ACK node autoscaling is on, so ACK's autoscaler owns "
            f"its size ({bounds_text(pool)}); the agent decides with it and never writes it"
        )
    elif now == REFUSED:
        level, text = logging.ERROR, "node pool left alone: ACK node autoscaling was turned on"
    elif now == MANAGED:
        text = (
            "node pool is managed again: ACK node autoscaling was turned off; the agent scales "
            f"it within its configured bounds ({bounds_text(pool)})"
        )
    elif before == COMPANION:
        text = (
            "node pool no longer used: ACK node autoscaling was turned off and the pool is not "
            "in managed_pools"
        )
    else:
        return
    log.log(level, text, extra={"pool": pool.pool_id, "was": before})


def bounds_text(pool: PoolInfo) -> str:
    return f"min {pool.min_size}, max {pool.max_size}"


def companions_text(pools: Iterable[PoolInfo]) -> str:
    """One sentence naming the companion pools and their ACK bounds ("" when there are none)."""
    named = [f"{p.pool_id} ({bounds_text(p)})" for p in sorted(pools, key=lambda p: p.pool_id)]
    if not named:
        return ""
    return (
        f"companion pools: ACK's node autoscaler owns the size of {', '.join(named)}; "
        "ray-ack-scaler decides with them (ECI or another pool when the strategy prefers it, "
        "else the pods are left to ACK), never "
        "writing their desired size or removing their nodes"
    )


def left_for_ack_text(left: Iterable[Mapping[str, Any]]) -> str:
    """A round's pods left for ACK's autoscaler ({"pool", "pods"} each) as people read it:
    `3 left for ACK autoscaler on np-x, 1 left for ACK autoscaler on np-y` ("" for none)."""
    return ", ".join(f"{x['pods']} left for ACK autoscaler on {x['pool']}" for x in left)


def companions_event(
    involved: Mapping[str, Any], pools: Iterable[PoolInfo], *, now: str
) -> dict[str, Any]:
    """The start-up Event saying the same as the log line, about the agent's own Pod: the
    pools are no Kubernetes objects, and the agent is what took the decision to leave them."""
    namespace = str(involved.get("namespace") or "default")
    return kube_event(
        dict(involved),
        namespace,
        reason=COMPANION_EVENT_REASON,
        message=companions_text(pools),
        now=now,
    )
