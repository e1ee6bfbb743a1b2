"""Server-side dry run (`dryRun=All`): which requests ask for it, and the store view they run on.

kube-apiserver runs a dry-run write through the same decoding, validation, admission and
strategy as a real one, and only the storage layer (registry/generic/registry/dryrun.go,
DryRunnableStorage) skips the write: a create answers the prepared object, an update the updated
one, a delete the object as the delete would leave it — and nothing reaches etcd, so no watch
sees it and no resourceVersion is used up. `DryRunStore` is that storage layer here: an
ObjectStore whose writes land in a throw-away overlay over the real store's tables, so every write
rule, graceful deletion, eviction (with its PodDisruptionBudget check) and binding runs unchanged
on it.

The options a request carries are validated as apimachinery's ValidateDryRun does: "All" is the
only value allowed, anything else is 422 Invalid on the request's options kind.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, MutableMapping, Sequence
from typing import Any

from agent.sim.kube.store import ApiError, Key, ObjectStore

DRY_RUN_ALL = "All"  # metav1.DryRunAll

# the options kind each write method decodes its query (or body, for DELETE) into
OPTIONS_KINDS = {
    "POST": "CreateOptions",
    "PUT": "UpdateOptions",
    "PATCH": "PatchOptions",
    "DELETE": "DeleteOptions",
}


def _go_quote(value: str) -> str:
    # Go's %q for the printable strings a query carries; JSON's escaping matches it there
    return json.dumps(value, ensure_ascii=False)


def check_dry_run(values: Sequence[str], options_kind: str) -> bool:
    """Whether `values` (the request's dryRun list) ask for a dry run; raises 422 as
    ValidateDryRun does (handlers/create.go, update.go, patch.go, delete.go wrap it in
    errors.NewInvalid on the meta.k8s.io options kind) for any value other than "All"."""
    if not values:
        return False
    if all(value == DRY_RUN_ALL for value in values):
        return True
    shown = "[]string{" + ", ".join(_go_quote(v) for v in values) + "}"
    body = f'Unsupported value: {shown}: supported values: "{DRY_RUN_ALL}"'
    raise ApiError(
        422,
        "Invalid",
        f'{options_kind}.meta.k8s.io "" is invalid: dryRun: {body}',
        details={
            "group": "meta.k8s.io",
            "kind": options_kind,
            "causes": [{"reason": "FieldValueNotSupported", "message": body, "field": "dryRun"}],
        },
    )


def delete_options(query_dry_run: list[str], body: Any) -> list[str]:
    """The dryRun of a DELETE (one object or a collection): handlers/delete.go decodes the
    DeleteOptions from the body when there is one, and from the query only when there is not."""
    if isinstance(body, dict) and body:
        values = body.get("dryRun") or []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ApiError(400, "BadRequest", "DeleteOptions.dryRun: expected a list of strings")
        return values
    return query_dry_run


def eviction_dry_run(query_dry_run: list[str], eviction: Any) -> list[str]:
    """pods/eviction's propagateDryRun (registry/core/pod/storage/eviction.go): the request's
    dryRun goes into the Eviction's deleteOptions unless those carry their own; both set and
    different is an error (a plain error there, so a 500 with its text)."""
    delete = eviction.get("deleteOptions") if isinstance(eviction, dict) else None
    own = (delete.get("dryRun") if isinstance(delete, dict) else None) or []
    if not isinstance(own, list) or not all(isinstance(v, str) for v in own):
        raise ApiError(
            400, "BadRequest", "Eviction.deleteOptions.dryRun: expected a list of strings"
        )
    if not own:
        return query_dry_run
    if query_dry_run and list(query_dry_run) != list(own):
        raise ApiError(
            500,
            "",
            "Non-matching dry-run options in request and content: "
            f"[{' '.join(query_dry_run)}] and [{' '.join(own)}]",
        )
    return list(own)


class _Overlay(MutableMapping[Key, dict[str, Any]]):
    """One resource table seen through a dry run: the real table, with this request's writes
    (changed and removed keys) kept on the side. The real table is never written."""

    def __init__(self, base: MutableMapping[Key, dict[str, Any]]):
        self._base = base
        self._changed: dict[Key, dict[str, Any]] = {}
        self._gone: set[Key] = set()

    def __getitem__(self, key: Key) -> dict[str, Any]:
        if key in self._changed:
            return self._changed[key]
        if key in self._gone:
            raise KeyError(key)
        return self._base[key]

    def __setitem__(self, key: Key, value: dict[str, Any]) -> None:
        self._changed[key] = value
        self._gone.discard(key)

    def __delitem__(self, key: Key) -> None:
        if key not in self:
            raise KeyError(key)
        self._changed.pop(key, None)
        self._gone.add(key)

    def __contains__(self, key: object) -> bool:
        if key in self._changed:
            return True
        return key not in self._gone and key in self._base

    def __iter__(self) -> Iterator[Key]:
        for key in self._base:
            if key not in self._gone and key not in self._changed:
                yield key
        yield from self._changed

    def __len__(self) -> int:
        return sum(1 for _ in self)


class DryRunStore(ObjectStore):
    """An ObjectStore over `base` for one dry-run request: reads see the real objects plus this
    request's own writes; writes run every check the real store makes (namespace exists, name
    free, resourceVersion matches), then stay in the overlay — no resourceVersion is used up, no
    history kept, no subscriber told. Throw it away when the request is answered."""

    def __init__(self, base: ObjectStore):
        # not super().__init__(), which would create the initial namespaces: copy the state
        # a read or a write consults, with every table behind an overlay
        self._now = base._now
        self._history_limit = base._history_limit
        self._objects = {resource: _Overlay(table) for resource, table in base._objects.items()}
        self._rv = base._rv
        self._history = []
        self._history_rvs = []
        self._compacted_rv = base._compacted_rv
        self._subscriptions = []
        self._random = base._random

    def _commit(
        self,
        kind: str,
        resource: str,
        key: Key,
        obj: dict[str, Any],
        *,
        previous: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if kind == "ADDED":
            # DryRunnableStorage.Create copies the prepared object out as it is: never stored,
            # it has no resourceVersion
            obj["metadata"].pop("resourceVersion", None)
        # an update keeps the version it was read at (DryRunnableStorage.GuaranteedUpdate)
        self._objects[resource][key] = obj
        return obj

    def _removed(self, resource: str, current: dict[str, Any]) -> dict[str, Any]:
        # DryRunnableStorage.Delete answers the object as it is stored, version unchanged
        return current
