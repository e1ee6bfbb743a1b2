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
from json.encoder import encode_basestring_ascii
from typing import Any

from agent.model import PendingPod

_SHAPE_LIMIT = 20_000  # distinct shapes kept; more is pathological, start afresh
_COMPACT = json.JSONEncoder(separators=(",", ":"))
_encode = _COMPACT.encode
_quote = encode_basestring_ascii


# (pod, entry, head, shape, tail, resourceVersion): one tuple per pod, the entry's JSON in three
# fields (an entry encoded whole has it all in `head`, and empty `shape` and `tail`), and the
# version it carries (read here, not from the entry: at 100k pods touching each entry dict is
# cache misses that double a quiet round). One object rather than nested ones: every container
# allocated costs again in garbage collection.
Record = tuple[PendingPod | None, dict[str, Any], bytes, bytes, bytes, str]


class PodEntries(list):  # type: ignore[type-arg]
    """A request's `pods` list whose entries may carry their JSON already encoded.

    It is a list of decide/v1 entries like any other (json.dumps, equality and indexing see a
    plain list). Entries appended later (synthetic pods, say) simply have no cached JSON and are
    encoded when the request is; a list built anew from it (`[*pods, extra]`) loses the cache and
    is encoded whole, still correctly.

    The encoded parts of an entry start with the comma that separates it from the previous one
    (`encode_pods` drops the first), so a body is one `b"".join` with no separators to interleave.
    """

    __slots__ = ("_records",)

    def __init__(
        self, entries: Iterable[dict[str, Any]] = (), records: dict[int, Record] | None = None
    ) -> None:
        super().__init__(entries)
        # id(entry) -> (pod, entry, parts). Shared with the cache that built the entries, which
        # keeps it current; a record is trusted only for the very object it was built for (the
        # `is` test), so an id reused by a new object can never hand out the wrong bytes.
        self._records: dict[int, Record] = records if records is not None else {}

    @classmethod
    def encoded(cls, entries: Iterable[dict[str, Any]]) -> PodEntries:
        """Entries encoded now, each in one part (no shared shape)."""
        records: dict[int, Record] = {}
        listed = []
        for entry in entries:
            records[id(entry)] = (None, entry, b"," + json_bytes(entry), b"", b"", "")
            listed.append(entry)
        return cls(listed, records)

    def subset(self, entries: Iterable[dict[str, Any]]) -> PodEntries:
        """Some of these entries, in a list that keeps their encoded JSON."""
        return PodEntries(entries, self._records)

    def parts_of(self, entry: Mapping[str, Any]) -> tuple[bytes, ...]:
        """The entry's JSON, with its leading comma, as parts to concatenate."""
        found = self._records.get(id(entry))
        if found is not None and found[1] is entry:
            return found[2:5]
        return (b"," + json_bytes(entry),)

    def shape_of(self, entry: Mapping[str, Any]) -> bytes | None:
        """The shared shape part of a cached entry (pods of one shape share the object), or None."""
        found = self._records.get(id(entry))
        if found is not None and found[1] is entry and found[3]:
            return found[3]
        return None


def json_bytes(value: Any) -> bytes:
    """`value` as compact JSON (the separators the request is sent with)."""
    return _encode(value).encode()


def encode_request(request: Mapping[str, Any]) -> bytes:
    """`json.dumps(request, separators=(",", ":")).encode()`, byte for byte, without encoding
    again the pod entries a `PodEntries` list already holds encoded."""
    pods = request.get("pods")
    if not isinstance(pods, PodEntries):
        return json_bytes(request)
    chunks: list[bytes] = []
    for key, value in request.items():
        chunks.append(b",")
        chunks.append(json_bytes(key))
        chunks.append(b":")
        if value is pods:
            chunks.append(b"[")
            _extend_with_pods(chunks, pods)
            chunks.append(b"]")
        else:
            chunks.append(json_bytes(value))
    chunks[0] = b"{"
    chunks.append(b"}")
    # One join: at 100k pods the body is ~110 MB, and each copy of it costs ~60 ms.
    return b"".join(chunks)


def encode_pods(pods: PodEntries | list[dict[str, Any]]) -> bytes:
    """The entries' JSON joined by commas (no brackets)."""
    if not isinstance(pods, PodEntries):
        return b",".join(json_bytes(p) for p in pods)
    out: list[bytes] = []
    _extend_with_pods(out, pods)
    return b"".join(out)


def _extend_with_pods(out: list[bytes], pods: PodEntries) -> None:
    """Append the entries' parts to `out`, the first entry without its leading comma."""
    records = pods._records
    start = len(out)
    append = out.append
    for entry in pods:  # the hot loop of a large round: `parts_of` inlined
        found = records.get(id(entry))
        if found is not None and found[1] is entry:
            append(found[2])
            append(found[3])
            append(found[4])
        else:
            append(b"," + json_bytes(entry))
    if len(out) > start:
        out[start] = out[start][1:]


def entry_size(pods: PodEntries, entry: Mapping[str, Any]) -> int:
    """Bytes the entry takes in the payload, its separating comma included."""
    return sum(len(p) for p in pods.parts_of(entry))


