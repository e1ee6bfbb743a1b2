"""Namespaces end in phases, as in Kubernetes: the API's side and kube-controller-manager's.

- `admit_create` and `admit_namespace_delete` are the NamespaceLifecycle admission plugin
  (apiserver/pkg/admission/plugin/namespace/lifecycle/admission.go): nothing new may be created
  in a Terminating namespace (403 Forbidden, cause NamespaceTerminating), and default,
  kube-system and kube-public may not be deleted at all.
- `delete_namespace` is the namespace registry's Delete (pkg/registry/core/namespace/storage/
  storage.go): the first DELETE sets deletionTimestamp and phase Terminating and keeps the
  object; once spec.finalizers is empty a DELETE removes it; before that a DELETE is 409.
- `NamespaceController` is the namespace controller (pkg/controller/namespace/deletion/
  namespaced_resources_deleter.go): for a namespace being deleted it deletes everything in it
  (pods gracefully, with their own grace periods, as the DeleteCollection it issues does), keeps
  the five deletion conditions of the namespace's status, and once nothing is left removes its
  `kubernetes` finalizer and deletes the namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

from agent.sim.kube.store import KINDS, NAMESPACED, ApiError, ObjectStore, WatchEvent, copy_json
from agent.sim.kube.write_rules import check_preconditions, graceful_delete, rfc3339

NAMESPACES = "namespaces"
KUBERNETES_FINALIZER = "kubernetes"  # api.FinalizerKubernetes
TERMINATING = "Terminating"
# the NamespaceLifecycle plugin's immortal namespaces (its Register)
IMMORTAL_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})
NAMESPACE_TERMINATING_CAUSE = "NamespaceTerminating"  # v1.NamespaceTerminatingCause
STILL_FINALIZING = (
    "The system is ensuring all content is removed from this namespace.  Upon completion, this "
    "namespace will automatically be purged by the system."
)
# How often (real seconds) the controller looks again without a change (its requeue).
RECHECK_SECONDS = 1.0

# status_condition_utils.go: the condition types the deleter keeps, in its order, with the
# reason and message each has while nothing is wrong
_OK_CONDITIONS: tuple[tuple[str, str, str], ...] = (
    (
        "NamespaceDeletionDiscoveryFailure",
        "ResourcesDiscovered",
        "All resources successfully discovered",
    ),
    (
        "NamespaceDeletionGroupVersionParsingFailure",
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    (
        "NamespaceDeletionContentFailure",
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    ("NamespaceContentRemaining", "ContentRemoved", "All content successfully removed"),
    ("NamespaceFinalizersRemaining", "ContentRemoved", "All content successfully removed"),
)

log = logging.getLogger(__name__)


def _qualified(resource: str) -> tuple[str, str]:
    """(group, "resource[.group]") as errors.NewForbidden names a resource."""
    group = KINDS[resource][1].rpartition("/")[0]
    return group, f"{resource}.{group}" if group else resource


def _forbidden(resource: str, name: str, reason: str) -> ApiError:
    """errors.NewForbidden(resource, name, reason)."""
    group, qualified = _qualified(resource)
    details: dict[str, Any] = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    subject = f'{qualified} "{name}"' if name else qualified
    return ApiError(403, "Forbidden", f"{subject} is forbidden: {reason}", details=details)


def terminating(store: ObjectStore, namespace: str) -> bool:
    try:
        ns = store.get(NAMESPACES, namespace)
    except ApiError:
        return False
    return (ns.get("status") or {}).get("phase") == TERMINATING


def admit_create(store: ObjectStore, namespace: str, resource: str, name: str) -> None:
    """Refuse a create (an object, or the eviction and binding subresources, which are creates
    too) in a Terminating namespace. A missing namespace is left to the store's 404."""
    if not terminating(store, namespace):
        return
    error = _forbidden(
        resource,
        name,
        f"unable to create new content in namespace {namespace} because it is being terminated",
    )
    assert error.details is not None
    error.details["causes"] = [
        {
            "reason": NAMESPACE_TERMINATING_CAUSE,
            "message": f"namespace {namespace} is being terminated",
            "field": "metadata.namespace",
        }
    ]
    raise error


