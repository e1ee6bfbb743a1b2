"""decide/v1 pod entries kept built between rounds, and the request's JSON made from them.

A round used to rebuild every pending pod's entry and encode the whole request with `json.dumps`:
at 100k pods that is 1–3 s on the event loop although a round usually follows a handful of
changed pods. `PodEntryCache` keeps, per pod uid, the entry built for one version of the view's
`PendingPod` (the view replaces the object when a field the request carries changes, and keeps it
when an event changed nothing the decision reads), with its JSON already encoded. A round then
costs a lookup per pod plus the entries of the pods that changed, and `encode_request` joins
cached bytes instead of encoding the pods again.

The JSON of an entry is kept in three parts: the pod's identity (uid … resourceVersion), its
*shape* (labels … privileged: what the decision places by, identical for the pods of one Ray
worker group, so one bytes object is shared by all of them) and its tail (unschedulableSince,
message). The parts concatenated are byte for byte what `json.dumps(entry, separators=(",", ":"))`
writes (`tests/agent/test_request_incremental.py` holds it), so the payload is the same whichever
path built it.

Entries are shared between rounds and between pods of one shape: nobody may mutate them (the
request is read-only for the deciders and actuation, as the view's interned values are).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from agent.model import PendingPod

_SHAPE_LIMIT = 20_000  # distinct shapes kept; more is pathological, start afresh
_COMPACT = json.JSONEncoder(separators=(",", ":"))
_encode = _COMPACT.encode


class PodEntries(list):  # type: ignore[type-arg]
    """A request's `pods` list whose entries may carry their JSON already encoded.

    It is a list of decide/v1 entries like any other (json.dumps, equality and indexing see a
    plain list). Entries appended later (synthetic pods, say) simply have no cached JSON and are
    encoded when the request is; a list built anew from it (`[*pods, extra]`) loses the cache and
    is encoded whole, still correctly."""

    __slots__ = ("_parts",)

    def __init__(self, built: Iterable[tuple[dict[str, Any], tuple[bytes, ...]]] = ()) -> None:
        parts: dict[int, tuple[dict[str, Any], tuple[bytes, ...]]] = {}
        entries = []
        for entry, encoded in built:
            parts[id(entry)] = (entry, encoded)
            entries.append(entry)
        super().__init__(entries)
        self._parts = parts

    def parts_of(self, entry: Mapping[str, Any]) -> tuple[bytes, ...]:
        """The entry's JSON as parts to concatenate: cached when this list built it, else encoded
        now. The cache is trusted only for the very object it was built for (the `is` test), so an
        id reused by a new object can never hand out the wrong bytes."""
        found = self._parts.get(id(entry))
        if found is not None and found[0] is entry:
            return found[1]
        return (_encode(entry).encode(),)

    def shape_of(self, entry: Mapping[str, Any]) -> bytes | None:
        """The shared shape part of a cached entry (pods of one shape share the object), or None."""
        found = self._parts.get(id(entry))
        if found is not None and found[0] is entry and len(found[1]) == 3:
            return found[1][1]
        return None


def json_bytes(value: Any) -> bytes:
    """`value` as compact JSON (the separators the request is sent with)."""
    return _encode(value).encode()


def encode_request(request: Mapping[str, Any]) -> bytes:
    """`json.dumps(request, separators=(",", ":")).encode()`, byte for byte, without encoding
    again the pod entries a `PodEntries` list already holds encoded."""
    pods = request.get("pods")
    if not isinstance(pods, PodEntries):
        return _encode(request).encode()
    chunks: list[bytes] = []
    first = True
    for key, value in request.items():
        chunks.append(b"{" if first else b",")
        first = False
        chunks.append(_encode(key).encode())
        chunks.append(b":")
        if value is pods:
            chunks.append(b"[")
            chunks.append(encode_pods(pods))
            chunks.append(b"]")
        else:
            chunks.append(_encode(value).encode())
    chunks.append(b"}" if not first else b"{}")
    return b"".join(chunks)


def encode_pods(pods: PodEntries | list[dict[str, Any]]) -> bytes:
    """The entries' JSON joined by commas (no brackets)."""
    if not isinstance(pods, PodEntries):
        return b",".join(_encode(p).encode() for p in pods)
    parts: list[bytes] = []
    for i, entry in enumerate(pods):
        if i:
            parts.append(b",")
        parts.extend(pods.parts_of(entry))
    return b"".join(parts)


