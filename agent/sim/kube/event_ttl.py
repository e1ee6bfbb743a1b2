"""The API server's bound on Events: each Event is deleted `--event-ttl` after its last write.

kube-apiserver stores Events with a TTL (`--event-ttl`, default 1h: cmd/kube-apiserver/app/
options/options.go `EventTTL: 1 * time.Hour`); the event registry's TTLFunc returns it on create
and on every update (pkg/registry/core/event/storage/storage.go), so etcd drops an Event an hour
after it was last written, whoever wrote it. Here a sweeper follows the store's writes to Events
and deletes those whose last write is older than the TTL, on the simulated clock (a write counts
from when the sweeper drains it, at most half a real second late). Deleting goes
through the store, so watchers see DELETED, as they do when etcd's lease expires.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Callable

from agent.sim.kube.store import ApiError, ObjectStore

EVENT_TTL_SECONDS = 3600.0
SWEEP_REAL_SECONDS = 0.5  # how often the sweeper looks (real time)


class EventTtl:
    """Deletes Events `ttl_seconds` (simulated) after their last write."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        now: Callable[[], float],
        ttl_seconds: float = EVENT_TTL_SECONDS,
    ) -> None:
        self._store = store
        self._now = now
        self.ttl_seconds = ttl_seconds
        # (namespace, name) -> simulated time of the last write, oldest write first
        self._written: OrderedDict[tuple[str, str], float] = OrderedDict()
        self.expired = 0

    def observe_write(self, namespace: str, name: str, at: float) -> None:
        key = (namespace, name)
        self._written[key] = at
        self._written.move_to_end(key)

    def forget(self, namespace: str, name: str) -> None:
        self._written.pop((namespace, name), None)

    def sweep(self) -> int:
        """Delete every Event whose TTL has run out; returns how many went."""
        deadline = self._now() - self.ttl_seconds
        gone = 0
        while self._written:
            (namespace, name), at = next(iter(self._written.items()))
            if at > deadline:
                break
            del self._written[(namespace, name)]
            with contextlib.suppress(ApiError):  # deleted meanwhile by a client
                self._store.delete("events", name, namespace=namespace)
                gone += 1
        self.expired += gone
        return gone

    async def run(self) -> None:
        subscription = self._store.subscribe(resources=("events",))
        try:
            existing, _ = self._store.list("events")
            now = self._now()
            for event in existing:
                meta = event.get("metadata") or {}
                self.observe_write(meta.get("namespace", ""), meta.get("name", ""), now)
            while not subscription.closed:
                # drained on a timer, not woken by each write: a burst of writes costs the
                # sweeper one pass, not one task switch per write
                await asyncio.sleep(SWEEP_REAL_SECONDS)
                now = self._now()
                for change in subscription.drain():
                    if change.resource != "events":
                        continue
                    meta = change.object.get("metadata") or {}
                    namespace, name = meta.get("namespace", ""), meta.get("name", "")
                    if change.type == "DELETED":
                        self.forget(namespace, name)
                    else:
                        self.observe_write(namespace, name, now)
                self.sweep()
        finally:
            subscription.close()