def admit_namespace_delete(name: str) -> None:
    if name in IMMORTAL_NAMESPACES:
        raise _forbidden(NAMESPACES, name, "this namespace may not be deleted")


def delete_namespace(
    store: ObjectStore, name: str, options: dict[str, Any], *, now: Callable[[], float]
) -> dict[str, Any]:
    """DELETE of a namespace; returns the namespace (the registry returns the object, also once
    it is gone)."""
    namespace = store.get(NAMESPACES, name)
    uid = (options.get("preconditions") or {}).get("uid")
    if uid and uid != namespace["metadata"].get("uid"):
        raise ApiError(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on namespaces "{name}": Precondition failed: UID in '
            f"precondition: {uid}, UID in object meta: {namespace['metadata'].get('uid')}",
            details={"name": name, "kind": NAMESPACES},
        )
    check_preconditions(namespace, options)
    if not namespace["metadata"].get("deletionTimestamp"):
        stamp = rfc3339(now())

        def start(obj: dict[str, Any]) -> None:
            obj["metadata"]["deletionTimestamp"] = stamp
            obj.setdefault("status", {})["phase"] = TERMINATING

        return store.mutate(NAMESPACES, name, start)
    if (namespace.get("spec") or {}).get("finalizers"):
        raise ApiError(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on namespaces "{name}": {STILL_FINALIZING}',
            details={"name": name, "kind": NAMESPACES},
        )
    if namespace["metadata"].get("finalizers"):
        return namespace  # metadata finalizers (other controllers') hold it: the generic store
    return store.delete(NAMESPACES, name)


# -- the namespace controller -----------------------------------------------------------------


def _conditions(
    old: list[dict[str, Any]], remaining: dict[str, int], finalizers: dict[str, int], now: str
) -> list[dict[str, Any]]:
    """updateConditions: each kept type set to its failing or its ok variant; the transition
    time moves only when the status flips."""
    wanted: dict[str, tuple[str, str, str]] = {}
    if remaining:
        listed = sorted(
            f"{resource}.{_qualified(resource)[0]} has {count} resource instances"
            for resource, count in remaining.items()
        )
        wanted["NamespaceContentRemaining"] = (
            "True",
            "SomeResourcesRemain",
            "Some resources are remaining: " + ", ".join(listed),
        )
    if finalizers:
        listed = sorted(
            f"{name} in {count} resource instances" for name, count in finalizers.items()
        )
        wanted["NamespaceFinalizersRemaining"] = (
            "True",
            "SomeFinalizerRemain",
            "Some finalizers are remaining: " + ", ".join(listed),
        )
    by_type = {c.get("type"): c for c in old}
    result = [c for c in old if c.get("type") not in {t for t, _, _ in _OK_CONDITIONS}]
    for kind, ok_reason, ok_message in _OK_CONDITIONS:
        status, reason, message = wanted.get(kind, ("False", ok_reason, ok_message))
        previous = by_type.get(kind)
        since = now
        if previous is not None and previous.get("status") == status:
            since = str(previous.get("lastTransitionTime") or now)
        result.append(
            {
                "type": kind,
                "status": status,
                "lastTransitionTime": since,
                "reason": reason,
                "message": message,
            }
        )
    return result


def _mark_deleting(
    store: ObjectStore, resource: str, name: str, namespace: str, stamp: str
) -> None:
    """What the generic store's delete does to an object its finalizers hold: it stays, marked
    with deletionTimestamp; once a client removes the last finalizer the next pass deletes it."""

    def mark(obj: dict[str, Any]) -> None:
        obj["metadata"]["deletionTimestamp"] = stamp

    store.mutate(resource, name, mark, namespace=namespace)