class PodEntryCache:
    """Per pod uid, the entry built for one `PendingPod` object and its encoded JSON.

    `entries(pending)` hands out the round's `PodEntries`: entries of pods whose object is the one
    cached are reused as they are, the others are built (and encoded) now; pods not in `pending`
    are dropped. The view keeps a pod's object when an event changed nothing the request carries
    for the decision, so a quiet round builds nothing. The tables are updated in place, not made
    anew each round: at 100k pods the allocations of fresh ones cost more (in garbage collection
    passes over every entry) than the lookups."""

    def __init__(self) -> None:
        self._by_uid: dict[str, Record] = {}
        self._by_id: dict[int, Record] = {}  # id(entry) -> the same record
        # Shape parts keyed by the identities of the (interned, shared) values they were built
        # from; the values are kept in the record, so their ids cannot be reused while it lives.
        self._shapes: dict[tuple[int, ...], tuple[tuple[Any, ...], dict[str, Any], bytes]] = {}
        self.built = 0  # entries built (for the bench and tests)
        self.reversioned = 0  # entries copied with a newer resourceVersion only

    def __len__(self) -> int:
        return len(self._by_uid)

    def entries(
        self, pending: Iterable[PendingPod], versions: Mapping[str, str] | None = None
    ) -> PodEntries:
        """The entries of `pending`, in order. `versions` (uid -> resourceVersion) gives pods a
        newer resourceVersion than their object's: the entry is then re-versioned (a copy with
        the new version and its identity part encoded again; the shape and tail are kept)."""
        by_uid, by_id = self._by_uid, self._by_id
        newer = versions.get if versions else None
        listed: list[dict[str, Any]] = []
        for pod in pending:
            uid = pod.uid
            found = by_uid.get(uid)
            version = pod.resource_version
            if newer is not None:
                version = newer(uid) or version
            if found is None or found[0] is not pod:
                record = self._build(pod, version)
            elif found[5] is not version and found[5] != version:
                record = self._reversioned(found, version)
            else:
                listed.append(found[1])
                continue
            if found is not None:
                del by_id[id(found[1])]
            by_uid[uid] = record
            by_id[id(record[1])] = record
            listed.append(record[1])
        if len(by_uid) > len(listed):  # some pods left: drop their records
            present = {id(entry) for entry in listed}
            for uid, record in [(u, r) for u, r in by_uid.items() if id(r[1]) not in present]:
                del by_uid[uid]
                del by_id[id(record[1])]
        return PodEntries(listed, by_id)

    def _build(self, pod: PendingPod, version: str) -> Record:
        self.built += 1
        shape_entry, shape_part = self._shape(pod)
        entry: dict[str, Any] = {
            "uid": pod.uid,
            "namespace": pod.namespace,
            "name": pod.name,
            # Not read by the decision; actuation guards its ECI patch with it (a JSON-patch `test`).
            "resourceVersion": version,
            **shape_entry,
            "unschedulableSince": pod.unschedulable_since or None,
            "message": pod.message,
        }
        # The C string quoter json.dumps itself uses (ensure_ascii): same bytes, ~10x faster
        # than a trip through JSONEncoder.encode per field.
        since = _quote(pod.unschedulable_since) if pod.unschedulable_since else "null"
        tail = f',"unschedulableSince":{since},"message":{_quote(pod.message)}}}'.encode()
        return pod, entry, _head(pod, version), shape_part, tail, version

    def _reversioned(self, record: Record, version: str) -> Record:
        self.reversioned += 1
        pod, entry, _, shape_part, tail, _ = record
        assert pod is not None
        # Updating an existing key keeps its place: the copy encodes in the same order.
        entry = {**entry, "resourceVersion": version}
        return pod, entry, _head(pod, version), shape_part, tail, version

    def _shape(self, pod: PendingPod) -> tuple[dict[str, Any], bytes]:
        # The shape's values are the view's interned objects, shared by the pods of a shape, and
        # `_shapes` holds them: a live object's id is unique, so equal ids are the same objects.
        key = (
            id(pod.labels),
            id(pod.annotations),
            id(pod.requests),
            id(pod.node_selector),
            id(pod.affinity),
            id(pod.tolerations),
            id(pod.host_network),
            id(pod.volume_types),
            id(pod.privileged),
        )
        found = self._shapes.get(key)
        if found is not None:
            return found[1], found[2]
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
        shape = shape_json(pod)
        # The object encoded without its braces: the middle of the entry's JSON.
        encoded = _encode(shape)[1:-1].encode()
        if len(self._shapes) >= _SHAPE_LIMIT:
            self._shapes.clear()
        self._shapes[key] = (values, shape, encoded)
        return shape, encoded


def _head(pod: PendingPod, version: str) -> bytes:
    """The entry's identity part: `,{"uid":…,"resourceVersion":…,` (comma first)."""
    return (
        f',{{"uid":{_quote(pod.uid)},"namespace":{_quote(pod.namespace)},'
        f'"name":{_quote(pod.name)},"resourceVersion":{_quote(version)},'
    ).encode()


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
