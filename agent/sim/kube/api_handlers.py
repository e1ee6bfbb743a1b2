"""Request handling of the simulated Kubernetes API server: URL routing for core/v1,
coordination.k8s.io/v1, policy/v1 and the ray.io/v1 custom resource, and the handlers — reads,
paginated LISTs, WATCH, creates, updates, patches, graceful deletes (one object or a
collection; finalizers honoured), eviction (PodDisruptionBudgets respected) and binding, each
write also as a dry run — every failure an ApiError."""

from __future__ import annotations

import copy
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from agent.sim.faults import FaultPlan
from agent.sim.kube import dry_run, finalizers, namespace_lifecycle, rayclusters
from agent.sim.kube.disruption import admit_eviction
from agent.sim.kube.list_pages import Snapshots, decode_continue, encode_continue
from agent.sim.kube.patch import CUSTOM_RESOURCE_PATCHES, apply_patch, check_patch_type
from agent.sim.kube.selectors import Predicate, selector_predicate
from agent.sim.kube.store import KINDS, NAMESPACED, ApiError, ObjectStore, copy_json, kind_of
from agent.sim.kube.tables import table, wants_table
from agent.sim.kube.watch_stream import WatchRequest, WatchStream
from agent.sim.kube.write_rules import (
    bind_pod,
    check_name,
    check_preconditions,
    check_version,
    graceful_delete,
    name_problems,
    prepared_update,
    rfc3339,
    validate_budget,
    validate_new_pod,
)

_GROUPS: dict[str, frozenset[str]] = {
    "api/v1": frozenset({"pods", "nodes", "events", "namespaces"}),
    "apis/coordination.k8s.io/v1": frozenset({"leases"}),
    "apis/policy/v1": frozenset({"poddisruptionbudgets"}),
    "apis/ray.io/v1": frozenset({rayclusters.PLURAL}),
}
_SUBRESOURCES: dict[str, frozenset[str]] = {
    "pods": frozenset({"status", "eviction", "binding"}),
    "nodes": frozenset({"status"}),
    "namespaces": frozenset({"status", "finalize"}),
    "poddisruptionbudgets": frozenset({"status"}),
    rayclusters.PLURAL: frozenset({"status"}),  # the CRD's subresources: status only
}
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def parse_bool(value: str | None) -> bool:
    """A query-parameter boolean as the apiserver converts it: absent, "0" or "false" (any
    case) are false, anything else — even an empty value — is true."""
    if value is None:
        return False
    return not (value == "0" or value.lower() == "false")


def json_response(body: Any, *, status: int = 200) -> web.Response:
    return web.Response(body=_dumps(body).encode(), status=status, content_type="application/json")


