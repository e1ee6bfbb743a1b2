"""The simulated cluster's object store: objects by resource, one global resourceVersion, a
bounded event history for watch resumes, and in-process subscriptions.

Policy (graceful deletion, pod-update validation, selectors) lives in the API layer; in-process
controllers call the store directly, as kube-scheduler and kubelet use subresources that bypass
those rules. Stored objects are shared: treat every returned dict as read-only and change objects
only through `mutate`, `replace` or `delete`.
"""

from __future__ import annotations

import asyncio
import bisect
import builtins
import random
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Collection, MutableMapping
from dataclasses import dataclass
from typing import Any

from agent.sim.kube.pod_defaults import default_pod

NAMESPACED: frozenset[str] = frozenset(
    {"pods", "events", "leases", "poddisruptionbudgets", "rayclusters"}
)

# resource plural -> (kind, apiVersion)
KINDS: dict[str, tuple[str, str]] = {
    "pods": ("Pod", "v1"),
    "nodes": ("Node", "v1"),
    "events": ("Event", "v1"),
    "namespaces": ("Namespace", "v1"),
    "leases": ("Lease", "coordination.k8s.io/v1"),
    "poddisruptionbudgets": ("PodDisruptionBudget", "policy/v1"),
    # KubeRay's custom resource (rayclusters.py)
    "rayclusters": ("RayCluster", "ray.io/v1"),
}

# policy/v1 PodDisruptionBudgetStatus as serialised before the disruption controller's first sync:
# its four counts have no omitempty, so they appear as zeros.
EMPTY_BUDGET_STATUS = {
    "disruptionsAllowed": 0,
    "currentHealthy": 0,
    "desiredHealthy": 0,
    "expectedPods": 0,
}

INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")

# The apiserver's generateName alphabet: no vowels, no look-alike digits.
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


class ApiError(Exception):
    """A Kubernetes API failure, carried as its Status body."""

    def __init__(
        self, code: int, reason: str, message: str, *, details: dict[str, Any] | None = None
    ):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if not self.reason:
            del body["reason"]  # metav1.Status omits an empty reason
        if self.details is not None:
            body["details"] = self.details
        return body


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED | MODIFIED | DELETED
    resource: str  # plural: pods | nodes | events | namespaces | leases | poddisruptionbudgets
    object: dict[str, Any]  # the stored object after the change (for DELETED: its last state)
    resource_version: int
    # the stored object before the change (None for ADDED): lets a selector watch turn a
    # MODIFIED that leaves or enters the selection into DELETED or ADDED
    previous: dict[str, Any] | None = None


def kind_of(resource: str) -> str:
    return KINDS[resource][0]


def not_found(resource: str, name: str) -> ApiError:
    group = KINDS[resource][1].rpartition("/")[0]
    details: dict[str, Any] = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    qualified = f"{resource}.{group}" if group else resource
    return ApiError(404, "NotFound", f'{qualified} "{name}" not found', details=details)


def conflict(resource: str, name: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        details={"name": name, "kind": resource},
    )