def _delete_content(
    store: ObjectStore, namespace: str, *, now: Callable[[], float]
) -> tuple[dict[str, int], dict[str, int]]:
    """deleteAllContent: a DeleteCollection of each namespaced resource, then what remains:
    (count by resource, count by finalizer of the objects left)."""
    remaining: dict[str, int] = {}
    finalizers: dict[str, int] = {}
    for resource in sorted(NAMESPACED):
        items, _ = store.list(resource, namespace=namespace)
        for obj in items:
            name = obj["metadata"]["name"]
            if obj["metadata"].get("deletionTimestamp") and resource == "pods":
                continue  # on its way out; skipped so a pass over a big namespace stays cheap
            with contextlib.suppress(ApiError):  # gone meanwhile
                if resource == "pods":
                    graceful_delete(store, name, namespace, options={}, grace=None, now=now)
                elif not obj["metadata"].get("finalizers"):
                    store.delete(resource, name, namespace=namespace)
                elif not obj["metadata"].get("deletionTimestamp"):
                    _mark_deleting(store, resource, name, namespace, rfc3339(now()))
        left, _ = store.list(resource, namespace=namespace)
        if left:
            remaining[resource] = len(left)
        for obj in left:
            for finalizer in obj["metadata"].get("finalizers") or ():
                finalizers[finalizer] = finalizers.get(finalizer, 0) + 1
    return remaining, finalizers


def sync_namespace(store: ObjectStore, name: str, *, now: Callable[[], float]) -> None:
    """One pass of the deleter over namespace `name` (namespacedResourcesDeleter.Delete)."""
    try:
        namespace = store.get(NAMESPACES, name)
    except ApiError:
        return
    if not namespace["metadata"].get("deletionTimestamp"):
        return
    if (namespace.get("status") or {}).get("phase") != TERMINATING:
        store.mutate(
            NAMESPACES, name, lambda ns: ns.setdefault("status", {}).update(phase=TERMINATING)
        )
    if not (namespace.get("spec") or {}).get("finalizers"):
        delete_namespace(store, name, {}, now=now)
        return
    remaining, finalizers = _delete_content(store, name, now=now)
    stamp = rfc3339(now())

    def conditions(ns: dict[str, Any]) -> None:
        status = ns.setdefault("status", {})
        status["conditions"] = _conditions(
            copy_json(status.get("conditions") or []), remaining, finalizers, stamp
        )

    namespace = store.mutate(NAMESPACES, name, conditions)
    if remaining:
        return  # the requeue: the next change in the namespace, or the recheck, looks again

    def finalize(ns: dict[str, Any]) -> None:
        spec = ns.setdefault("spec", {})
        spec["finalizers"] = [f for f in spec.get("finalizers") or () if f != KUBERNETES_FINALIZER]

    namespace = store.mutate(NAMESPACES, name, finalize)
    if not namespace["spec"]["finalizers"]:
        delete_namespace(store, name, {}, now=now)


def _namespace_of(event: WatchEvent) -> str:
    """The namespace a change is in, or is of (a namespace's own change)."""
    meta = event.object.get("metadata") or {}
    if event.resource == NAMESPACES:
        return str(meta.get("name") or "")
    return str(meta.get("namespace") or "")


class NamespaceController:
    """Runs `sync_namespace` for a namespace being deleted after each batch of changes to it or
    to anything in it, and for all of them every RECHECK_SECONDS (the requeue). Started with
    the API server (`apiserver.build_app`)."""

    def __init__(self, store: ObjectStore, *, now: Callable[[], float]) -> None:
        self._store = store
        self._now = now

    async def run(self) -> None:
        subscription = self._store.subscribe()
        try:
            while not subscription.closed:
                # asyncio.wait, not wait_for: before 3.12 wait_for can swallow the cancel that
                # stops the server when it meets a wake-up, and this loop would never end
                waiter = asyncio.ensure_future(subscription.wait())
                try:
                    done, _ = await asyncio.wait({waiter}, timeout=RECHECK_SECONDS)
                finally:
                    waiter.cancel()
                touched = {_namespace_of(event) for event in subscription.drain()}
                deleting = self._deleting()
                # a change looks at the namespaces it touched; the recheck at all of them
                self._sync([n for n in deleting if n in touched] if done else deleting)
        finally:
            subscription.close()

    def _deleting(self) -> list[str]:
        namespaces, _ = self._store.list(NAMESPACES)
        return sorted(
            ns["metadata"]["name"] for ns in namespaces if ns["metadata"].get("deletionTimestamp")
        )

    def _sync(self, names: Iterable[str]) -> None:
        for name in names:
            try:
                sync_namespace(self._store, name, now=self._now)
            except Exception:  # one namespace's failure must not stop the others
                log.exception("namespace controller sync failed", extra={"ns": name})
