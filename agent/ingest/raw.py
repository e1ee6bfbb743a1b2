"""Raw Kubernetes objects as the watch delivers them, and the interning that keeps thousands of
identical Ray worker pods cheap: the types and helpers the view and the node-pods fold share."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from typing import Any, TypedDict

from functions.errors import DecisionError
from functions.quantity import format_milli, parse_quantity

_INTERN_LIMIT = 50_000  # distinct shapes; a cluster with more is pathological, start afresh


class RawMeta(TypedDict, total=False):
    uid: str
    name: str
    namespace: str
    resourceVersion: str
    labels: dict[str, str]
    annotations: dict[str, str]
    deletionTimestamp: str


class RawObject(TypedDict, total=False):
    kind: str
    metadata: RawMeta
    spec: dict[str, Any]
    status: dict[str, Any]


class Interner:
    """Hands out one shared instance per distinct value, so thousands of identical label maps and
    tolerations lists cost one copy. Values handed out are shared: callers must not mutate them."""

    def __init__(self, *, limit: int = _INTERN_LIMIT) -> None:
        self._limit = limit
        self._table: dict[Any, Any] = {}

    def __len__(self) -> int:
        return len(self._table)

    def _get(self, key: Any, value: Any) -> Any:
        found = self._table.get(key)
        if found is not None:
            return found
        if len(self._table) >= self._limit:
            self._table.clear()
        self._table[key] = value
        return value

    def text(self, value: str) -> str:
        # sys.intern: a C-level table whose entries die with their last reference
        return sys.intern(value)

    def tuple_of_text(self, value: tuple[str, ...]) -> tuple[str, ...]:
        return self._get(("t", *value), value)  # type: ignore[no-any-return]

    def flat(self, value: Mapping[str, str] | None) -> dict[str, str]:
        """A str→str map (labels, annotations, nodeSelector, requests)."""
        if not value:
            return self._get(("d",), {})  # type: ignore[no-any-return]
        return self._get(("d", *value.items()), dict(value))  # type: ignore[no-any-return]

    def nested(self, value: Any) -> Any:
        """Any JSON value (affinity); keyed by its encoding, which is stable for the identical
        pod templates Ray stamps out."""
        if not value:
            return self._get(("e", type(value).__name__), value)
        return self._get(("j", json.dumps(value)), value)

    def records(self, value: Iterable[Mapping[str, Any]] | None) -> tuple[dict[str, Any], ...]:
        """A list of flat records (tolerations, taints) as a shared tuple; keyed by their items,
        which is much cheaper than encoding them."""
        if not value:
            return self._get(("r",), ())  # type: ignore[no-any-return]
        try:
            key = ("r", *(tuple(item.items()) for item in value))
            hash(key)
        except TypeError:  # a nested value: fall back to the encoding
            key = ("j", json.dumps(list(value)))
        return self._get(key, tuple(value))  # type: ignore[no-any-return]

    def requests(self, spec: Mapping[str, Any]) -> dict[str, str] | None:
        """The pod's effective requests, computed once per distinct resources shape."""
        key = ("q", *_resources_key(spec))
        try:
            found = self._table.get(key)
        except TypeError:  # an unhashable quantity (the API server would have refused it)
            return effective_requests(spec)
        if found is not None:
            return found  # type: ignore[no-any-return]
        computed = effective_requests(spec)
        if computed is None:
            return None
        return self._get(key, computed)  # type: ignore[no-any-return]


def _resources_key(spec: Mapping[str, Any]) -> list[Any]:
    """What effective_requests depends on, as hashable tuples (cheaper than computing it)."""
    key: list[Any] = [_container_key(c) for c in spec.get("containers") or ()]
    init = spec.get("initContainers")
    if init:
        key.append("init")
        key.extend(_container_key(c) for c in init)
    overhead = spec.get("overhead")
    if overhead:
        key.append(("overhead", *overhead.items()))
    return key


def _container_key(container: Mapping[str, Any]) -> tuple[Any, ...]:
    resources = container.get("resources")
    if not resources:
        return ()
    requests, limits = resources.get("requests"), resources.get("limits")
    return (tuple(requests.items()) if requests else (), tuple(limits.items()) if limits else ())


def _milli_or_none(quantity: object) -> int | None:
    try:
        return parse_quantity(quantity)
    except DecisionError:
        return None


def effective_requests(spec: Mapping[str, Any]) -> dict[str, str] | None:
    """Per resource, max(sum over containers, largest init container) plus pod overhead, as the
    contract defines it; limits stand in for missing requests (the API server's defaulting).
    None when a quantity does not parse (the API server would not have accepted the pod)."""
    total: dict[str, int] = {}

    def resources_of(container: Mapping[str, Any]) -> Iterable[tuple[str, object]]:
        resources = container.get("resources") or {}
        limits = resources.get("limits")
        requests = resources.get("requests")
        if limits:
            merged = dict(limits)
            if requests:
                merged.update(requests)
            return merged.items()
        return requests.items() if requests else ()

    for container in spec.get("containers") or ():
        for name, quantity in resources_of(container):
            milli = _milli_or_none(quantity)
            if milli is None:
                return None
            total[name] = total.get(name, 0) + milli
    for container in spec.get("initContainers") or ():
        for name, quantity in resources_of(container):
            milli = _milli_or_none(quantity)
            if milli is None:
                return None
            if milli > total.get(name, 0):
                total[name] = milli
    for name, quantity in (spec.get("overhead") or {}).items():
        milli = _milli_or_none(quantity)
        if milli is None:
            return None
        total[name] = total.get(name, 0) + milli
    return {name: format_milli(milli) for name, milli in total.items() if milli}