def entry_size(pods: PodEntries, entry: Mapping[str, Any]) -> int:
    """Bytes the entry takes in the payload (without its separating comma)."""
    return sum(len(p) for p in pods.parts_of(entry))


class PodEntryCache:
    """Per pod uid, the entry built for one `PendingPod` object and its encoded JSON.

    `entries(pending)` hands out the round's `PodEntries`: entries of pods whose object is the one
    cached are reused as they are, the others are built (and encoded) now; pods not in `pending`
    are dropped. The view keeps a pod's object when an event changed nothing the request carries
    for the decision, so a quiet round builds nothing."""

    def __init__(self) -> None:
        self._by_uid: dict[str, tuple[PendingPod, dict[str, Any], tuple[bytes, ...]]] = {}
        # Shape parts keyed by the identities of the (interned, shared) values they were built
        # from; the values are kept in the entry, so their ids cannot be reused while it lives.
        self._shapes: dict[tuple[int, ...], tuple[tuple[Any, ...], dict[str, Any], bytes]] = {}
        self.built = 0  # entries built (for the bench and tests)

    def __len__(self) -> int:
        return len(self._by_uid)

    def entries(self, pending: Iterable[PendingPod]) -> PodEntries:
        old = self._by_uid
        kept: dict[str, tuple[PendingPod, dict[str, Any], tuple[bytes, ...]]] = {}
        for pod in pending:
            found = old.get(pod.uid)
            if found is None or found[0] is not pod:
                found = self._build(pod)
            kept[pod.uid] = found
        self._by_uid = kept
        return PodEntries((entry, parts) for _, entry, parts in kept.values())

    def _build(self, pod: PendingPod) -> tuple[PendingPod, dict[str, Any], tuple[bytes, ...]]:
        self.built += 1
        shape_entry, shape_json = self._shape(pod)
        entry: dict[str, Any] = {
            "uid": pod.uid,
            "namespace": pod.namespace,
            "name": pod.name,
            # Not read by the decision; actuation guards its ECI patch with it (a JSON-patch `test`).
            "resourceVersion": pod.resource_version,
            **shape_entry,
            "unschedulableSince": pod.unschedulable_since or None,
            "message": pod.message,
        }
        head = (
            f'{{"uid":{_encode(pod.uid)},"namespace":{_encode(pod.namespace)},'
            f'"name":{_encode(pod.name)},"resourceVersion":{_encode(pod.resource_version)},'
        ).encode()
        tail = (
            f',"unschedulableSince":{_encode(pod.unschedulable_since or None)},'
            f'"message":{_encode(pod.message)}}}'
        ).encode()
        return pod, entry, (head, shape_json, tail)

    def _shape(self, pod: PendingPod) -> tuple[dict[str, Any], bytes]:
        values = (
            pod.labels,
            pod.annotations,
            pod.requests,
            pod.node_selector,
            pod.affinity,
            pod.tolerations,
            pod.host_network,
            pod.volume_types,
            pod.privileged,
        )
        key = tuple(id(v) for v in values)
        found = self._shapes.get(key)
        if found is not None and all(a is b for a, b in zip(found[0], values, strict=True)):
            return found[1], found[2]
        shape = shape_json(pod)
        # The object encoded without its braces: the middle of the entry's JSON.
        encoded = _encode(shape)[1:-1].encode()
        if len(self._shapes) >= _SHAPE_LIMIT:
            self._shapes.clear()
        self._shapes[key] = (values, shape, encoded)
        return shape, encoded


def shape_json(pod: PendingPod) -> dict[str, Any]:
    """The fields of a pod's entry the decision places it by (`pod_json` without identity,
    resourceVersion and the scheduler's status text), copied out of the view's shared values."""
    return {
        "labels": dict(pod.labels),
        "annotations": dict(pod.annotations),
        "requests": dict(pod.requests),
        "nodeSelector": dict(pod.node_selector),
        "affinity": dict(pod.affinity),
        "tolerations": [dict(t) for t in pod.tolerations],
        "hostNetwork": pod.host_network,
        "volumeTypes": list(pod.volume_types),
        "privileged": pod.privileged,
    }
