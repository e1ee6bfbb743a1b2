"""The simulated Kubernetes API server: an aiohttp app over an ObjectStore serving discovery,
namespaces, pods (with status, eviction and binding), nodes, core/v1 events and leases, with
the apiserver's policies — graceful deletion, pod-update validation, selectors, paginated
LISTs over one snapshot, WATCH, patches, Table output — and every error a JSON Status."""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import itertools
import json
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from agent.sim import discovery
from agent.sim.faults import FaultPlan
from agent.sim.patch import apply_patch
from agent.sim.pod_updates import validate_pod_update
from agent.sim.selectors import Predicate, selector_predicate
from agent.sim.store import KINDS, NAMESPACED, ApiError, ObjectStore, conflict, kind_of
from agent.sim.tables import table, wants_table
from agent.sim.watch_stream import WatchRequest, WatchStream

STORE_KEY = web.AppKey("store", ObjectStore)

_GROUPS: dict[str, frozenset[str]] = {
    "api/v1": frozenset({"pods", "nodes", "events", "namespaces"}),
    "apis/coordination.k8s.io/v1": frozenset({"leases"}),
}
_SUBRESOURCES: dict[str, frozenset[str]] = {
    "pods": frozenset({"status", "eviction", "binding"}),
    "nodes": frozenset({"status"}),
    "namespaces": frozenset({"status", "finalize"}),
}
_TERMINAL_PHASES = ("Succeeded", "Failed")
# a snapshot of a paginated LIST lives this long (etcd compacts about every 5 minutes)
_SNAPSHOT_SECONDS = 300.0
_SNAPSHOTS_KEPT = 64
_CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted "
    "between the time the first chunk was returned and now may show up in the list."
)

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def parse_bool(value: str | None) -> bool:
    """A query-parameter boolean as the apiserver converts it: absent, "0" or "false" (any
    case) are false, anything else — even an empty value — is true."""
    if value is None:
        return False
    return not (value == "0" or value.lower() == "false")


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(body: Any, *, status: int = 200) -> web.Response:
    return web.Response(body=_dumps(body).encode(), status=status, content_type="application/json")


def _success(code: int = 200, details: dict | None = None) -> dict:
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


def _method_not_allowed(method: str) -> ApiError:
    return ApiError(
        405,
        "MethodNotAllowed",
        f"the server does not allow this method on the requested resource ({method})",
    )


def _not_found_path() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as error:
        raise ApiError(400, "BadRequest", f"error decoding request body: {error}") from None


class _Snapshots:
    """LIST snapshots behind continue tokens, so every page comes from one consistent view."""

    def __init__(self) -> None:
        self._entries: OrderedDict[int, tuple[float, int, list[dict]]] = OrderedDict()
        self._ids = itertools.count(1)

    def keep(self, rv: int, items: list[dict], now: float) -> int:
        snapshot_id = next(self._ids)
        self._entries[snapshot_id] = (now, rv, items)
        while len(self._entries) > _SNAPSHOTS_KEPT:
            self._entries.popitem(last=False)
        return snapshot_id

    def find(self, snapshot_id: int, *, oldest_rv: int, now: float) -> tuple[int, list[dict]]:
        entry = self._entries.get(snapshot_id)
        if entry is None or entry[1] < oldest_rv or now - entry[0] > _SNAPSHOT_SECONDS:
            self._entries.pop(snapshot_id, None)
            raise ApiError(410, "Expired", _CONTINUE_EXPIRED)
        return entry[1], entry[2]


