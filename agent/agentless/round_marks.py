"""When the reconcile function's last round started, kept on a Lease, so that an event a round
already covers costs one read instead of a round.

A round covers every FailedScheduling that happened before its LISTs: they read the pod as the
scheduler left it. A burst writes an Event per pending pod and per retry, and EventBridge makes
each one an invocation; without this, each ran a whole round (LIST every pod, decide, apply).
So each round first writes its start on the Lease `ray-ack-scaler.reconcile-rounds` (in the
pool-lock namespace, where deploy/rbac.yaml's Role already grants leases get/create/update), and
an event invocation reads it first: an event that occurred before the start of a round that
finished, or is still running within the function's timeout, returns at once.

The Lease's spec says:
- `holderIdentity`: the round (`reconcile-<request id>`);
- `acquireTime`: when it started, written before its LISTs (compare-and-set on the Lease's
  resourceVersion: of two rounds starting together one writes, the other re-reads);
- `renewTime`: when it finished, absent while it runs;
- `leaseDurationSeconds`: how long it may run (the function's timeout). A round that neither
  finished nor raised within that was killed (FC's timeout) and covers nothing.
A round that raises puts the Lease back as it found it, so the events it covered are not lost:
FC retries the failed invocation (asynchronous invocations are retried, FC "Configure a retry
mechanism") and that retry's round starts after every one of them. A round that is killed
unwinds nothing; its events wait for the next uncovered event or the Timer's round.

Event times are compared with a margin (`EVENT_MARGIN_SECONDS`): a core/v1 Event's timestamps
have whole seconds, the eventer's and the function's clocks are only NTP-close, and
kube-scheduler writes the pod's Unschedulable condition and the Event in two requests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.actuate.pool_lock import LeaseClient, epoch_of_micro_time, micro_time
from agent.clients.kube import KubeError, KubeUnreachable

log = logging.getLogger(__name__)

ROUNDS_LEASE = "ray-ack-scaler.reconcile-rounds"
EVENT_MARGIN_SECONDS = 2.0
CLAIM_ATTEMPTS = 3


@dataclass(frozen=True)
class LastRound:
    """The Lease as read: the last round's identity, start, end (None: not finished) and the
    longest it may run."""

    holder: str
    started_at: float | None
    finished_at: float | None
    max_seconds: float
    lease: dict[str, Any] | None

    def covers(self, occurred_at: float | None, *, now: float) -> bool:
        """Whether this round's LISTs came after an event that occurred at `occurred_at`."""
        if occurred_at is None or self.started_at is None:
            return False
        if self.started_at <= occurred_at + EVENT_MARGIN_SECONDS:
            return False
        finished = self.finished_at is not None and self.finished_at >= self.started_at
        return finished or now < self.started_at + self.max_seconds


NO_ROUND = LastRound("", None, None, 0.0, None)


def last_round_of(lease: dict[str, Any] | None) -> LastRound:
    if lease is None:
        return NO_ROUND
    spec = lease.get("spec") or {}
    return LastRound(
        holder=str(spec.get("holderIdentity") or ""),
        started_at=epoch_of_micro_time(str(spec.get("acquireTime") or "")),
        finished_at=epoch_of_micro_time(str(spec.get("renewTime") or "")),
        max_seconds=float(spec.get("leaseDurationSeconds") or 0),
        lease=lease,
    )


@dataclass(frozen=True)
class Claimed:
    """A round's mark on the Lease: the Lease as written (for `finish`), and as it was before
    (for `unwind`). `lease` None: the mark could not be written, the round runs unmarked."""

    lease: dict[str, Any] | None
    before: dict[str, Any] | None


class RoundMarks:
    """The Lease's reads and writes, on `kube` (agent.clients.kube.KubeClient)."""

    def __init__(self, kube: LeaseClient, *, namespace: str, now: Callable[[], float]) -> None:
        self._kube = kube
        self._namespace = namespace
        self._now = now

    async def last(self) -> LastRound:
        """The last round, as the Lease says (NO_ROUND when there is none yet)."""
        try:
            return last_round_of(await self._kube.get_lease(self._namespace, ROUNDS_LEASE))
        except KubeError as error:
            if error.status == 404:
                return NO_ROUND
            raise

    async def claim(
        self, identity: str, *, max_seconds: float, occurred_at: float | None = None
    ) -> Claimed | LastRound:
        """Write this round's start; or, when another round wrote its own first and it covers
        `occurred_at`, that round (nothing to run). A mark that cannot be written is no reason
        not to run: the round runs unmarked (Claimed with lease None)."""
        for _ in range(CLAIM_ATTEMPTS):
            last = await self.last()
            if last.covers(occurred_at, now=self._now()):
                return last
            spec = {
                "holderIdentity": identity,
                "acquireTime": micro_time(self._now()),
                "leaseDurationSeconds": max(1, int(max_seconds)),
            }
            try:
                written = await self._write(last.lease, spec)
            except KubeError as error:
                if error.status == 409:  # another round marked it since our read: look again
                    continue
                log.warning("round start not marked", extra={"error": str(error)})
                return Claimed(None, last.lease)
            except KubeUnreachable as error:
                log.warning("round start not marked", extra={"error": str(error)})
                return Claimed(None, last.lease)
            return Claimed(written, last.lease)
        return Claimed(None, None)

    async def finish(self, claimed: Claimed) -> None:
        """Mark the round finished; if a later round marked the Lease since, leave it theirs."""
        if claimed.lease is None:
            return
        spec = {**(claimed.lease.get("spec") or {}), "renewTime": micro_time(self._now())}
        await self._replace_quietly(claimed.lease, spec, "round end not marked")

    async def unwind(self, claimed: Claimed) -> None:
        """Put the Lease back as this round found it (the round failed): unless a later round
        marked it since, the events this round would have covered are no longer covered."""
        if claimed.lease is None:
            return
        before = (claimed.before or {}).get("spec") or {}
        await self._replace_quietly(claimed.lease, dict(before), "failed round not unmarked")

    async def _write(self, current: dict[str, Any] | None, spec: dict[str, Any]) -> dict[str, Any]:
        if current is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": ROUNDS_LEASE, "namespace": self._namespace},
                "spec": spec,
            }
            return await self._kube.create_lease(self._namespace, body)
        # The whole spec replaced, with the resourceVersion we read as precondition (409 if not).
        return await self._kube.replace_lease(self._namespace, {**current, "spec": spec})

    async def _replace_quietly(
        self, lease: dict[str, Any], spec: dict[str, Any], what: str
    ) -> None:
        try:
            await self._kube.replace_lease(self._namespace, {**lease, "spec": spec})
        except KubeError as error:
            if error.status != 409:  # 409: a later round's mark, which stands
                log.warning(what, extra={"error": str(error)})
        except KubeUnreachable as error:
            log.warning(what, extra={"error": str(error)})
