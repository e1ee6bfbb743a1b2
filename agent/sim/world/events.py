"""Events the simulated control plane records about pods and nodes, as client-go's event
recorder writes them: core/v1 Events, correlated before they reach the API.

Every component (the scheduler, each kubelet, the node controller) records through an
`EventRecorder`, which does what client-go's `EventCorrelator` does
(staging/src/k8s.io/client-go/tools/record/events_cache.go, `NewEventCorrelator`):

- dedup: an event equal to one already recorded (same source, involvedObject, type, reason and
  message: `getEventKey`) is not a new object; the existing Event's `count` goes up by one and
  its `lastTimestamp` moves, `firstTimestamp` and the name stay (`eventObserve`);
- aggregation: once 10 events differing only in their message are seen for the same source,
  object, type and reason within 600 s (`defaultAggregateMaxEvents`,
  `defaultAggregateIntervalInSeconds`), they are recorded as one Event whose message is
  "(combined from similar events): <latest message>" (`EventAggregatorByReasonMessageFunc`);
- spam filter: a source may write 25 events about one object, then one more every 300 s, a token
  bucket per source and object (`defaultSpamBurst`, `defaultSpamQPS`); a filtered occurrence is
  still counted, so the next write carries the full count;
- the caches are LRUs of 4096 entries (`maxLruCacheEntries`): a forgotten key starts a new Event;
- recording never blocks the component: as the broadcaster hands events to its sink goroutine
  through a queue that drops when full (record.go `maxQueuedEvents` = 1000,
  watch.DropIfChannelFull), writes queue here and a task makes them a batch at a time, so a
  scheduling pass over thousands of pods does not stall the simulated cluster while its Events
  are written. The bound here is 10 000: kube-scheduler records one pod per scheduling cycle
  while the sink drains, where the stand-in records a whole pass at once, and a bound of 1000
  would drop the Scheduled events of a large pass that upstream keeps.

An Event is named `<involvedObject.name>.<UnixNano in hex>` (record.go `makeEvent`), lives in the
involved object's namespace (`default` for a node), and carries source {component, host} with
reportingComponent/reportingInstance set from them, as the recorder fills them. Times come from
the simulated clock. A write that finds its Event gone (expired by the API server's event TTL)
creates it again with the running count, as `recordEvent` does after a NotFound patch.

kube-scheduler (≥1.19) records through the events.k8s.io/v1 broadcaster instead
(client-go tools/events/event_broadcaster.go), which has no spam filter and writes a repeat only
twice: the first occurrence, then the second as a series; later ones are counted in memory and
written when the series is refreshed, every 30 min (`refreshTime`; here at the first occurrence
30 min after the last write, rather than on a timer). A recorder made with
`series=True` does that, so a pod that failed to schedule fifty times still gets its Scheduled
event (the core/v1 spam filter, keyed by object and not by reason, would have eaten it). Repeats
are still shown as `count`/`lastTimestamp` of a core/v1 Event, which kubectl prints as it prints
a series ("(x3 over 2m)"); the similar-message aggregate is kept, so a pending pod whose message
changes with every node added makes ten Events, not one per node.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.sim.kube.store import ApiError, ObjectStore
from agent.sim.world.clock import SimClock

LRU_ENTRIES = 4096
AGGREGATE_MAX_EVENTS = 10
AGGREGATE_INTERVAL_SECONDS = 600.0
SPAM_BURST = 25
SPAM_REFILL_SECONDS = 300.0  # defaultSpamQPS = 1/300
SERIES_REFRESH_SECONDS = 1800.0  # tools/events refreshTime
AGGREGATE_PREFIX = "(combined from similar events): "
MAX_QUEUED_EVENTS = 10_000
WRITE_BATCH = 50  # writes between two yields to the event loop
NORMAL = "Normal"
WARNING = "Warning"


def object_reference(obj: Mapping[str, Any], *, field_path: str = "") -> dict[str, Any]:
    """The involvedObject of an Event about `obj` (reference.GetReference): kind, namespace,
    name, uid, apiVersion, resourceVersion, and for a container's events its fieldPath."""
    meta = obj.get("metadata") or {}
    reference: dict[str, Any] = {
        "kind": obj.get("kind", ""),
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "apiVersion": obj.get("apiVersion", ""),
        "resourceVersion": meta.get("resourceVersion", ""),
    }
    if not reference["namespace"]:
        del reference["namespace"]
    if field_path:
        reference["fieldPath"] = field_path
    return reference


