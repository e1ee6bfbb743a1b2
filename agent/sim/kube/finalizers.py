"""metadata.finalizers as the generic registry store honours them
(staging/src/k8s.io/apiserver/pkg/registry/generic/registry/store.go): a DELETE of an object that
has finalizers only marks it — deletionTimestamp now, deletionGracePeriodSeconds 0, generation
bumped if it has one (markAsDeleting) — and answers the object; the update that removes the last
finalizer of an object so marked deletes it (ShouldDeleteDuringUpdate).

Used for the resources without graceful deletion of their own (not pods, not namespaces)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent.sim.kube.store import ObjectStore
from agent.sim.kube.write_rules import rfc3339


def delete_or_mark(
    store: ObjectStore,
    resource: str,
    name: str,
    namespace: str | None,
    *,
    now: Callable[[], float],
) -> tuple[dict[str, Any], bool]:
    """Delete the object, or, while finalizers hold it, mark it deleting; returns the object
    (its last state, or as marked) and whether it is gone."""
    current = store.get(resource, name, namespace=namespace)
    meta = current["metadata"]
    if not meta.get("finalizers"):
        return store.delete(resource, name, namespace=namespace), True
    if meta.get("deletionTimestamp"):
        return current, False  # already being deleted: a second DELETE changes nothing
    stamp = rfc3339(now())

    def mark(obj: dict[str, Any]) -> None:
        edited = obj["metadata"]
        if int(edited.get("generation") or 0) > 0:
            edited["generation"] = int(edited["generation"]) + 1
        edited["deletionTimestamp"] = stamp
        edited["deletionGracePeriodSeconds"] = 0

    return store.mutate(resource, name, mark, namespace=namespace), False


def finished(obj: dict[str, Any]) -> bool:
    """Whether an update left a marked object with no finalizer and no grace period to wait
    out, so the store deletes it."""
    meta = obj["metadata"]
    return (
        bool(meta.get("deletionTimestamp"))
        and not meta.get("finalizers")
        and not meta.get("deletionGracePeriodSeconds")
    )
