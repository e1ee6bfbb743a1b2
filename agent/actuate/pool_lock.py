"""Pool locks: one Kubernetes Lease per node pool, so agents sharing a pool take turns writing it.

ACK's ModifyClusterNodePool has no compare-and-set: two agents that read desired=2 at the same
moment and write 3 and 2 can lower the pool for a while, and on ACK a lowered desired may remove a
node. The Lease (coordination.k8s.io/v1) gives the compare-and-set CS lacks: it is created, or
taken over once expired by a replace carrying the resourceVersion we read; a 409 means another
agent won. Whoever holds it re-reads the pool and writes max(current, wanted), then frees it; an
agent that dies holding it blocks the pool for `duration_seconds` at most.

Scale-in holds the same Lease from cordon to RemoveNodePoolNodes (agent.scale_in.actuation), and
while clearing marks a crashed agent left (agent.scale_in.removals). Such a hold can outlast the
duration (a node's cordon and pod check, a CS call retried), so it is renewed on the way
(`refresh`): a replace of the Lease we hold, with its resourceVersion as precondition. If someone
took the Lease meanwhile (it had expired), the renewal fails and the holder stops before its next
write.

Expiry compares the Lease's renewTime with our clock; agents on one cluster share NTP-synced time,
and the short writes here hold the Lease for well under its duration.
"""

from __future__ import annotations

import asyncio
import calendar
import logging
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from agent.clients.kube import KubeError, KubeUnreachable

log = logging.getLogger(__name__)

LEASE_PREFIX = "ray-ack-scaler."
_NOT_IN_NAME = re.compile(r"[^a-z0-9.-]+")


