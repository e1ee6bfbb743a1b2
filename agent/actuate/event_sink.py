"""The pod Events actuation records (TriggeredScaleUp, PlacedOnECI, NotTriggerScaleUp), written
off the decision path: bounded, rate-limited, coalesced, never awaited by a decision round.

A round hands each Event to `EventSink.record`, which returns at once; a background drain task
writes them. One Event per pod per round made the round's cost O(pods) of API writes, and the next
round waited for them (a 1,200-pod burst: 96–98 % of a round's wall time). Events are for people,
so losing some under pressure is acceptable; delaying a decision is not.

What is written follows client-go's event recorder (tools/record/events_cache.go, `eventLogger`
/ `EventCorrelator`), which keys an Event by source, involvedObject, type, reason and message:

* **Coalescing.** The same key seen again is the same Event with `count` bumped and
  `lastTimestamp` moved, sent as a PATCH of the existing object (client-go's `eventObserve`),
  never a new object per pod per round. A repeat that arrives while the first is still queued
  merges into the queued write.
* **Unchanged outcomes write nothing.** A key written less than `repeat_after_seconds` ago is only
  counted; the next write after that window carries the whole count. So a NotTriggerScaleUp with
  the same message on every resync round costs no write at all for five minutes — client-go's
  per-object spam filter refills at one Event per 5 minutes (`defaultSpamQPS = 1/300`) for the
  same reason.
* **Bounded.** At most `queue_size` distinct Events wait (client-go's broadcaster queue is 1,000
  deep and drops when full, `watch.DropIfChannelFull`); an Event that does not fit is dropped and
  counted, never waited for. What was said is remembered for the `remember` most recent keys
  (an LRU, like client-go's 4,096-entry cache; larger here because one burst names thousands of
  pods).
* **Rate-limited.** Writes take a token from a bucket (`qps`, `burst`) and at most `concurrency`
  run at once, so a burst's Events trickle out instead of competing with the ECI patches and the
  watches for the API server (and, in dev mode, the event loop the simulator shares).

An Event is named `<pod>.<hex nanoseconds>` as client-go's `makeEvent` does, so a repeat can be
patched without reading the created object back. A patch of an Event that expired (the API
server keeps Events an hour by default) is answered 404 and the Event is created again, as
client-go's `recordEvent` does. `flush` waits until every queued Event is written (tests read
Events after it); `stop` flushes within a time limit and drops the rest (the agent's shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from agent.clients.kube import KubeError
from agent.clients.timeouts import within

log = logging.getLogger(__name__)

COMPONENT = "ray-ack-scaler"
GONE = 404
# client-go: an object's Events refill at one per 5 minutes once its burst is spent.
REPEAT_AFTER_SECONDS = 300.0
QUEUE_SIZE = 5000
REMEMBER = 20_000
CONCURRENCY = 4
# Enough that a 1,000-pod burst's Events are out within seconds; few enough to leave the API
# server's default in-flight budget (400 mutating requests) to the writes that serve pods.
QPS = 100.0
BURST = 200
STOP_SECONDS = 5.0


class EventWriter(Protocol):
    """The Event calls the sink makes (agent.clients.kube.KubeClient provides them)."""

    async def create_event(self, namespace: str, body: dict[str, Any]) -> None: ...

    async def patch_event(self, namespace: str, name: str, patch: dict[str, Any]) -> None: ...


Key = tuple[str, str, str, str, str, str]


@dataclass
class _Said:
    """What is known about one key: the Event's name ("" until its create is sent), how often it
    was observed, when first, and when (sink clock) it was last written."""

    name: str
    count: int
    first: str
    last: str
    written_at: float | None = None


@dataclass
class _Write:
    namespace: str
    body: dict[str, Any]  # the full Event, for a create
    patch_name: str  # "" for a create


def pod_reference(pod: Mapping[str, Any]) -> dict[str, Any]:
    """The involvedObject of an Event about `pod` (a decide/v1 request pod)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "namespace": str(pod.get("namespace") or "default"),
        "name": str(pod.get("name", "")),
        "uid": str(pod.get("uid", "")),
    }


