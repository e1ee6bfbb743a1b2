"""One WATCH response: the initial or resumed events, then live ones from a store
subscription, filtered by namespace and selectors (with selector transitions), written as one
JSON object per line and flushed as they come; bookmarks, timeoutSeconds and the fault plan's
stream cuts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from agent.sim.faults import GONE_410, HISTORY_COMPACTIONS, WATCH_CUTS, FaultPlan
from agent.sim.kube.selectors import Predicate
from agent.sim.kube.store import KINDS, ApiError, ObjectStore, Subscription, WatchEvent
from agent.sim.kube.tables import table

BOOKMARK_EVERY_SECONDS = 60.0
# how often an idle stream checks that its client is still there
LIVENESS_CHECK_SECONDS = 5.0

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
# Stored objects are never changed in place (store.py), so one object's JSON is the same for
# every watch that sends it — the agent follows pods through more than one watch. Keyed by id,
# holding the object so its id is not reused while cached; the oldest go first.
_ENCODED: dict[int, tuple[dict[str, Any], bytes]] = {}
_ENCODED_LIMIT = 4096


def _encoded(obj: dict[str, Any]) -> bytes:
    hit = _ENCODED.get(id(obj))
    if hit is not None and hit[0] is obj:
        return hit[1]
    data = _dumps(obj).encode()
    if len(_ENCODED) >= _ENCODED_LIMIT:
        del _ENCODED[next(iter(_ENCODED))]
    _ENCODED[id(obj)] = (obj, data)
    return data


@dataclass(frozen=True)
class WatchRequest:
    resource: str
    namespace: str | None
    predicate: Predicate | None
    resource_version: str | None
    bookmarks: bool
    timeout_seconds: float
    table_version: str | None  # meta.k8s.io/v1 or v1beta1 when the client asked for Tables
    include_object: str


class WatchStream:
    """Writes one watch response; `run` returns when it times out, is cut or the client goes."""

    def __init__(
        self,
        store: ObjectStore,
        request: WatchRequest,
        *,
        faults: FaultPlan | None,
        now: Callable[[], float],
    ):
        self._store = store
        self._request = request
        self._faults = faults
        self._now = now
        self._sent = 0
        self._columns_sent = False
        self._last_rv = 0

    def _line(self, kind: str, obj: dict[str, Any]) -> bytes:
        request = self._request
        if request.table_version is not None:
            obj = table(
                request.resource,
                [obj],
                now=self._now(),
                api_version=request.table_version,
                include_object=request.include_object,
                with_columns=not self._columns_sent,
                metadata={"resourceVersion": obj["metadata"].get("resourceVersion", "")},
            )
            self._columns_sent = True
            data = _dumps(obj).encode()
        else:
            data = _encoded(obj)
        return b'{"type":"' + kind.encode() + b'","object":' + data + b"}\n"

    def _lines_for(self, events: list[WatchEvent]) -> list[bytes]:
        request = self._request
        resource, namespace, predicate = request.resource, request.namespace, request.predicate
        lines = []
        for event in events:
            if event.resource_version <= self._last_rv:
                continue
            self._last_rv = event.resource_version
            if event.resource != resource:
                continue
            obj = event.object
            if namespace is not None and obj["metadata"].get("namespace") != namespace:
                continue
            kind = event.type
            if predicate is not None:
                if kind == "MODIFIED":
                    matches = predicate(obj)
                    matched = event.previous is not None and predicate(event.previous)
                    if matches and not matched:
                        kind = "ADDED"
                    elif matched and not matches:
                        kind = "DELETED"
                    elif not matches:
                        continue
                elif not predicate(obj):
                    continue
            lines.append(self._line(kind, obj))
        return lines

    def _bookmark(self) -> bytes:
        kind, api_version = KINDS[self._request.resource]
        obj = {
            "kind": kind,
            "apiVersion": api_version,
            "metadata": {"resourceVersion": str(self._store.resource_version)},
        }
        return b'{"type":"BOOKMARK","object":' + _dumps(obj).encode() + b"}\n"

    def _cut_after(self) -> int | None:
        return self._faults.watch_cut_every_events if self._faults is not None else None

    async def run(self, http_request: web.Request) -> web.StreamResponse:
        request = self._request
        store = self._store
        initial_rv: int | None = None
        if request.resource_version not in (None, "", "0"):
            try:
                initial_rv = int(request.resource_version or "")
            except ValueError:
                raise ApiError(
                    400,
                    "BadRequest",
                    f'resourceVersion: Invalid value: "{request.resource_version}": '
                    "strconv.ParseUint: parsing: invalid syntax",
                ) from None
        response = web.StreamResponse(status=200)
        response.content_type = "application/json"
        response.enable_chunked_encoding()
        await response.prepare(http_request)

        # subscribe and read the backlog with no await in between: nothing falls in the gap
        subscription = store.subscribe(resources=(request.resource,))
        try:
            if initial_rv is None:
                items, self._last_rv = store.list(request.resource, namespace=request.namespace)
                predicate = request.predicate
                first = [
                    self._line("ADDED", obj) for obj in items if predicate is None or predicate(obj)
                ]
            else:
                try:
                    backlog = store.events_since(request.resource, initial_rv)
                except ApiError as error:
                    if self._faults is not None and error.code == 410:
                        self._faults.note(GONE_410)
                    line = b'{"type":"ERROR","object":' + _dumps(error.status()).encode() + b"}\n"
                    await response.write(line)
                    await response.write_eof()
                    return response
                self._last_rv = initial_rv
                first = self._lines_for(backlog)
                self._last_rv = store.resource_version
            if await self._send(response, first):
                return response
            await self._follow(response, subscription, http_request)
            return response
        finally:
            subscription.close()

    async def _send(self, response: web.StreamResponse, lines: list[bytes]) -> bool:
        """Write lines; True when the fault plan says to cut the stream here."""
        if not lines:
            return False
        cut = self._cut_after()
        if cut is not None and self._sent + len(lines) >= cut:
            lines = lines[: max(cut - self._sent, 0)]
            if lines:
                await response.write(b"".join(lines))
            self._sent += len(lines)
            await response.write_eof()
            if self._faults is not None:
                self._faults.note(WATCH_CUTS)
                if self._faults.roll(self._faults.watch_cut_expire_ratio):
                    self._store.compact()
                    self._faults.note(HISTORY_COMPACTIONS)
            return True
        self._sent += len(lines)
        await response.write(b"".join(lines))
        return False

    async def _send_bookmark(
        self, response: web.StreamResponse, subscription: Subscription
    ) -> bool:
        # drain first and build the bookmark before any await: every event up to its version
        # is then either written already or in `lines`
        lines = self._lines_for(subscription.drain())
        bookmark = self._bookmark()
        if await self._send(response, lines):
            return True
        await response.write(bookmark)
        return False

    async def _follow(
        self,
        response: web.StreamResponse,
        subscription: Subscription,
        http_request: web.Request,
    ) -> None:
        loop = asyncio.get_running_loop()
        request = self._request
        start = loop.time()
        deadline = start + request.timeout_seconds
        next_bookmark = start + BOOKMARK_EVERY_SECONDS
        next_check = start + LIVENESS_CHECK_SECONDS
        while True:
            wake_at = min(deadline, next_check, next_bookmark if request.bookmarks else deadline)
            timer = loop.call_at(wake_at, subscription.wake)
            try:
                await subscription.wait()
            finally:
                timer.cancel()
            if subscription.closed:
                break
            batch = subscription.drain()
            if batch and await self._send(response, self._lines_for(batch)):
                return
            current = loop.time()
            if current >= deadline:
                break
            if current >= next_check:
                next_check = current + LIVENESS_CHECK_SECONDS
                transport = http_request.transport
                if transport is None or transport.is_closing():
                    return
            if request.bookmarks and current >= next_bookmark:
                next_bookmark = current + BOOKMARK_EVERY_SECONDS
                if await self._send_bookmark(response, subscription):
                    return
        # a last bookmark lets the client resume from the newest version after the timeout
        if request.bookmarks and await self._send_bookmark(response, subscription):
            return
        await response.write_eof()
