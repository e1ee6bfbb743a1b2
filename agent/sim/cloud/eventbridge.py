"""An EventBridge stand-in: the cluster's pod Events as CloudEvents, matched by one rule and
delivered to the reconcile function the FC emulator hosts.

In ACK the chain is: kube-eventer (installed with ack-node-problem-detector, EventBridge as its
sink) watches core/v1 Events and publishes each one to EventBridge, typed by the involved
object's kind — `cs:k8s:PodRelatedEvent` for pods (EventBridge "ACK events") — and a rule whose
event pattern matches it has Function Compute invoke its target. Here the stand-in follows the
object store's Events (as every simulated controller follows the store), wraps each added or
updated pod Event in the CloudEvents 1.0 envelope EventBridge delivers (`id`, `source`
`acs.cs`, `specversion` 1.0, `type`, `subject`, `time`, `datacontenttype`, `data`, and the
`aliyun*` extension attributes), applies the rule's pattern, and invokes the function.

What is not documented is modelled on the strict side, and said so:
- `data` is the core/v1 Event as the eventer read it (the pages list the types, not the fields);
- delivery takes `delay_seconds` of simulated time (EventBridge states no latency; the eventer
  and the bus add some): 2 s by default, so the agentless mode is never shown faster than it is;
- every delivery is its own invocation, none batched, none dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)

POD_EVENT_TYPE = "cs:k8s:PodRelatedEvent"
SOURCE = "acs.cs"


class SimTime(Protocol):
    def now(self) -> float: ...

    async def sleep(self, sim_seconds: float) -> None: ...


class EventFeed(Protocol):
    """What the stand-in needs of the object store: a subscription to its Events."""

    def subscribe(self, resources: Collection[str] | None = None) -> Any: ...


@dataclass(frozen=True)
class EventRule:
    """The rule's event pattern, as template.yml deploys it: the event type, the Event reasons,
    and (when not empty) the involved pods' namespaces."""

    event_type: str = POD_EVENT_TYPE
    reasons: frozenset[str] = frozenset({"FailedScheduling"})
    namespaces: frozenset[str] = frozenset()

    def matches(self, cloud_event: Mapping[str, Any]) -> bool:
        data = cloud_event.get("data") or {}
        involved = data.get("involvedObject") or {}
        return (
            cloud_event.get("type") == self.event_type
            and data.get("reason") in self.reasons
            and (not self.namespaces or involved.get("namespace") in self.namespaces)
        )


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}Z"


def cloud_event(
    event: Mapping[str, Any], *, region: str, account_id: str, cluster_id: str, at: float
) -> dict[str, Any]:
    """A core/v1 Event in EventBridge's CloudEvents envelope."""
    kind = str((event.get("involvedObject") or {}).get("kind") or "")
    return {
        "id": str(uuid.uuid4()),
        "source": SOURCE,
        "specversion": "1.0",
        "type": f"cs:k8s:{kind}RelatedEvent",
        "subject": f"acs:cs:{region}:{account_id}:cluster/{cluster_id}",
        "time": _iso(at),
        "datacontenttype": "application/json;charset=utf-8",
        "aliyunaccountid": account_id,
        "aliyunpublishtime": _iso(at),
        "aliyuneventbusname": "default",
        "aliyunregionid": region,
        "data": dict(event),
    }


class EventBridgeStandIn:
    """A SimCluster component: pod Events → CloudEvents → `rule` → `invoke(event bytes)`."""

    def __init__(
        self,
        store: EventFeed,
        clock: SimTime,
        invoke: Callable[[bytes], Awaitable[Any]],
        *,
        region: str,
        account_id: str,
        cluster_id: str,
        rule: EventRule | None = None,
        delay_seconds: float = 2.0,
    ) -> None:
        self._store = store
        self._clock = clock
        self._invoke = invoke
        self._region = region
        self._account_id = account_id
        self._cluster_id = cluster_id
        self.rule = rule or EventRule()
        self._delay = delay_seconds
        self._subscription: Any = None
        self._task: asyncio.Task[None] | None = None
        self._deliveries: set[asyncio.Task[Any]] = set()
        self.published = 0
        self.delivered = 0
        self._counts: dict[str, int] = {}

    async def start(self) -> None:
        self._subscription = self._store.subscribe(resources=("events",))
        self._task = asyncio.create_task(self._follow(), name="eventbridge")

    async def stop(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
        tasks = [t for t in (self._task, *self._deliveries) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._task = None

    async def _follow(self) -> None:
        while True:
            batch = await self._subscription.next_batch()
            if not batch:
                return
            for change in batch:
                if change.type in ("ADDED", "MODIFIED") and self._new_occurrence(change.object):
                    self._publish(change.object)

    def _new_occurrence(self, event: Mapping[str, Any]) -> bool:
        """An Event written again with a higher count is a new occurrence (kube-eventer sends
        updates too); a write that leaves the count as it was (a metadata change) is not."""
        meta = event.get("metadata") or {}
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        count = int(event.get("count") or 1)
        if self._counts.get(key, 0) >= count:
            return False
        self._counts[key] = count
        return True

    def _publish(self, event: Mapping[str, Any]) -> None:
        envelope = cloud_event(
            event,
            region=self._region,
            account_id=self._account_id,
            cluster_id=self._cluster_id,
            at=self._clock.now(),
        )
        self.published += 1
        if not self.rule.matches(envelope):
            return
        task = asyncio.ensure_future(self._deliver(envelope))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, envelope: Mapping[str, Any]) -> None:
        if self._delay > 0:
            await self._clock.sleep(self._delay)
        self.delivered += 1
        await self._invoke(json.dumps(envelope).encode())
