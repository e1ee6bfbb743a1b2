"""The watch loop that never dies: LIST (paginated), then WATCH from the list's resourceVersion
with bookmarks; on 410 Expired re-LIST and reconcile (objects missing from the new list leave the
view); on EOF or a read timeout resume from the last version seen; on errors reconnect after a
jittered exponential backoff. Restarts are counted by reason. `relist` alone is one LIST, for
a snapshot without a watch (`python -m agent once`).

A `Watcher` feeds one `WatchSink` (the view's adapter for that stream); it knows nothing about
what the objects mean.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from agent.clients.kube import KubeClient, KubeError, KubeUnreachable

log = structlog.get_logger(__name__)

# Restart reasons (a metric label: keep the set small and fixed).
EOF = "eof"  # the server ended the stream (timeoutSeconds, apiserver restart, a cut)
EXPIRED = "expired"  # 410: our resourceVersion was compacted away → full re-LIST
TIMEOUT = "timeout"  # no byte within the read timeout: presumed dead connection
UNREACHABLE = "unreachable"  # connection refused / reset
HTTP_ERROR = "http_error"  # an error status other than 410
DECODE_ERROR = "decode_error"  # a line that is not JSON
INTERNAL_ERROR = "internal_error"  # our own bug while folding: re-LIST
REASONS = (EOF, EXPIRED, TIMEOUT, UNREACHABLE, HTTP_ERROR, DECODE_ERROR, INTERNAL_ERROR)


class WatchSink(Protocol):
    def key(self, obj: Any) -> str: ...

    def apply(self, event_type: str, obj: Any) -> None: ...

    def relisted(self, keys: set[str]) -> None: ...


class Tee:
    """One stream, two folds: `primary` names the keys, `secondary` sees every event too (the
    RayCluster demand counts the worker pods the view's pod sinks are fed)."""

    def __init__(self, primary: WatchSink, secondary: WatchSink) -> None:
        self._primary, self._secondary = primary, secondary

    def key(self, obj: Any) -> str:
        return self._primary.key(obj)

    def apply(self, event_type: str, obj: Any) -> None:
        self._primary.apply(event_type, obj)
        self._secondary.apply(event_type, obj)

    def relisted(self, keys: set[str]) -> None:
        self._primary.relisted(keys)
        self._secondary.relisted(keys)


@dataclass(frozen=True)
class WatchTarget:
    """What to watch. `name` identifies the stream in logs and metrics."""

    name: str
    resource: str  # "pods" | "nodes" | "rayclusters"
    namespace: str | None = None
    label_selector: str = ""
    field_selector: str = ""


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: the n-th consecutive failure waits a random time in
    [d/2, d] with d = min(maximum, initial × factor^n), so many agents restarted together
    (an apiserver upgrade) do not reconnect in lockstep."""

    initial: float = 0.25
    maximum: float = 30.0
    factor: float = 2.0

    def delay(self, failures: int, rng: random.Random) -> float:
        if failures <= 0:
            return 0.0
        ceiling = min(self.maximum, self.initial * self.factor ** min(failures - 1, 32))
        return rng.uniform(ceiling / 2, ceiling)


class _Expired(Exception):
    pass


class Watcher:
    """Keeps one sink in step with one resource on the API server, forever."""

    def __init__(
        self,
        client: KubeClient,
        target: WatchTarget,
        *,
        sink: WatchSink,
        page_size: int = 500,
        timeout_seconds: int = 300,
        read_timeout: float | None = 330.0,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_restart: Callable[[str, str], None] | None = None,
        on_api_error: Callable[[int], None] | None = None,
        on_relisted: Callable[[str], None] | None = None,
    ) -> None:
        self._client = client
        self.target = target
        self._sink = sink
        self._page_size = page_size
        self._timeout_seconds = timeout_seconds
        self._read_timeout = read_timeout
        self._backoff = backoff or Backoff()
        self._rng = rng or random.Random()
        self._clock = clock
        self._on_restart = on_restart
        self._on_api_error = on_api_error
        self._on_relisted = on_relisted
        self.restarts: Counter[str] = Counter()
        self.lists = 0
        self.events = 0
        self.resource_version: str | None = None
        self.synced = asyncio.Event()  # set once the first full LIST has been folded
        self.last_error: str | None = None

    async def run(self) -> None:
        """Run until cancelled. Never returns, never raises anything but CancelledError."""
        failures = 0
        need_list = True
        while True:
            reason: str | None = None
            healthy = False
            events_before = self.events
            try:
                if need_list:
                    await self.relist()
                    need_list = False
                healthy = await self._watch_once()
                reason = EOF
            except _Expired:
                # Re-LIST at once after a productive stream; a server that expires every fresh
                # version is misbehaving and gets the backoff.
                need_list, reason = True, EXPIRED
                healthy = self.events > events_before
            except KubeUnreachable as error:
                reason = TIMEOUT if error.timed_out else UNREACHABLE
                self.last_error = str(error)
            except KubeError as error:
                if error.status == 410:
                    need_list, reason = True, EXPIRED
                    healthy = self.events > events_before
                else:
                    reason = HTTP_ERROR
                    self.last_error = str(error)
                    if self._on_api_error is not None:
                        self._on_api_error(error.status)
            except ValueError as error:
                reason = DECODE_ERROR
                self.last_error = f"undecodable watch line: {error}"
            except Exception as error:
                # A bug folding one object must not end the watch: start over from a full LIST,
                # which rebuilds the sink's state, after the backoff.
                reason, need_list = INTERNAL_ERROR, True
                self.last_error = f"{type(error).__name__}: {error}"
                log.exception("watch loop error", stream=self.target.name)
            failures = 0 if healthy else failures + 1
            self.restarts[reason] += 1
            if self._on_restart is not None:
                self._on_restart(self.target.name, reason)
            delay = self._backoff.delay(failures, self._rng)
            log.info(
                "watch restart",
                stream=self.target.name,
                reason=reason,
                resource_version=self.resource_version,
                relist=need_list,
                delay=round(delay, 3),
                error=None if healthy else self.last_error,
            )
            if delay:
                await asyncio.sleep(delay)

    async def relist(self) -> None:
        """Fold a full, paginated LIST into the sink, then drop what the list no longer has. The
        watch starts with it; `python -m agent once` calls it alone, a snapshot without a watch.
        Raises KubeError and KubeUnreachable."""
        keys: set[str] = set()
        continue_token: str | None = None
        target = self.target
        while True:
            try:
                page = await self._client.list_page(
                    target.resource,
                    namespace=target.namespace,
                    label_selector=target.label_selector,
                    field_selector=target.field_selector,
                    limit=self._page_size,
                    continue_token=continue_token,
                )
            except KubeError as error:
                if error.status == 410 and continue_token:
                    # The continue token outlived the snapshot: start the list over.
                    keys.clear()
                    continue_token = None
                    continue
                raise
            key, apply = self._sink.key, self._sink.apply
            for item in page.get("items") or ():
                keys.add(key(item))
                apply("ADDED", item)
            metadata = page.get("metadata") or {}
            continue_token = metadata.get("continue") or None
            if continue_token is None:
                self.resource_version = metadata.get("resourceVersion") or "0"
                break
        self._sink.relisted(keys)
        self.lists += 1
        self.synced.set()
        if self._on_relisted is not None:
            self._on_relisted(target.name)
        log.debug(
            "listed", stream=target.name, objects=len(keys), resource_version=self.resource_version
        )

    async def _watch_once(self) -> bool:
        """One WATCH request, folded until the server ends it. True if it delivered anything
        (a healthy stream: resume without delay)."""
        target = self.target
        stream = self._client.watch(
            target.resource,
            resource_version=self.resource_version or "0",
            namespace=target.namespace,
            label_selector=target.label_selector,
            field_selector=target.field_selector,
            timeout_seconds=self._timeout_seconds,
            read_timeout=self._read_timeout,
        )
        started = self._clock()
        delivered = False
        apply = self._sink.apply
        async with contextlib.aclosing(stream) as events:  # type: ignore[type-var]
            async for event in events:
                kind = str(event.get("type"))
                obj = event.get("object") or {}
                if kind == "ERROR":
                    error = KubeError.from_status(obj)
                    if error.status == 410:
                        raise _Expired
                    raise error
                version = (obj.get("metadata") or {}).get("resourceVersion")
                if kind != "BOOKMARK":
                    apply(kind, obj)
                    self.events += 1
                if version:
                    self.resource_version = version
                delivered = True
        # A stream that stayed open a good while was healthy even if the cluster was quiet.
        return delivered or (self._clock() - started) >= min(1.0, self._timeout_seconds / 2)