def _encode_continue(snapshot_id: int, rv: int, offset: int) -> str:
    raw = _dumps({"v": "sim/v1", "id": snapshot_id, "rv": rv, "start": offset}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[int, int]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded))
        return int(data["id"]), int(data["start"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ApiError(
            400, "BadRequest", "continue key is not valid: illegal base64 data"
        ) from None


class ApiServer:
    """Request handling for one store; build_app wires it into an aiohttp Application."""

    def __init__(self, store: ObjectStore, *, faults: FaultPlan | None, now: Callable[[], float]):
        self._store = store
        self._faults = faults
        self._now = now
        self._snapshots = _Snapshots()
        self._random = random.Random()

    # -- routing -------------------------------------------------------------------------

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        prefix = request.match_info["prefix"]
        segments = [s for s in request.match_info["tail"].split("/") if s]
        resources = _GROUPS[prefix]
        query = request.query
        watch = parse_bool(query.get("watch"))
        if segments and segments[0] == "watch":
            watch, segments = True, segments[1:]
        namespace: str | None = None
        if (
            len(segments) >= 3
            and segments[0] == "namespaces"
            and segments[2] not in ("status", "finalize")
        ):
            namespace, segments = segments[1], segments[2:]
        if not segments or segments[0] not in resources:
            raise _not_found_path()
        resource = segments[0]
        if namespace is not None and resource not in NAMESPACED:
            raise _not_found_path()
        method = request.method
        if len(segments) == 1:
            if method == "GET":
                if watch:
                    return await self.watch(request, resource, namespace)
                return self.list(request, resource, namespace)
            if method == "POST" and (namespace is not None or resource not in NAMESPACED):
                return self.create(resource, namespace, await _body(request))
            raise _method_not_allowed(method)
        if resource in NAMESPACED and namespace is None:
            raise _not_found_path()
        name = segments[1]
        if len(segments) == 2:
            if method == "GET":
                if watch:
                    return await self.watch(request, resource, namespace, name=name)
                return self._render(
                    request, resource, self._store.get(resource, name, namespace=namespace)
                )
            if method == "PUT":
                return self._render(
                    request,
                    resource,
                    self.update(resource, name, namespace, None, await _body(request)),
                )
            if method == "PATCH":
                return self._render(
                    request, resource, await self.patch(request, resource, name, namespace, None)
                )
            if method == "DELETE":
                return self.delete(request, resource, name, namespace, await _body(request))
            raise _method_not_allowed(method)
        sub = segments[2]
        if len(segments) > 3 or sub not in _SUBRESOURCES.get(resource, ()):
            raise _not_found_path()
        if sub == "eviction":
            if method != "POST":
                raise _method_not_allowed(method)
            return self.evict(request, name, namespace or "", await _body(request))
        if sub == "binding":
            if method != "POST":
                raise _method_not_allowed(method)
            return self.bind(name, namespace or "", await _body(request))
        if method == "GET":
            return self._render(
                request, resource, self._store.get(resource, name, namespace=namespace)
            )
        if method == "PUT":
            return self._render(
                request, resource, self.update(resource, name, namespace, sub, await _body(request))
            )
        if method == "PATCH":
            return self._render(
                request, resource, await self.patch(request, resource, name, namespace, sub)
            )
        raise _method_not_allowed(method)

    def _render(
        self, request: web.Request, resource: str, obj: dict, *, status: int = 200
    ) -> web.Response:
        table_version = wants_table(request.headers.get("Accept", ""))
        if table_version is not None:
            return _json(
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
        return _json(obj, status=status)

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
            snapshot_id, offset = _decode_continue(token)
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
            metadata["continue"] = _encode_continue(snapshot_id, rv, offset + limit)
            metadata["remainingItemCount"] = len(items) - offset - limit
        table_version = wants_table(request.headers.get("Accept", ""))
        if table_version is not None:
            return _json(
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
        return _json(
            {"kind": f"{kind}List", "apiVersion": api_version, "metadata": metadata, "items": page}
        )

    async def watch(
        self, request: web.Request, resource: str, namespace: str | None, *, name: str | None = None
    ) -> web.StreamResponse:
        query = request.query
        timeout_text = query.get("timeoutSeconds")
        if timeout_text:
            try:
                timeout = float(int(timeout_text))
            except ValueError:
                raise ApiError(
                    400, "BadRequest", f"timeoutSeconds: Invalid value: {timeout_text!r}"
                ) from None
        else:
            # the apiserver's default: a random time between minRequestTimeout and twice it
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
        kind = kind_of(resource)
        if obj.get("kind") not in (None, "", kind):
            raise ApiError(
                400,
                "BadRequest",
                f"the API version in the data ({obj.get('apiVersion')}) does not match the expected API version ({KINDS[resource][1]})",
            )
        if resource == "pods":
            _validate_new_pod(obj)
            # the pod strategy drops client-written status on create
            obj["status"] = {}
        created = self._store.create(resource, obj, namespace=namespace)
        return _json(created, status=201)

    def _check_name(self, body: dict, name: str, namespace: str | None) -> None:
        meta = body.get("metadata") or {}
        if meta.get("name") and meta["name"] != name:
            raise ApiError(
                400,
                "BadRequest",
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})",
            )
        if namespace is not None and meta.get("namespace") and meta["namespace"] != namespace:
            raise ApiError(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the request",
            )

    def _prepared(self, resource: str, sub: str | None, old: dict, new: dict) -> dict:
        """Apply the strategy of the endpoint: which parts of `new` count, and validation."""
        if sub == "status":
            result = dict(old)
            result["status"] = new.get("status") or {}
            result["metadata"] = {
                **old["metadata"],
                "resourceVersion": (new.get("metadata") or {}).get("resourceVersion")
                or old["metadata"]["resourceVersion"],
            }
            return result
        result = dict(new)
        if resource in ("pods", "nodes", "namespaces"):
            # updates through the main endpoint never change status
            if "status" in old:
                result["status"] = old["status"]
            else:
                result.pop("status", None)
        if resource == "pods":
            validate_pod_update(old, result)
        return result

    def update(
        self, resource: str, name: str, namespace: str | None, sub: str | None, body: Any
    ) -> dict:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body of the request must be a JSON object")
        self._check_name(body, name, namespace)
        old = self._store.get(resource, name, namespace=namespace)
        _check_version(resource, old, body)
        new = copy.deepcopy(body)
        new.setdefault("metadata", {})["name"] = name
        return self._store.replace(
            resource, self._prepared(resource, sub, old, new), namespace=namespace
        )

    async def patch(
        self, request: web.Request, resource: str, name: str, namespace: str | None, sub: str | None
    ) -> dict:
        body = await request.read()
        old = self._store.get(resource, name, namespace=namespace)
        patched = apply_patch(old, request.headers.get("Content-Type", ""), body)
        self._check_name(patched, name, namespace)
        _check_version(resource, old, patched)
        return self._store.replace(
            resource, self._prepared(resource, sub, old, patched), namespace=namespace
        )

    def _graceful_delete(
        self, name: str, namespace: str, options: dict, request: web.Request
    ) -> dict:
        pod = self._store.get("pods", name, namespace=namespace)
        _check_preconditions(pod, options)
        grace = options.get("gracePeriodSeconds")
        if grace is None and "gracePeriodSeconds" in request.query:
            try:
                grace = int(request.query["gracePeriodSeconds"])
            except ValueError:
                raise ApiError(400, "BadRequest", "gracePeriodSeconds: Invalid value") from None
        if grace is None:
            grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        bound = bool((pod.get("spec") or {}).get("nodeName"))
        terminal = (pod.get("status") or {}).get("phase") in _TERMINAL_PHASES
        # an unbound or finished pod has no kubelet to wait for: it goes at once
        if not bound or terminal or grace <= 0:
            return self._store.delete("pods", name, namespace=namespace)
        existing = pod["metadata"].get("deletionGracePeriodSeconds")
        if existing is not None and existing <= grace:
            return pod
        deadline = rfc3339(self._now() + grace)

        def mark(obj: dict) -> None:
            obj["metadata"]["deletionTimestamp"] = deadline
            obj["metadata"]["deletionGracePeriodSeconds"] = grace

        return self._store.mutate("pods", name, mark, namespace=namespace)

    def delete(
        self, request: web.Request, resource: str, name: str, namespace: str | None, body: Any
    ) -> web.Response:
        options = body if isinstance(body, dict) else {}
        if resource == "pods":
            return _json(self._graceful_delete(name, namespace or "", options, request))
        current = self._store.get(resource, name, namespace=namespace)
        _check_preconditions(current, options)
        deleted = self._store.delete(resource, name, namespace=namespace)
        if resource == "namespaces":
            return _json(deleted)
        return _json(
            _success(
                details={"name": name, "kind": resource, "uid": deleted["metadata"].get("uid")}
            )
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
        # no PodDisruptionBudgets exist in the simulator, so every eviction is allowed
        self._graceful_delete(name, namespace, eviction.get("deleteOptions") or {}, request)
        return _json(_success(201), status=201)

    def bind(self, name: str, namespace: str, body: Any) -> web.Response:
        binding = body if isinstance(body, dict) else {}
        node = (binding.get("target") or {}).get("name")
        if not node:
            raise ApiError(
                422, "Invalid", f'Binding "{name}" is invalid: target.name: Required value'
            )
        now = rfc3339(self._now())

        def assign(pod: dict) -> None:
            spec = pod.setdefault("spec", {})
            if spec.get("nodeName"):
                raise ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on pods/binding "{name}": pod {name} is already assigned to node "{spec["nodeName"]}"',
                )
            spec["nodeName"] = node
            conditions = [
                c
                for c in (pod.setdefault("status", {}).get("conditions") or [])
                if c.get("type") != "PodScheduled"
            ]
            conditions.append(
                {
                    "type": "PodScheduled",
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": now,
                }
            )
            pod["status"]["conditions"] = conditions

        self._store.mutate("pods", name, assign, namespace=namespace)
        return _json(_success(201), status=201)


def _check_version(resource: str, current: dict, new: dict) -> None:
    # optimistic concurrency comes before validation, as in the apiserver's GuaranteedUpdate
    wanted = (new.get("metadata") or {}).get("resourceVersion")
    if wanted and wanted != current["metadata"].get("resourceVersion"):
        raise conflict(resource, current["metadata"]["name"])


def _check_preconditions(obj: dict, options: dict) -> None:
    preconditions = options.get("preconditions") or {}
    meta = obj["metadata"]
    uid, rv = preconditions.get("uid"), preconditions.get("resourceVersion")
    if uid and uid != meta.get("uid"):
        raise ApiError(
            409,
            "Conflict",
            f"Precondition failed: UID in precondition: {uid}, UID in object meta: {meta.get('uid')}",
        )
    if rv and rv != meta.get("resourceVersion"):
        raise ApiError(
            409,
            "Conflict",
            f"Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {meta.get('resourceVersion')}",
        )


def _validate_new_pod(pod: dict) -> None:
    name = (pod.get("metadata") or {}).get("name") or ""
    containers = (pod.get("spec") or {}).get("containers")
    problems = []
    if not containers:
        problems.append("spec.containers: Required value")
    for index, container in enumerate(containers or []):
        if not isinstance(container, dict) or not container.get("name"):
            problems.append(f"spec.containers[{index}].name: Required value")
        elif not container.get("image"):
            problems.append(f"spec.containers[{index}].image: Required value")
    if problems:
        text = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
        raise ApiError(
            422,
            "Invalid",
            f'Pod "{name}" is invalid: {text}',
            details={"name": name, "kind": "Pod"},
        )


# -- the application -----------------------------------------------------------------------


@web.middleware
async def _statuses(
    request: web.Request, handler: Callable[[web.Request], Any]
) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except ApiError as error:
        return _json(error.status(), status=error.code)
    except web.HTTPNotFound:
        return _json(_not_found_path().status(), status=404)
    except web.HTTPMethodNotAllowed as error:
        return _json(_method_not_allowed(error.method).status(), status=405)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception as error:
        failure = ApiError(500, "InternalError", f"Internal error occurred: {error!r}")
        return _json(failure.status(), status=500)


async def _expire_history(store: ObjectStore, faults: FaultPlan) -> None:
    loop = asyncio.get_running_loop()
    last = loop.time()
    while True:
        every = faults.watch_expire_every_seconds
        await asyncio.sleep(min(every, 0.5) if every else 0.5)
        now = loop.time()
        if every and now - last >= every:
            store.compact()
            last = now
        elif not every:
            last = now


def build_app(
    store: ObjectStore,
    *,
    faults: FaultPlan | None = None,
    now: Callable[[], float] | None = None,
) -> web.Application:
    """The API server for `store`; `now` gives epoch seconds (the simulated clock) for ages
    and deletion timestamps."""
    server = ApiServer(store, faults=faults, now=now or time.time)
    app = web.Application(middlewares=[_statuses], handler_args={"max_field_size": 65536})
    app[STORE_KEY] = store

    async def version(_: web.Request) -> web.Response:
        return _json(discovery.VERSION)

    async def api(request: web.Request) -> web.Response:
        return _json(discovery.api_versions(request.host))

    async def core_v1(_: web.Request) -> web.Response:
        return _json(discovery.CORE_V1)

    async def apis(_: web.Request) -> web.Response:
        return _json(discovery.api_groups())

    async def coordination(_: web.Request) -> web.Response:
        return _json(discovery.COORDINATION_GROUP)

    async def coordination_v1(_: web.Request) -> web.Response:
        return _json(discovery.COORDINATION_V1)

    async def openapi_root(_: web.Request) -> web.Response:
        return _json(discovery.openapi_v3_root())

    async def openapi_spec(request: web.Request) -> web.Response:
        spec = discovery.openapi_v3_spec(request.match_info["group_version"])
        if spec is None:
            raise _not_found_path()
        return _json(spec)

    async def healthy(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/version", version)
    app.router.add_get("/api", api)
    app.router.add_get("/api/", api)
    app.router.add_get("/api/v1", core_v1)
    app.router.add_get("/api/v1/", core_v1)
    app.router.add_get("/apis", apis)
    app.router.add_get("/apis/", apis)
    app.router.add_get("/apis/coordination.k8s.io", coordination)
    app.router.add_get("/apis/coordination.k8s.io/v1", coordination_v1)
    app.router.add_get("/openapi/v3", openapi_root)
    app.router.add_get("/openapi/v3/{group_version:.+}", openapi_spec)
    for path in ("/healthz", "/livez", "/readyz"):
        app.router.add_get(path, healthy)
    app.router.add_route(
        "*", "/{prefix:(api/v1|apis/coordination.k8s.io/v1)}/{tail:.+}", server.dispatch
    )

    if faults is not None:

        async def start_expiry(app: web.Application) -> Any:
            task = asyncio.get_running_loop().create_task(_expire_history(store, faults))
            yield
            task.cancel()

        app.cleanup_ctx.append(start_expiry)
    return app


async def serve(
    app: web.Application, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, str]:
    """Start `app`; returns the runner (call `await runner.cleanup()`) and the base URL."""
    # cancel a watch handler as soon as its client disconnects, so subscriptions do not pile up
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_port = runner.addresses[0][1]
    return runner, f"http://{host}:{bound_port}"