def container_path(name: str) -> str:
    """The fieldPath the kubelet gives a container's events (ref.GetPartialReference)."""
    return f"spec.containers{{{name}}}"


def go_duration(seconds: float) -> str:
    """A duration as Go's time.Duration prints it, truncated to milliseconds: 500ms, 2s, 1m2.5s."""
    millis = int(max(0.0, seconds) * 1000)
    if millis == 0:
        return "0s"
    if millis < 1000:
        return f"{millis}ms"
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, fraction = divmod(rest, 1000)
    text = f"{whole}.{fraction:03d}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    if minutes:
        return f"{minutes}m{text}"
    return text


class _Lru(OrderedDict[str, Any]):
    """groupcache's lru.Cache: the least recently used key goes once `limit` is passed."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self._limit = limit

    def get_recent(self, key: str) -> Any:
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value

    def put(self, key: str, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > self._limit:
            self.popitem(last=False)


@dataclass
class _Observed:
    """eventLog: what the recorder last wrote for one key."""

    count: int
    first: str
    name: str
    namespace: str
    written: float = 0.0  # simulated time of the last write


@dataclass
class _Similar:
    """aggregateRecord: the distinct messages of one aggregate key, and when last seen."""

    messages: set[str]
    last: float


@dataclass
class _Bucket:
    """A token bucket (flowcontrol.NewTokenBucketRateLimiter) on the simulated clock."""

    tokens: float
    at: float


class EventRecorder:
    """Records core/v1 Events for one component (`source.component`), correlated as client-go does."""

    def __init__(
        self, store: ObjectStore, clock: SimClock, *, component: str, series: bool = False
    ) -> None:
        self._store = store
        self._clock = clock
        self.component = component
        self._series = series
        self._observed = _Lru(LRU_ENTRIES)
        self._similar = _Lru(LRU_ENTRIES)
        self._spam = _Lru(LRU_ENTRIES)
        self.written = 0  # Event creates and updates made (the cost the correlator bounds)
        self.dropped = 0  # occurrences lost to a full queue
        self._last_nanos = 0
        self._queue: deque[tuple[Any, ...]] = deque()
        self._writer: asyncio.Task[None] | None = None

    def record(
        self,
        involved: Mapping[str, Any],
        *,
        reason: str,
        message: str,
        event_type: str = NORMAL,
        host: str = "",
    ) -> None:
        """Record one occurrence about `involved` (an involvedObject, see `object_reference`);
        `host` is the source host (the kubelet's node name)."""
        now = self._clock.now()
        identity = "\x00".join(
            (
                self.component,
                host,
                str(involved.get("kind", "")),
                str(involved.get("namespace", "")),
                str(involved.get("name", "")),
                str(involved.get("uid", "")),
                str(involved.get("apiVersion", "")),
            )
        )
        # EventAggregate: group by everything but the message (reportingController and
        # -Instance equal the source here)
        aggregate_key = "\x00".join((identity, event_type, reason))
        similar = self._similar.get_recent(aggregate_key)
        if similar is None or now - similar.last > AGGREGATE_INTERVAL_SECONDS:
            similar = _Similar(set(), now)
        similar.messages.add(message)
        similar.last = now
        self._similar.put(aggregate_key, similar)
        key = "\x00".join(
            (identity, str(involved.get("fieldPath", "")), event_type, reason, message)
        )
        if len(similar.messages) >= AGGREGATE_MAX_EVENTS:
            similar.messages.pop()  # do not grow the set past the limit
            message = AGGREGATE_PREFIX + message
            key = aggregate_key
        # eventObserve: count the occurrence whether or not the spam filter lets it through
        observed = self._observed.get_recent(key)
        stamp = self._clock.iso(now)
        namespace = str(involved.get("namespace") or "default")
        if observed is None:
            # UnixNano, kept increasing: two events in one tick of the float clock stay apart
            self._last_nanos = max(int(now * 1e9), self._last_nanos + 1)
            name = f"{involved.get('name', '')}.{self._last_nanos:x}"
            observed = _Observed(count=1, first=stamp, name=name, namespace=namespace)
        else:
            observed.count += 1
        self._observed.put(key, observed)
        if self._series:
            if observed.count > 2 and now - observed.written < SERIES_REFRESH_SECONDS:
                return  # counted; written with the series' next refresh
        elif self._spam_filtered(identity, now):
            return
        observed.written = now
        if len(self._queue) >= MAX_QUEUED_EVENTS:
            self.dropped += 1
            return
        write = (observed, observed.count, dict(involved), reason, message, event_type, host, stamp)
        self._queue.append(write)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(
                self._write_queued(), name=f"events-{self.component}"
            )

    async def _write_queued(self) -> None:
        while self._queue:
            for _ in range(min(WRITE_BATCH, len(self._queue))):
                self._write(*self._queue.popleft())
            await asyncio.sleep(0)

    async def drain(self) -> None:
        """Wait until every queued write is made."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def aclose(self) -> None:
        """Stop writing; what is still queued is lost, as with a broadcaster shut down."""
        self._queue.clear()
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None

    def _spam_filtered(self, identity: str, now: float) -> bool:
        bucket = self._spam.get_recent(identity)
        if bucket is None:
            bucket = _Bucket(tokens=float(SPAM_BURST), at=now)
        bucket.tokens = min(
            float(SPAM_BURST), bucket.tokens + (now - bucket.at) / SPAM_REFILL_SECONDS
        )
        bucket.at = now
        self._spam.put(identity, bucket)
        if bucket.tokens < 1.0:
            return True
        bucket.tokens -= 1.0
        return False

    def _write(
        self,
        observed: _Observed,
        count: int,
        involved: Mapping[str, Any],
        reason: str,
        message: str,
        event_type: str,
        host: str,
        stamp: str,
    ) -> None:
        self.written += 1
        if count > 1:

            def bump(event: dict[str, Any]) -> None:
                event["count"] = count
                event["lastTimestamp"] = stamp
                event["message"] = message

            try:
                self._store.mutate("events", observed.name, bump, namespace=observed.namespace)
                return
            except ApiError as error:
                if error.code != 404:
                    return  # the recorder drops what it cannot write; so does client-go
        source: dict[str, str] = {"component": self.component}
        if host:
            source["host"] = host
        event: dict[str, Any] = {
            "metadata": {"name": observed.name, "namespace": observed.namespace},
            "involvedObject": dict(involved),
            "reason": reason,
            "message": message,
            "source": source,
            "firstTimestamp": observed.first,
            "lastTimestamp": stamp,
            "count": count,
            "type": event_type,
            "eventTime": None,
            "reportingComponent": self.component,
            "reportingInstance": host,
        }
        for _ in range(3):
            try:
                self._store.create("events", event, namespace=observed.namespace)
                return
            except ApiError as error:
                if error.code != 409:
                    return  # e.g. its namespace is gone: the event is lost, as upstream
                # another component named one the same nanosecond: the next one is free
                base, _, nanos = observed.name.rpartition(".")
                observed.name = event["metadata"]["name"] = f"{base}.{int(nanos, 16) + 1:x}"