class LeaseClient(Protocol):
    """The Lease calls a pool lock needs (agent.clients.kube.KubeClient provides them)."""

    async def get_lease(self, namespace: str, name: str) -> dict[str, Any]: ...

    async def create_lease(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]: ...

    async def replace_lease(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class LockSettings:
    namespace: str
    identity: str  # who holds it: the pod name (hostname) of the agent
    duration_seconds: int = 15
    # Bounded wait for another agent's write to finish; past it the pool is deferred a round.
    attempts: int = 20
    retry_seconds: float = 0.1


@dataclass(frozen=True)
class Held:
    """A lock we hold (acquired) or could not take (holder says who has it)."""

    pool_id: str
    acquired: bool
    holder: str = ""
    lease: dict[str, Any] | None = None


def lease_name(pool_id: str) -> str:
    """The Lease name for a pool: a DNS subdomain whatever the pool id looks like."""
    return (LEASE_PREFIX + _NOT_IN_NAME.sub("-", pool_id.lower())).strip(".-")[:253]


def micro_time(epoch: float) -> str:
    """A metav1.MicroTime, as Lease spec times are written."""
    whole = int(epoch)
    micros = round((epoch - whole) * 1_000_000)
    if micros == 1_000_000:
        whole, micros = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{micros:06d}Z"


def epoch_of_micro_time(text: str) -> float | None:
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z", text or "")
    if match is None:
        return None
    whole = calendar.timegm(time.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S"))
    return whole + float(match.group(2) or 0.0)


def holder_of(lease: dict[str, Any], *, now: float) -> str:
    """Who holds `lease` at `now`: "" when it is free or expired."""
    spec = lease.get("spec") or {}
    holder = str(spec.get("holderIdentity") or "")
    renewed = epoch_of_micro_time(str(spec.get("renewTime") or ""))
    duration = float(spec.get("leaseDurationSeconds") or 0)
    if not holder or renewed is None or renewed + duration <= now:
        return ""
    return holder


class PoolLock:
    """Acquire and release the per-pool Lease. `now` is the clock expiry is judged on."""

    def __init__(
        self,
        leases: LeaseClient,
        settings: LockSettings,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._leases = leases
        self._settings = settings
        self._now = now

    @property
    def settings(self) -> LockSettings:
        return self._settings

    async def acquire(self, pool_id: str) -> Held:
        """Take the pool's Lease, waiting a bounded number of retries while another agent has it."""
        holder = ""
        for attempt in range(max(1, self._settings.attempts)):
            if attempt:
                await asyncio.sleep(self._settings.retry_seconds)
            held = await self._try_once(pool_id)
            if held.acquired:
                return held
            holder = held.holder
        log.info("pool lock busy; deferring the pool", extra={"pool": pool_id, "holder": holder})
        return Held(pool_id, acquired=False, holder=holder)

    async def renew(self, held: Held) -> Held:
        """Write renewTime now on a Lease we hold; the precondition is the resourceVersion we
        hold, so a Lease someone else took after it expired is not taken back (acquired False,
        holder says who)."""
        if not held.acquired or held.lease is None:
            return held
        lease = dict(held.lease)
        spec = dict(lease.get("spec") or {})
        spec.update(
            holderIdentity=self._settings.identity,
            leaseDurationSeconds=self._settings.duration_seconds,
            renewTime=micro_time(self._now()),
        )
        lease["spec"] = spec
        try:
            renewed = await self._leases.replace_lease(self._settings.namespace, lease)
        except KubeError as exc:
            holder = "another agent (409)" if exc.status == 409 else f"unknown ({exc.status})"
            log.warning("pool lock lost", extra={"pool": held.pool_id, "holder": holder})
            return Held(held.pool_id, acquired=False, holder=holder)
        except KubeUnreachable as exc:
            log.warning("pool lock not renewed", extra={"pool": held.pool_id, "error": str(exc)})
            return Held(held.pool_id, acquired=False, holder=f"unknown ({exc})")
        return Held(held.pool_id, acquired=True, holder=self._settings.identity, lease=renewed)

    async def refresh(self, held: Held) -> Held:
        """`held`, renewed once a third of its duration has passed since the last renewal: call
        it before every write made under a Lease held for a while. acquired False: it is lost."""
        if not held.acquired or held.lease is None:
            return held
        spec = held.lease.get("spec") or {}
        renewed = epoch_of_micro_time(str(spec.get("renewTime") or ""))
        if renewed is not None and self._now() - renewed < self._settings.duration_seconds / 3:
            return held
        return await self.renew(held)

    async def release(self, held: Held) -> None:
        """Free a Lease we hold; if that fails it simply expires."""
        if not held.acquired or held.lease is None:
            return
        lease = dict(held.lease)
        spec = dict(lease.get("spec") or {})
        spec.pop("holderIdentity", None)
        spec["leaseDurationSeconds"] = 1
        lease["spec"] = spec
        try:
            await self._leases.replace_lease(self._settings.namespace, lease)
        except (KubeError, KubeUnreachable) as exc:
            log.info(
                "pool lock not released; it will expire",
                extra={"pool": held.pool_id, "error": str(exc)},
            )

    async def _try_once(self, pool_id: str) -> Held:
        namespace, name = self._settings.namespace, lease_name(pool_id)
        now = self._now()
        try:
            current = await self._leases.get_lease(namespace, name)
        except KubeError as exc:
            if exc.status != 404:
                return Held(pool_id, acquired=False, holder=f"unknown ({exc.status} {exc.reason})")
            current = None
        except KubeUnreachable as exc:
            return Held(pool_id, acquired=False, holder=f"unknown ({exc})")
        if current is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": name, "namespace": namespace},
                "spec": self._spec(now, transitions=0),
            }
            return await self._write(pool_id, body, create=True)
        holder = holder_of(current, now=now)
        if holder and holder != self._settings.identity:
            return Held(pool_id, acquired=False, holder=holder)
        spec = current.get("spec") or {}
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if holder else 1)
        # The resourceVersion we read is the precondition: 409 if anyone wrote it since.
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "resourceVersion": (current.get("metadata") or {}).get("resourceVersion"),
            },
            "spec": self._spec(now, transitions=transitions),
        }
        return await self._write(pool_id, body, create=False)

    async def _write(self, pool_id: str, body: dict[str, Any], *, create: bool) -> Held:
        namespace = self._settings.namespace
        try:
            if create:
                lease = await self._leases.create_lease(namespace, body)
            else:
                lease = await self._leases.replace_lease(namespace, body)
        except KubeError as exc:
            if exc.status == 409:
                return Held(pool_id, acquired=False, holder="another agent (409)")
            return Held(pool_id, acquired=False, holder=f"unknown ({exc.status} {exc.reason})")
        except KubeUnreachable as exc:
            return Held(pool_id, acquired=False, holder=f"unknown ({exc})")
        return Held(pool_id, acquired=True, holder=self._settings.identity, lease=lease)

    def _spec(self, now: float, *, transitions: int) -> dict[str, Any]:
        stamp = micro_time(now)
        return {
            "holderIdentity": self._settings.identity,
            "leaseDurationSeconds": self._settings.duration_seconds,
            "acquireTime": stamp,
            "renewTime": stamp,
            "leaseTransitions": transitions,
        }


SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
FALLBACK_NAMESPACE = "kube-system"


def default_namespace(path: str = SERVICE_ACCOUNT_NAMESPACE) -> str:
    """The agent's own namespace in a pod (its service account says), else kube-system."""
    try:
        with open(path, encoding="utf-8") as file:
            return file.read().strip() or FALLBACK_NAMESPACE
    except OSError:
        return FALLBACK_NAMESPACE


def default_identity() -> str:
    """The pod name: a pod's hostname is its name."""
    return socket.gethostname()