def _success(code: int = 200, details: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return body


def method_not_allowed(method: str) -> ApiError:
    return ApiError(
        405,
        "MethodNotAllowed",
        f"the server does not allow this method on the requested resource ({method})",
    )


def not_found_path() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as error:
        raise ApiError(400, "BadRequest", f"error decoding request body: {error}") from None


@dataclass(frozen=True)
class _Route:
    """What a request path names: a collection, one object, or one object's subresource."""

    resource: str
    namespace: str | None
    name: str | None  # None: the collection itself
    sub: str | None  # None: the object itself
    watch: bool


def _route(prefix: str, tail: str, *, watch: bool) -> _Route:
    """Resolve `[watch/][namespaces/{ns}/]{resource}[/{name}[/{sub}]]` under an API group
    prefix. Every path the apiserver does not serve is a 404, whatever the method."""
    resources = _GROUPS[prefix]
    segments = [s for s in tail.split("/") if s]
    if segments and segments[0] == "watch":
        watch, segments = True, segments[1:]
    namespace: str | None = None
    # namespaces/{name}/status and /finalize are subresources of a namespace, not a scope
    if (
        len(segments) >= 3
        and segments[0] == "namespaces"
        and segments[2] not in ("status", "finalize")
    ):
        namespace, segments = segments[1], segments[2:]
    if not segments or segments[0] not in resources:
        raise not_found_path()
    resource = segments[0]
    if namespace is not None and resource not in NAMESPACED:
        raise not_found_path()
    if len(segments) == 1:
        return _Route(resource, namespace, None, None, watch)
    if resource in NAMESPACED and namespace is None:
        raise not_found_path()
    if len(segments) == 2:
        return _Route(resource, namespace, segments[1], None, watch)
    sub = segments[2]
    if len(segments) > 3 or sub not in _SUBRESOURCES.get(resource, ()):
        raise not_found_path()
    return _Route(resource, namespace, segments[1], sub, watch)


class ApiHandlers:
    """The handlers for one store; build_app wires `dispatch` into an aiohttp Application."""

    def __init__(self, store: ObjectStore, *, faults: FaultPlan | None, now: Callable[[], float]):
        self._store = store
        self._faults = faults
        self._now = now
        self._snapshots = Snapshots()
        self._random = random.Random()

    # -- routing -------------------------------------------------------------------------

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        route = _route(
            request.match_info["prefix"],
            request.match_info["tail"],
            watch=parse_bool(request.query.get("watch")),
        )
        handlers = await self._for_dry_run(request, route)
        if request.method == "POST" and route.namespace is not None:
            await handlers._admit_create(request, route)
        if route.name is None:
            return await handlers._collection(request, route)
        if route.sub is None:
            return await handlers._object(request, route, name=route.name)
        return await handlers._subresource(request, route, name=route.name, sub=route.sub)

    async def _for_dry_run(self, request: web.Request, route: _Route) -> ApiHandlers:
        """These handlers, or for a `dryRun=All` write the same handlers over a DryRunStore, so
        the write runs every rule and stores nothing."""
        options_kind = dry_run.OPTIONS_KINDS.get(request.method)
        if options_kind is None:
            return self
        values = request.query.getall("dryRun", [])
        if request.method == "DELETE":
            values = dry_run.delete_options(values, await _body(request))
        elif route.sub == "eviction":
            values = dry_run.eviction_dry_run(values, await _body(request))
        if not dry_run.check_dry_run(values, options_kind):
            return self
        view = copy.copy(self)
        view._store = dry_run.DryRunStore(self._store)
        return view

    async def _admit_create(self, request: web.Request, route: _Route) -> None:
        """NamespaceLifecycle admission of a POST into a namespace (an object, an eviction or
        a binding): nothing new in a namespace being deleted."""
        assert route.namespace is not None
        name = route.name
        if name is None:
            body = await _body(request)
            meta = body.get("metadata") if isinstance(body, dict) else None
            name = str((meta or {}).get("name") or "") if isinstance(meta, dict) else ""
        namespace_lifecycle.admit_create(self._store, route.namespace, route.resource, name)

    async def _collection(self, request: web.Request, route: _Route) -> web.StreamResponse:
        """LIST or WATCH a collection, POST a new object into it, or DELETE what it holds."""
        method, resource, namespace = request.method, route.resource, route.namespace
        if method == "GET":
            if route.watch:
                return await self.watch(request, resource, namespace)
            return self.list(request, resource, namespace)
        # a namespaced resource is created (and deleted as a collection) only through its
        # namespace's collection; the all-namespaces path only lists and watches
        scoped = namespace is not None or resource not in NAMESPACED
        if method == "POST" and scoped:
            return self.create(resource, namespace, await _body(request))
        # deletecollection: every resource served but namespaces (kube-apiserver's discovery)
        if method == "DELETE" and resource != "namespaces" and scoped:
            return self.delete_collection(request, resource, namespace, await _body(request))
        raise method_not_allowed(method)

    async def _object(
        self, request: web.Request, route: _Route, *, name: str
    ) -> web.StreamResponse:
        """GET (or WATCH), PUT, PATCH or DELETE one named object."""
        method = request.method
        if method == "GET" and route.watch:
            return await self.watch(request, route.resource, route.namespace, name=name)
        if method == "DELETE":
            return self.delete(request, route.resource, name, route.namespace, await _body(request))
        return await self._read_or_write(request, route, name=name, sub=None)

    async def _subresource(
        self, request: web.Request, route: _Route, *, name: str, sub: str
    ) -> web.StreamResponse:
        """pods/eviction and pods/binding take a POST; the others read and write like the
        object itself, restricted to their part of it."""
        method, namespace = request.method, route.namespace or ""
        if sub == "eviction":
            if method != "POST":
                raise method_not_allowed(method)
            return self.evict(request, name, namespace, await _body(request))
        if sub == "binding":
            if method != "POST":
                raise method_not_allowed(method)
            return self.bind(name, namespace, await _body(request))
        return await self._read_or_write(request, route, name=name, sub=sub)

    async def _read_or_write(
        self, request: web.Request, route: _Route, *, name: str, sub: str | None
    ) -> web.Response:
        """GET, PUT or PATCH an object (`sub` None) or its subresource; answers the result."""
        method, resource, namespace = request.method, route.resource, route.namespace
        if method == "GET":
            obj = self._store.get(resource, name, namespace=namespace)
        elif method == "PUT":
            obj = self.update(resource, name, namespace, sub, await _body(request))
        elif method == "PATCH":
            obj = await self.patch(request, resource, name, namespace, sub)
        else:
            raise method_not_allowed(method)
        return self._render(request, resource, obj)

    def _render(
        self, request: web.Request, resource: str, obj: dict[str, Any], *, status: int = 200
    ) -> web.Response:
        table_version = wants_table(request.headers.get("Accept", ""))
        if table_version is not None:
            return json_response(
                table(
                    resource,
                    [obj],
                    now=self._now(),
                    api_version=table_version,
                    include_object=request.query.get("includeObject", "PartialObjectMetadata"),
                    metadata={"resourceVersion": obj["metadata"].get("resourceVersion", "")},
                ),
                status=status,
            )
        return json_response(obj, status=status)

    # -- reads ---------------------------------------------------------------------------

    def _predicate(
        self, request: web.Request, resource: str, name: str | None = None
    ) -> Predicate | None:
        field_selector = request.query.get("fieldSelector")
        if name is not None:
            # a watch on one object is a LIST-watch with a metadata.name field selector
            field_selector = f"metadata.name={name}" + (
                f",{field_selector}" if field_selector else ""
            )
        return selector_predicate(
            resource,
            label_selector=request.query.get("labelSelector"),
            field_selector=field_selector,
        )

    def list(self, request: web.Request, resource: str, namespace: str | None) -> web.Response:
        query = request.query
        token = query.get("continue")
        try:
            limit = int(query.get("limit") or 0)
        except ValueError:
            raise ApiError(
                400, "BadRequest", f"limit: Invalid value: {query.get('limit')!r}"
            ) from None
        now = time.monotonic()
        if token:
            snapshot_id, offset = decode_continue(token)
            rv, items = self._snapshots.find(
                snapshot_id, oldest_rv=self._store.oldest_resource_version, now=now
            )
        else:
            predicate = self._predicate(request, resource)
            stored, rv = self._store.list(resource, namespace=namespace)
            items = [obj for obj in stored if predicate is None or predicate(obj)]
            items.sort(
                key=lambda obj: (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            )
            offset, snapshot_id = 0, 0
        metadata: dict[str, Any] = {"resourceVersion": str(rv)}
        page = items[offset:]
        if limit > 0 and len(page) > limit:
            page = page[:limit]
            if not snapshot_id:
                snapshot_id = self._snapshots.keep(rv, items, now)
            metadata["continue"] = encode_continue(snapshot_id, rv, offset + limit)
            metadata["remainingItemCount"] = len(items) - offset - limit
        table_version = wants_table(request.headers.get("Accept", ""))
        if table_version is not None:
            return json_response(
                table(
                    resource,
                    page,
                    now=self._now(),
                    api_version=table_version,
                    include_object=query.get("includeObject", "PartialObjectMetadata"),
                    metadata=metadata,
                )
            )
        kind, api_version = KINDS[resource]
        return json_response(
            {"kind": f"{kind}List", "apiVersion": api_version, "metadata": metadata, "items": page}
        )

    async def watch(
        self, request: web.Request, resource: str, namespace: str | None, *, name: str | None = None
    ) -> web.StreamResponse:
        query = request.query
        timeout_text = query.get("timeoutSeconds")
        try:
            timeout = float(int(timeout_text)) if timeout_text else 0.0
        except ValueError:
            raise ApiError(
                400, "BadRequest", f"timeoutSeconds: Invalid value: {timeout_text!r}"
            ) from None
        if timeout <= 0:
            # unset or 0: the apiserver's default, a random time in [minRequestTimeout, 2×)
            timeout = self._random.uniform(1800.0, 3600.0)
        watch_request = WatchRequest(
            resource=resource,
            namespace=namespace,
            predicate=self._predicate(request, resource, name),
            resource_version=query.get("resourceVersion"),
            bookmarks=parse_bool(query.get("allowWatchBookmarks")),
            timeout_seconds=timeout,
            table_version=wants_table(request.headers.get("Accept", "")),
            include_object=query.get("includeObject", "PartialObjectMetadata"),
        )
        stream = WatchStream(self._store, watch_request, faults=self._faults, now=self._now)
        return await stream.run(request)

    # -- writes --------------------------------------------------------------------------

    def create(self, resource: str, namespace: str | None, body: Any) -> web.Response:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body of the request must be a JSON object")
        obj = dict(body)
        if obj.get("kind") not in (None, "", kind_of(resource)):
            raise ApiError(
                400,
                "BadRequest",
                f"the API version in the data ({obj.get('apiVersion')}) does not match the "
                f"expected API version ({KINDS[resource][1]})",
            )
        if resource == "pods":
            validate_new_pod(obj)
            # the pod strategy drops client-written status on create
            obj["status"] = {}
        elif resource == "poddisruptionbudgets":
            validate_budget(obj)
        elif resource == rayclusters.PLURAL:
            name = str((obj.get("metadata") or {}).get("name") or "")
            obj = rayclusters.prepare_create(obj, name_problems(name))
        return json_response(self._store.create(resource, obj, namespace=namespace), status=201)

    def update(
        self, resource: str, name: str, namespace: str | None, sub: str | None, body: Any
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body of the request must be a JSON object")
        check_name(body, name, namespace)
        old = self._store.get(resource, name, namespace=namespace)
        check_version(resource, old, body)
        new = copy_json(body)
        new.setdefault("metadata", {})["name"] = name
        return self._store_update(resource, namespace, prepared_update(resource, sub, old, new))

    async def patch(
        self, request: web.Request, resource: str, name: str, namespace: str | None, sub: str | None
    ) -> dict[str, Any]:
        body = await request.read()
        content_type = request.headers.get("Content-Type", "")
        # a custom resource takes no strategic merge patch (customresource_handler.go)
        accepted = CUSTOM_RESOURCE_PATCHES if resource == rayclusters.PLURAL else None
        check_patch_type(content_type, accepted)
        old = self._store.get(resource, name, namespace=namespace)
        patched = apply_patch(old, content_type, body)
        check_name(patched, name, namespace)
        check_version(resource, old, patched)
        return self._store_update(resource, namespace, prepared_update(resource, sub, old, patched))

    def _store_update(
        self, resource: str, namespace: str | None, prepared: dict[str, Any]
    ) -> dict[str, Any]:
        """Store an update; one that took the last finalizer off an object being deleted
        deletes it (the generic store's ShouldDeleteDuringUpdate), answering its last state.
        Not a namespace: its own store also waits for spec.finalizers, which the namespace
        controller empties and then deletes it (namespace_lifecycle.py)."""
        stored = self._store.replace(resource, prepared, namespace=namespace)
        if resource != "namespaces" and finalizers.finished(stored):
            meta = stored["metadata"]
            return self._store.delete(resource, meta["name"], namespace=meta.get("namespace"))
        return stored

    def _delete_pod(
        self, request: web.Request, name: str, namespace: str, options: dict[str, Any]
    ) -> dict[str, Any]:
        grace: int | None = None
        if "gracePeriodSeconds" in request.query:
            try:
                grace = int(request.query["gracePeriodSeconds"])
            except ValueError:
                raise ApiError(400, "BadRequest", "gracePeriodSeconds: Invalid value") from None
        if options.get("gracePeriodSeconds") is not None:
            grace = int(options["gracePeriodSeconds"])
        return graceful_delete(
            self._store, name, namespace, options=options, grace=grace, now=self._now
        )

    def delete(
        self, request: web.Request, resource: str, name: str, namespace: str | None, body: Any
    ) -> web.Response:
        options = body if isinstance(body, dict) else {}
        if resource == "pods":
            return json_response(self._delete_pod(request, name, namespace or "", options))
        if resource == "namespaces":
            namespace_lifecycle.admit_namespace_delete(name)
            return json_response(
                namespace_lifecycle.delete_namespace(self._store, name, options, now=self._now)
            )
        current = self._store.get(resource, name, namespace=namespace)
        check_preconditions(current, options)
        # finalizers hold the object: it is only marked, and answered as it now is
        obj, gone = finalizers.delete_or_mark(self._store, resource, name, namespace, now=self._now)
        if not gone:
            return self._render(request, resource, obj)
        details: dict[str, Any] = {"name": name, "kind": resource}
        group = KINDS[resource][1].rpartition("/")[0]
        if group:
            details["group"] = group
        details["uid"] = obj["metadata"].get("uid")
        return json_response(_success(details=details))

    def delete_collection(
        self, request: web.Request, resource: str, namespace: str | None, body: Any
    ) -> web.Response:
        """DELETE on a collection (registry Store.DeleteCollection): list what the selectors
        pick, delete each as a single DELETE would (pods gracefully), skip the ones gone
        meanwhile, and answer the list as it was before."""
        options = body if isinstance(body, dict) else {}
        predicate = self._predicate(request, resource)
        items, rv = self._store.list(resource, namespace=namespace)
        picked = [obj for obj in items if predicate is None or predicate(obj)]
        picked.sort(key=lambda obj: (obj["metadata"].get("namespace", ""), obj["metadata"]["name"]))
        for obj in picked:
            meta = obj["metadata"]
            try:
                if resource == "pods":
                    self._delete_pod(request, meta["name"], meta["namespace"], dict(options))
                else:
                    check_preconditions(obj, options)
                    finalizers.delete_or_mark(
                        self._store, resource, meta["name"], meta.get("namespace"), now=self._now
                    )
            except ApiError as error:
                if error.code != 404:
                    raise
        kind, api_version = KINDS[resource]
        return json_response(
            {
                "kind": f"{kind}List",
                "apiVersion": api_version,
                "metadata": {"resourceVersion": str(rv)},
                "items": picked,
            }
        )

    def evict(self, request: web.Request, name: str, namespace: str, body: Any) -> web.Response:
        eviction = body if isinstance(body, dict) else {}
        target = (eviction.get("metadata") or {}).get("name")
        if target and target != name:
            raise ApiError(
                400,
                "BadRequest",
                f"name in URL does not match name in Eviction object: {target} != {name}",
            )
        # eviction.go: a pod a PodDisruptionBudget protects goes only while the budget allows a
        # disruption (else 429 TooManyRequests, cause DisruptionBudget); then it is deleted
        admit_eviction(self._store, namespace, name, now=self._now())
        self._delete_pod(request, name, namespace, eviction.get("deleteOptions") or {})
        return json_response(_success(201), status=201)

    def bind(self, name: str, namespace: str, body: Any) -> web.Response:
        binding = body if isinstance(body, dict) else {}
        node = (binding.get("target") or {}).get("name")
        if not node:
            raise ApiError(
                422, "Invalid", f'Binding "{name}" is invalid: target.name: Required value'
            )
        bind_pod(self._store, name, namespace, node=node, now=rfc3339(self._now()))
        return json_response(_success(201), status=201)