class TokenBucket:
    """`rate` tokens a second up to `burst`; `take` waits for one. The clock is an argument."""

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self._rate, self._burst, self._clock = rate, float(burst), clock
        self._tokens = float(burst)
        self._at = clock()

    def wait_seconds(self) -> float:
        """Take a token now and return 0, or return how long until one is there (none taken)."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self._rate

    async def take(self) -> None:
        wait = self.wait_seconds()
        while wait > 0:
            # a timer, not an event: tokens come back with time, nothing else hands them out
            await asyncio.sleep(wait)
            wait = self.wait_seconds()


class EventSink:
    """Records pod Events without making the caller wait; see the module docstring."""

    def __init__(
        self,
        writer: EventWriter,
        *,
        queue_size: int = QUEUE_SIZE,
        concurrency: int = CONCURRENCY,
        qps: float = QPS,
        burst: int = BURST,
        repeat_after_seconds: float = REPEAT_AFTER_SECONDS,
        remember: int = REMEMBER,
        stop_seconds: float = STOP_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._writer = writer
        self._stop_seconds = stop_seconds
        self._queue_size = queue_size
        self._concurrency = max(1, concurrency)
        self._bucket = TokenBucket(qps, burst, clock=clock)
        self._repeat_after = repeat_after_seconds
        self._remember = max(remember, queue_size)
        self._clock = clock
        self._said: OrderedDict[Key, _Said] = OrderedDict()
        self._queue: OrderedDict[Key, None] = OrderedDict()
        self._drain: asyncio.Task[None] | None = None
        self._last_stamp = 0
        self.counters: dict[str, int] = {
            "recorded": 0,  # handed to the sink
            "created": 0,  # Event objects created
            "patched": 0,  # existing Events with their count bumped
            "coalesced": 0,  # merged into a write still queued
            "unchanged": 0,  # said within the repeat window: counted, not written
            "dropped": 0,  # the queue was full, or the agent stopped first
            "failed": 0,  # the API server refused or could not be reached
        }

    @property
    def queued(self) -> int:
        return len(self._queue)

    def record(
        self,
        pod: Mapping[str, Any],
        *,
        reason: str,
        message: str,
        now: str,
        event_type: str = "Normal",
    ) -> None:
        """Note that `reason`/`message` happened to `pod` (a request pod) at `now` (RFC 3339).
        Never waits: the write, if one is due, happens in the background."""
        self.counters["recorded"] += 1
        ref = pod_reference(pod)
        key: Key = (ref["namespace"], ref["name"], ref["uid"], event_type, reason, message)
        said = self._said.get(key)
        if said is not None:
            self._said.move_to_end(key)
            said.count += 1
            said.last = now
            if key in self._queue:
                self.counters["coalesced"] += 1
                return
            if said.written_at is not None and self._clock() - said.written_at < (
                self._repeat_after
            ):
                self.counters["unchanged"] += 1
                return
        if len(self._queue) >= self._queue_size:
            self.counters["dropped"] += 1
            if said is not None:
                said.count -= 1  # not said, so not counted
            return
        if said is None:
            said = _Said(name="", count=1, first=now, last=now)
            self._said[key] = said
            while len(self._said) > self._remember:
                oldest = next(iter(self._said))
                if oldest in self._queue:
                    break  # never forget what is still to be written
                del self._said[oldest]
        self._queue[key] = None
        if self._drain is None or self._drain.done():
            self._drain = asyncio.get_running_loop().create_task(
                self._drain_queue(), name="event-sink"
            )

    async def flush(self) -> None:
        """Wait until every Event recorded so far is written (or has failed)."""
        while self._drain is not None and not self._drain.done():
            # shielded: a caller cancelled while waiting must not cancel the writes
            await asyncio.shield(self._drain)

    async def stop(self, seconds: float | None = None) -> None:
        """Flush for at most `seconds` (default: the sink's `stop_seconds`), then drop what is
        left (counted) and end the drain."""
        with contextlib.suppress(asyncio.TimeoutError):
            await within(self._stop_seconds if seconds is None else seconds, self.flush())
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain
        self.counters["dropped"] += len(self._queue)
        self._queue.clear()
        log.info("event sink stopped", extra={"events": dict(self.counters)})

    # --- the background writes -----------------------------------------------------------------

    async def _drain_queue(self) -> None:
        # Workers end when the queue is empty; the check and the return have no await between
        # them, so a `record` either sees this task done (and starts another) or is picked up.
        while self._queue:
            await asyncio.gather(*(self._worker() for _ in range(self._concurrency)))

    async def _worker(self) -> None:
        while self._queue:
            await self._bucket.take()
            if not self._queue:
                return
            key, _ = self._queue.popitem(last=False)
            said = self._said.get(key)
            if said is None:  # pragma: no cover - queued keys are never forgotten
                continue
            await self._write(key, said)

    async def _write(self, key: Key, said: _Said) -> None:
        namespace, name, _uid, _type, reason, message = key
        write_count = said.count
        # Counts as written from now: a repeat meanwhile is counted, not written a second time.
        said.written_at = self._clock()
        try:
            if said.name:
                try:
                    await self._writer.patch_event(
                        namespace,
                        said.name,
                        {"count": write_count, "lastTimestamp": said.last, "message": message},
                    )
                    self.counters["patched"] += 1
                except KubeError as error:
                    if error.status != GONE:
                        raise
                    said.name = ""  # expired: create it again, with the count so far
            if not said.name:
                said.name = self._event_name(name)
                await self._writer.create_event(
                    namespace, self._event(key, said, count=write_count)
                )
                self.counters["created"] += 1
        except Exception as error:
            # Any failure (a refusal, the API unreachable, the client closed under us) costs
            # this Event only: the drain goes on and no caller ever sees it.
            self.counters["failed"] += 1
            # Forget it, so the next observation is written afresh rather than patched into an
            # object that may not exist.
            self._said.pop(key, None)
            log.info("event not recorded", extra={"reason": reason, "error": str(error)})

    def _event_name(self, pod_name: str) -> str:
        # client-go's makeEvent: "<object>.<unix nanoseconds in hex>", unique per sink.
        stamp = max(time.time_ns(), self._last_stamp + 1)
        self._last_stamp = stamp
        return f"{pod_name or 'object'}.{stamp:x}"

    def _event(self, key: Key, said: _Said, *, count: int) -> dict[str, Any]:
        namespace, name, uid, event_type, reason, message = key
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": said.name, "namespace": namespace},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "namespace": namespace,
                "name": name,
                "uid": uid,
            },
            "reason": reason,
            "message": message,
            "type": event_type,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "firstTimestamp": said.first,
            "lastTimestamp": said.last,
            "count": count,
        }