class Subscription:
    """Every WatchEvent published after `subscribe()`, in order, as an async iterator; with
    `resources`, only those of these resources (None: all)."""

    def __init__(self, owner: ObjectStore, resources: Collection[str] | None = None):
        self._owner = owner
        self.resources = frozenset(resources) if resources is not None else None
        self._queue: deque[WatchEvent] = deque()
        self._wakeup = asyncio.Event()
        self._closed = False

    def _push(self, event: WatchEvent) -> None:
        self._queue.append(event)
        self._wakeup.set()

    def drain(self) -> list[WatchEvent]:
        """Everything queued so far, without waiting."""
        events = list(self._queue)
        self._queue.clear()
        return events

    async def next_batch(self) -> list[WatchEvent]:
        """Wait for at least one event; [] once closed."""
        while not self._queue:
            if self._closed:
                return []
            self._wakeup.clear()
            await self._wakeup.wait()
        return self.drain()

    async def wait(self) -> None:
        """Until an event is queued, `wake()` is called or the subscription is closed."""
        if self._queue or self._closed:
            return
        self._wakeup.clear()
        await self._wakeup.wait()

    def wake(self) -> None:
        self._wakeup.set()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._owner._unsubscribe(self)
            self._wakeup.set()

    def __aiter__(self) -> AsyncIterator[WatchEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[WatchEvent]:
        while True:
            batch = await self.next_batch()
            if not batch:
                return
            for event in batch:
                yield event


Key = tuple[str, str]  # (namespace or "", name)


class ObjectStore:
    """Objects by resource with one monotonically increasing resourceVersion."""

    def __init__(self, *, now: Callable[[], str], history_limit: int = 50_000):
        self._now = now
        self._history_limit = history_limit
        # MutableMapping, not dict: a dry run's view (dry_run.DryRunStore) overlays these tables
        self._objects: dict[str, MutableMapping[Key, dict[str, Any]]] = {
            resource: {} for resource in KINDS
        }
        self._rv = 0
        # events with resource_version > _compacted_rv are all in _history, in order
        self._history: list[WatchEvent] = []
        self._history_rvs: list[int] = []
        self._compacted_rv = 0
        self._subscriptions: list[Subscription] = []
        self._random = random.Random()
        for name in INITIAL_NAMESPACES:
            self.create("namespaces", {"metadata": {"name": name}})

    # -- reads ---------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self._rv

    @property
    def subscriber_count(self) -> int:
        """Open subscriptions: in-process controllers plus one per live WATCH stream."""
        return len(self._subscriptions)

    @property
    def oldest_resource_version(self) -> int:
        """The lowest version a watch may resume from without 410."""
        return self._compacted_rv

    def get(self, resource: str, name: str, *, namespace: str | None = None) -> dict[str, Any]:
        obj = self._table(resource).get(self._key(resource, name, namespace))
        if obj is None:
            raise not_found(resource, name)
        return obj

    def list(
        self, resource: str, *, namespace: str | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        table = self._table(resource)
        if namespace is None or resource not in NAMESPACED:
            items = list(table.values())
        else:
            items = [obj for (ns, _), obj in table.items() if ns == namespace]
        return items, self._rv

    # builtins.list: inside this class `list` names the method above
    def events_since(self, resource: str, resource_version: int) -> builtins.list[WatchEvent]:
        if resource_version < self._compacted_rv:
            raise ApiError(
                410,
                "Expired",
                f"too old resource version: {resource_version} ({self._compacted_rv + 1})",
            )
        start = bisect.bisect_right(self._history_rvs, resource_version)
        return [event for event in self._history[start:] if event.resource == resource]

    def subscribe(self, resources: Collection[str] | None = None) -> Subscription:
        """Changes from now on; `resources` limits them to those resources, so a subscriber
        that follows pods is not woken by every Lease renewal or Event write."""
        subscription = Subscription(self, resources)
        self._subscriptions.append(subscription)
        return subscription

    # -- writes --------------------------------------------------------------------------

    def create(
        self, resource: str, obj: dict[str, Any], *, namespace: str | None = None
    ) -> dict[str, Any]:
        table = self._table(resource)
        kind, api_version = KINDS[resource]
        # kind and apiVersion first, as the apiserver serialises them
        stored: dict[str, Any] = {"kind": kind, "apiVersion": api_version}
        stored.update((k, v) for k, v in copy_json(obj).items() if k not in stored)
        meta = stored.setdefault("metadata", {})
        if resource in NAMESPACED:
            body_ns = meta.get("namespace")
            if namespace is not None and body_ns and body_ns != namespace:
                raise ApiError(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request",
                )
            ns = namespace or body_ns or "default"
            if ("", ns) not in self._objects["namespaces"]:
                raise not_found("namespaces", ns)
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
            ns = ""
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise ApiError(
                    422,
                    "Invalid",
                    f'{kind} "" is invalid: metadata.name: Required value: name or generateName '
                    "is required",
                    details={
                        "kind": kind,
                        "causes": [{"reason": "FieldValueRequired", "field": "metadata.name"}],
                    },
                )
            meta["name"] = self._generated_name(table, ns, prefix)
        key = (ns, meta["name"])
        if key in table:
            raise ApiError(
                409,
                "AlreadyExists",
                f'{resource} "{meta["name"]}" already exists',
                details={"name": meta["name"], "kind": resource},
            )
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = self._now()
        meta.pop("deletionTimestamp", None)
        meta.pop("deletionGracePeriodSeconds", None)
        if resource == "pods":
            default_pod(stored)
        elif resource == "namespaces":
            # the namespace strategy's PrepareForCreate: Active, and the `kubernetes` finalizer
            # the namespace controller removes once the namespace is empty
            spec = stored["spec"] = dict(stored.get("spec") or {})
            finalizers = spec["finalizers"] = list(spec.get("finalizers") or [])
            if "kubernetes" not in finalizers:
                finalizers.append("kubernetes")
            stored["status"] = {"phase": "Active"}
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        elif resource == "poddisruptionbudgets":
            # the PDB strategy's PrepareForCreate: generation 1, the controller's status zeroed
            meta["generation"] = 1
            stored["status"] = dict(EMPTY_BUDGET_STATUS)
        return self._commit("ADDED", resource, key, stored)

    def replace(
        self, resource: str, obj: dict[str, Any], *, namespace: str | None = None
    ) -> dict[str, Any]:
        meta = obj.get("metadata") or {}
        name = meta.get("name") or ""
        current = self.get(resource, name, namespace=namespace or meta.get("namespace"))
        wanted_rv = meta.get("resourceVersion")
        if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
            raise conflict(resource, name)
        kind, api_version = KINDS[resource]
        stored: dict[str, Any] = {"kind": kind, "apiVersion": api_version}
        stored.update((k, v) for k, v in copy_json(obj).items() if k not in stored)
        new_meta = stored.setdefault("metadata", {})
        old_meta = current["metadata"]
        # identity and bookkeeping fields are the server's, whatever the client sent
        for field in ("uid", "creationTimestamp", "namespace", "name"):
            if field in old_meta:
                new_meta[field] = old_meta[field]
            else:
                new_meta.pop(field, None)
        for field in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            if field in old_meta:
                new_meta[field] = old_meta[field]
        return self._store_change(resource, current, stored)

    def mutate(
        self,
        resource: str,
        name: str,
        change: Callable[[dict[str, Any]], None],
        *,
        namespace: str | None = None,
        writes: Collection[str] | None = None,
    ) -> dict[str, Any]:
        """Apply `change` to a copy of the stored object and store the result (no event when
        nothing changed). `writes` names the top-level fields `change` may touch, as a
        subresource write does (a kubelet's pods/status): only those are deep-copied, the rest
        is shared with the stored version, which readers treat as read-only anyway — a pod's
        spec is most of its size. `metadata` is always copied one level deep, for the
        resourceVersion; None copies everything."""
        current = self.get(resource, name, namespace=namespace)
        if writes is None:
            edited = copy_json(current)
        else:
            edited = dict(current)
            edited["metadata"] = dict(current.get("metadata") or {})
            for field in writes:
                if field in current:
                    edited[field] = copy_json(current[field])
        change(edited)
        return self._store_change(resource, current, edited)

    def delete(self, resource: str, name: str, *, namespace: str | None = None) -> dict[str, Any]:
        table = self._table(resource)
        key = self._key(resource, name, namespace)
        current = table.get(key)
        if current is None:
            raise not_found(resource, name)
        del table[key]
        last = self._removed(resource, current)
        if resource == "namespaces":
            for namespaced in NAMESPACED:
                doomed = [k for k in self._objects[namespaced] if k[0] == name]
                for ns, child in doomed:
                    self.delete(namespaced, child, namespace=ns)
        return last

    def compact(self) -> None:
        self._history.clear()
        self._history_rvs.clear()
        self._compacted_rv = self._rv

    # -- internals -----------------------------------------------------------------------

    def _table(self, resource: str) -> MutableMapping[Key, dict[str, Any]]:
        try:
            return self._objects[resource]
        except KeyError:
            raise ApiError(
                404, "NotFound", f"the server could not find the requested resource ({resource})"
            ) from None

    @staticmethod
    def _key(resource: str, name: str, namespace: str | None) -> Key:
        if resource in NAMESPACED:
            return (namespace or "default", name)
        return ("", name)

    def _generated_name(
        self, table: MutableMapping[Key, dict[str, Any]], ns: str, prefix: str
    ) -> str:
        while True:
            suffix = "".join(self._random.choice(_NAME_ALPHABET) for _ in range(5))
            if (ns, prefix + suffix) not in table:
                return prefix + suffix

    def _store_change(
        self, resource: str, current: dict[str, Any], edited: dict[str, Any]
    ) -> dict[str, Any]:
        meta = edited.setdefault("metadata", {})
        meta["resourceVersion"] = current["metadata"]["resourceVersion"]
        if edited == current:
            return current
        key = (current["metadata"].get("namespace", ""), current["metadata"]["name"])
        return self._commit("MODIFIED", resource, key, edited, previous=current)

    def _commit(
        self,
        kind: str,
        resource: str,
        key: Key,
        obj: dict[str, Any],
        *,
        previous: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        self._objects[resource][key] = obj
        self._publish(WatchEvent(kind, resource, obj, self._rv, previous))
        return obj

    def _removed(self, resource: str, current: dict[str, Any]) -> dict[str, Any]:
        """Count a removal (already out of its table) and publish it; returns its last state."""
        self._rv += 1
        # the DELETED event carries the deletion's own resourceVersion, as the apiserver does
        last = dict(current)
        last["metadata"] = {**current["metadata"], "resourceVersion": str(self._rv)}
        self._publish(WatchEvent("DELETED", resource, last, self._rv, current))
        return last

    def _publish(self, event: WatchEvent) -> None:
        self._history.append(event)
        self._history_rvs.append(event.resource_version)
        overflow = len(self._history) - self._history_limit
        # trim in chunks so appends stay amortised O(1)
        if overflow > max(1, self._history_limit // 4):
            self._compacted_rv = self._history_rvs[overflow - 1]
            del self._history[:overflow]
            del self._history_rvs[:overflow]
        for subscription in tuple(self._subscriptions):
            if subscription.resources is None or event.resource in subscription.resources:
                subscription._push(event)

    def _unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)


def copy_json(value: Any) -> Any:
    """A deep copy of JSON-shaped data, several times faster than copy.deepcopy (which pays
    for memo bookkeeping that plain dicts, lists and scalars do not need)."""
    kind = type(value)
    if kind is dict:
        return {key: copy_json(item) for key, item in value.items()}
    if kind is list:
        return [copy_json(item) for item in value]
    return value
