"""The simulated Kubernetes API server: the aiohttp Application over an ObjectStore — discovery
and OpenAPI documents, health endpoints, the resource routes, JSON Status bodies for every
error, the fault plan's history expiry, the disruption controller that keeps PodDisruptionBudget
statuses, the Events' TTL — and a helper that serves it on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from agent.sim.faults import HISTORY_COMPACTIONS, FaultPlan
from agent.sim.kube import discovery, openapi, openapi_proto
from agent.sim.kube.api_handlers import (
    ApiHandlers,
    json_response,
    method_not_allowed,
    not_found_path,
    parse_bool,
)
from agent.sim.kube.disruption import DisruptionController
from agent.sim.kube.event_ttl import EventTtl
from agent.sim.kube.namespace_lifecycle import NamespaceController
from agent.sim.kube.store import ApiError, ObjectStore

__all__ = ["STORE_KEY", "build_app", "parse_bool", "serve"]

STORE_KEY = web.AppKey("store", ObjectStore)


# -- the application -----------------------------------------------------------------------


@web.middleware
async def _statuses(
    request: web.Request, handler: Callable[[web.Request], Any]
) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except ApiError as error:
        return json_response(error.status(), status=error.code)
    except web.HTTPNotFound:
        return json_response(not_found_path().status(), status=404)
    except web.HTTPMethodNotAllowed as error:
        return json_response(method_not_allowed(error.method).status(), status=405)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception as error:
        # clients break on a plain-text 500: even a bug answers with a Status body
        failure = ApiError(500, "InternalError", f"Internal error occurred: {error!r}")
        return json_response(failure.status(), status=500)


async def _expire_history(store: ObjectStore, faults: FaultPlan) -> None:
    loop = asyncio.get_running_loop()
    last = loop.time()
    while True:
        every = faults.watch_expire_every_seconds
        await asyncio.sleep(min(every, 0.5) if every else 0.5)
        now = loop.time()
        if every and now - last >= every:
            store.compact()
            faults.note(HISTORY_COMPACTIONS)
            last = now
        elif not every:
            last = now


# The User-Agent of the simulated world's own clients (the Ray autoscaler stand-in): the cluster's
# machinery, not a client under test, so request listeners are not told of its requests.
WORLD_USER_AGENT = "ray-ack-scaler-sim-world"


def _request_log(listeners: list[Callable[[str, str], None]]) -> Any:
    """Tell each listener (method, path with query) of every request but the simulated world's
    own, before it is handled: what a client actually asks of the API (tests derive RBAC rules
    from it)."""

    @web.middleware
    async def log_request(
        request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        if request.headers.get("User-Agent") != WORLD_USER_AGENT:
            for listener in listeners:
                listener(request.method, request.path_qs)
        response: web.StreamResponse = await handler(request)
        return response

    return log_request


def build_app(
    store: ObjectStore,
    *,
    faults: FaultPlan | None = None,
    now: Callable[[], float] | None = None,
    request_listeners: list[Callable[[str, str], None]] | None = None,
) -> web.Application:
    """The API server for `store`; `now` gives epoch seconds (the simulated clock) for ages
    and deletion timestamps; `request_listeners` (read at each request, so they may be added
    later) hear (method, path) of every request."""
    server = ApiHandlers(store, faults=faults, now=now or time.time)
    middlewares: list[Any] = [_statuses]
    if request_listeners is not None:
        middlewares.insert(0, _request_log(request_listeners))
    app = web.Application(middlewares=middlewares, handler_args={"max_field_size": 65536})
    app[STORE_KEY] = store

    _add_discovery(app)
    app.router.add_route(
        "*",
        "/{prefix:(api/v1|apis/coordination.k8s.io/v1|apis/policy/v1|apis/ray.io/v1)}/{tail:.+}",
        server.dispatch,
    )
    app.cleanup_ctx.append(_background(DisruptionController(store, now=now or time.time).run))
    app.cleanup_ctx.append(_background(NamespaceController(store, now=now or time.time).run))
    app.cleanup_ctx.append(_background(EventTtl(store, now=now or time.time).run))

    if faults is not None:
        app.cleanup_ctx.append(_background(lambda: _expire_history(store, faults)))
    return app


# Discovery documents that do not depend on the request.
_DOCUMENTS: dict[str, Callable[[], Any]] = {
    "/version": lambda: discovery.VERSION,
    "/api/v1": lambda: discovery.CORE_V1,
    "/apis": discovery.api_groups,
    "/apis/coordination.k8s.io": lambda: discovery.COORDINATION_GROUP,
    "/apis/coordination.k8s.io/v1": lambda: discovery.COORDINATION_V1,
    "/apis/policy": lambda: discovery.POLICY_GROUP,
    "/apis/policy/v1": lambda: discovery.POLICY_V1,
    "/apis/ray.io": lambda: discovery.RAY_GROUP,
    "/apis/ray.io/v1": lambda: discovery.RAY_V1,
    "/openapi/v3": openapi.openapi_v3_root,
}


def _add_discovery(app: web.Application) -> None:
    """Version, discovery and OpenAPI documents, and the health endpoints."""

    def document(make: Callable[[], Any]) -> Callable[[web.Request], Any]:
        async def handler(_: web.Request) -> web.Response:
            return json_response(make())

        return handler

    async def api(request: web.Request) -> web.Response:
        return json_response(discovery.api_versions(request.host))

    async def openapi_spec(request: web.Request) -> web.Response:
        spec = openapi.openapi_v3(request.match_info["group_version"])
        if spec is None:
            raise not_found_path()
        return json_response(spec)

    v2_document = openapi.openapi_v2()
    v2_protobuf = openapi_proto.document_message(v2_document)

    async def openapi_v2(request: web.Request) -> web.Response:
        accept = request.headers.get("Accept", "")
        if any(media in accept for media in openapi.PROTOBUF_V2_ACCEPTED):  # kubectl's only form
            return web.Response(body=v2_protobuf, content_type=openapi.PROTOBUF_V2)
        if not openapi.accepts_json(accept):
            failure = ApiError(406, "NotAcceptable", f"no served encoding matches {accept!r}")
            return json_response(failure.status(), status=406)
        return json_response(v2_document)

    async def healthy(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    # every one answers with a trailing slash too, as kube-apiserver's do (kr8s asks /version/)
    for path, make in _DOCUMENTS.items():
        app.router.add_get(path, document(make))
        app.router.add_get(path + "/", document(make))
    app.router.add_get("/api", api)
    app.router.add_get("/api/", api)
    app.router.add_get("/openapi/v3/{group_version:.+}", openapi_spec)
    app.router.add_get("/openapi/v2", openapi_v2)
    for path in ("/healthz", "/livez", "/readyz"):
        app.router.add_get(path, healthy)
        app.router.add_get(path + "/", healthy)


def _background(run: Callable[[], Any]) -> Callable[[web.Application], Any]:
    """A cleanup context running `run()` as a task for the application's lifetime."""

    async def context(app: web.Application) -> Any:
        task = asyncio.get_running_loop().create_task(run())
        yield
        task.cancel()
        # awaited, so the server's stop leaves no task behind still cancelling
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context


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
