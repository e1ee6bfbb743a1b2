"""The Function Compute emulator: InvokeFunction of both API versions plus the HTTP triggers,
hosting one function.

This module is the HTTP façade of the FC API endpoint: routes, signature checks and FC's replies
for InvokeFunction; `fc_triggers` owns the HTTP triggers and `fc_runtime` hosts the function
(faults, cold starts, credentials, the Python runtime's call and the invocation log).

- FC 2.0 (alibabacloud-fc-open20210406): `POST /2021-04-06/services/{service}/functions/
  {function}/invocations[?qualifier=]`; errors carry `Code`/`Message` and `errorCode`/
  `errorMessage`.
- FC 3.0 (alibabacloud-fc20230330): `POST /2023-03-30/functions/{function}/invocations
  [?qualifier=]` (InvokeFunction API reference, FC 3.0); errors are FC 3.0's Error struct,
  `Code`/`Message`/`RequestId`, and request ids have its `1-<hex>-<hex>` form.
Both SDKs sign through tea-openapi's `do_request` (ACS3-HMAC-SHA256, the SDK sources read), so
both routes verify that, strictly (`acs3`). The handler then runs as the Python runtime runs it:
event bytes in, bytes out; an unhandled exception is a 200 with `X-Fc-Error-Type:
UnhandledInvocationError` and `errorMessage`/`errorType`/`stackTrace` (FC 3.0 Python "Error
handling"; the FC 3.0 page does not state the status, and FC 2.0 documents 200, so 200 here).
The FC 2.0 HTTP trigger (WSGI) is served on this endpoint; the FC 3.0 trigger has a domain of
its own, so `build_fc3_trigger_app` makes it a second app for a port of its own.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from agent.sim.cloud.acs3 import (
    Acs3Verifier,
    fc_error_response,
    new_fc3_request_id,
    new_request_id,
    signed_request_from,
)
from agent.sim.cloud.cloud_model import CloudError
from agent.sim.cloud.credentials import KeyRing
from agent.sim.cloud.fc_runtime import (
    THROTTLED,
    UNHANDLED,
    FcContext,
    FcCredentials,
    FcFunctionMeta,
    FcServiceMeta,
    FcSettings,
    FcState,
    FunctionHost,
    Handler,
    InvocationKind,
    InvocationRecord,
    Outcome,
    Throttled,
)
from agent.sim.cloud.fc_triggers import (
    FC2_PROXY_PREFIX,
    TriggerHandlers,
    WsgiApp,
    check_fc_signature,
    http_trigger_path,
)
from agent.sim.faults import FaultPlan

__all__ = [
    "FC_STATE",
    "SYNC_PAYLOAD_LIMIT_BYTES",
    "UNHANDLED",
    "FcContext",
    "FcCredentials",
    "FcFunctionMeta",
    "FcHandlers",
    "FcServiceMeta",
    "FcSettings",
    "Handler",
    "InvocationRecord",
    "WsgiApp",
    "build_fc3_trigger_app",
    "build_fc_app",
    "check_fc_signature",
    "http_trigger_path",
    "invocations_of",
    "invoke_from_trigger",
    "settle_async_invocations",
]

# FC refuses synchronous payloads over 32 MB before the function sees them: "400 EntityTooLarge,
# payload size exceeds maximum allowed size (%s bytes)" on FC's error-codes page. aiohttp's own
# default request limit is only 1 MiB.
SYNC_PAYLOAD_LIMIT_BYTES = 32 * 1024 * 1024

FC_STATE = web.AppKey("fc_state", FcState)
_TRIGGERS = web.AppKey("fc_triggers", TriggerHandlers)
_HANDLERS: web.AppKey[FcHandlers] = web.AppKey("fc_handlers")


def invocations_of(app: web.Application) -> list[InvocationRecord]:
    """Every invocation the function ran (sync, async and HTTP triggers), oldest first."""
    return app[FC_STATE].invocations


async def invoke_from_trigger(
    app: web.Application, event: bytes, *, kind: InvocationKind
) -> Outcome:
    """One run of the hosted function by a trigger of the service itself (Timer, EventBridge):
    no API call and no signature, as those triggers invoke from inside FC; faults, cold start
    and the role's STS credentials as for any invocation; logged with `kind`."""
    return await app[_HANDLERS].from_trigger(event, kind=kind)


async def settle_async_invocations(app: web.Application) -> None:
    """Wait for every Async invocation accepted so far to finish running."""
    await asyncio.gather(*app[FC_STATE].background, return_exceptions=True)


def build_fc_app(
    handler: Handler,
    *,
    keys: Mapping[str, str] | KeyRing,
    service: str,
    function: str,
    faults: FaultPlan | None = None,
    http_handler: Handler | None = None,
    wsgi_handler: WsgiApp | None = None,
    now: Callable[[], float],
    settings: FcSettings | None = None,
    wall_clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> web.Application:
    """The FC API endpoint hosting `handler` as function `function` (FC 3.0) and as
    `service/function` (FC 2.0), with `wsgi_handler` behind the FC 2.0 HTTP trigger.
    `http_handler` answers the FC 3.0 trigger, served by `build_fc3_trigger_app(app)`.

    `now` is the simulation's clock (idle time, event timestamps); `wall_clock` is what request
    dates and STS expiry are checked against, since the SDKs stamp requests with wall time;
    `sleep` waits out throttled asynchronous invocations' retries (FcSettings.max_concurrency).
    """
    cfg = settings or FcSettings()
    ring = KeyRing.of(keys)
    host = FunctionHost(
        ring=ring,
        service=service,
        function=function,
        settings=cfg,
        faults=faults,
        now=now,
        wall_clock=wall_clock,
        sleep=sleep,
    )
    handlers = FcHandlers(host, handler=handler, ring=ring, wall_clock=wall_clock)
    triggers = TriggerHandlers(
        host,
        http_handler=http_handler,
        wsgi_handler=wsgi_handler,
        function=function,
        ring=ring,
        settings=cfg,
        now=now,
        wall_clock=wall_clock,
    )
    app = web.Application(client_max_size=SYNC_PAYLOAD_LIMIT_BYTES)
    app[FC_STATE] = host.state
    app[_TRIGGERS] = triggers
    app[_HANDLERS] = handlers
    app.on_shutdown.append(handlers.on_shutdown)
    app.router.add_post(
        "/2021-04-06/services/{service}/functions/{function}/invocations",
        handlers.invoke_fc2,
        name="InvokeFunction",
    )
    app.router.add_post(
        "/2023-03-30/functions/{function}/invocations",
        handlers.invoke_fc3,
        name="InvokeFunction3",
    )
    proxy = FC2_PROXY_PREFIX + "/{service}/{function}"
    app.router.add_route("*", proxy, triggers.fc2_proxy)
    app.router.add_route("*", proxy + "/{tail:.*}", triggers.fc2_proxy)
    return app


def build_fc3_trigger_app(fc_app: web.Application) -> web.Application:
    """The FC 3.0 HTTP trigger of the function `fc_app` hosts: every path of its own endpoint,
    as `https://<trigger-id>.<region>.fcapp.run/` is on FC. Shares the function (instance,
    invocation log) with `fc_app`."""
    state = fc_app[FC_STATE]

    async def release_held_calls(_app: web.Application) -> None:
        # A call held by an injected timeout ends as FC's 504 rather than a dropped connection.
        state.closing.set()

    app = web.Application(client_max_size=SYNC_PAYLOAD_LIMIT_BYTES)
    app[FC_STATE] = state
    app.on_shutdown.append(release_held_calls)
    app.router.add_route("*", "/{tail:.*}", fc_app[_TRIGGERS].fc3)
    return app


class FcHandlers:
    """InvokeFunction of one hosted function, FC 2.0 and FC 3.0; `build_fc_app` routes to it.
    Every refusal is the version's JSON error reply."""

    def __init__(
        self,
        host: FunctionHost,
        *,
        handler: Handler,
        ring: KeyRing,
        wall_clock: Callable[[], float],
    ) -> None:
        self._host = host
        self._handler = handler
        self._verifier = Acs3Verifier(ring, now=wall_clock)

    async def invoke_fc2(self, request: web.Request) -> web.Response:
        """POST /2021-04-06/services/{service}/functions/{function}/invocations."""
        request_id = new_request_id()
        qualifier = request.query.get("qualifier", "")
        try:
            await self._admit(request)
            self._host.resolve_fc2(
                request.match_info["service"], request.match_info["function"], qualifier
            )
        except CloudError as err:
            return fc_error_response(err, request_id=request_id, api_version="2.0")
        return await self._invoke(
            request, request_id, qualifier, api_version="2.0", version_header="LATEST"
        )

    async def invoke_fc3(self, request: web.Request) -> web.Response:
        """POST /2023-03-30/functions/{function}/invocations."""
        request_id = new_fc3_request_id()
        qualifier = request.query.get("qualifier", "")
        try:
            await self._admit(request)
            self._host.resolve_fc3(request.match_info["function"], qualifier)
        except CloudError as err:
            return fc_error_response(err, request_id=request_id, api_version="3.0")
        return await self._invoke(request, request_id, qualifier, api_version="3.0")

    async def _admit(self, request: web.Request) -> None:
        """The checks before a run: payload size, then the ACS3 signature."""
        if (request.content_length or 0) > SYNC_PAYLOAD_LIMIT_BYTES:
            raise CloudError(
                400,
                "EntityTooLarge",
                f"payload size exceeds maximum allowed size ({SYNC_PAYLOAD_LIMIT_BYTES} bytes)",
            )
        self._verifier.verify(await signed_request_from(request))

    async def _invoke(
        self,
        request: web.Request,
        request_id: str,
        qualifier: str,
        *,
        api_version: str,
        version_header: str | None = None,
    ) -> web.Response:
        """Sync (reply with the result) or Async (202 at once, run afterwards)."""
        try:
            started = time.monotonic()
            cold = await self._host.start()
        except CloudError as err:
            return fc_error_response(err, request_id=request_id, api_version=api_version)
        event = await request.read()
        ctx = self._host.context(request_id, qualifier)
        headers = {"X-Fc-Request-Id": request_id}
        if version_header:
            headers["X-Fc-Invocation-Service-Version"] = version_header
        if request.headers.get("X-Fc-Invocation-Type", "Sync").strip('"') == "Async":
            self._host.run_in_background(self._handler, event, ctx, cold=cold, started=started)
            return web.Response(status=202, headers=headers)
        outcome = await self._host.run(self._handler, event, ctx)
        self._host.record(
            request_id,
            "sync",
            cold=cold,
            status=200,
            error_type=outcome.error_type,
            started=started,
        )
        headers["X-Fc-Invocation-Duration"] = str(int((time.monotonic() - started) * 1000))
        headers["X-Fc-Max-Memory-Usage"] = "32"
        if outcome.error_type:
            headers["X-Fc-Error-Type"] = outcome.error_type
        if request.headers.get("X-Fc-Log-Type", "").strip('"') == "Tail":
            log = (
                f"FC Invoke Start RequestId: {request_id}\nFC Invoke End RequestId: {request_id}\n"
            )
            headers["X-Fc-Log-Result"] = base64.b64encode(log.encode()).decode()
        return web.Response(status=200, body=outcome.body, headers=headers)

    async def from_trigger(self, event: bytes, *, kind: InvocationKind) -> Outcome:
        """Triggers invoke asynchronously: the run waits for a slot under the function's
        concurrency limit (`FunctionHost.async_slot`), and is billed from when it starts."""
        request_id = new_fc3_request_id()
        try:
            async with self._host.async_slot():
                return await self._run_from_trigger(request_id, event, kind=kind)
        except Throttled as err:
            self._host.record(
                request_id, kind, cold=False, status=429, error_type=THROTTLED,
                started=time.monotonic(),
            )  # fmt: skip
            return Outcome(str(err).encode(), THROTTLED)

    async def _run_from_trigger(
        self, request_id: str, event: bytes, *, kind: InvocationKind
    ) -> Outcome:
        started = time.monotonic()
        try:
            cold = await self._host.start()
        except CloudError as err:
            self._host.record(
                request_id,
                kind,
                cold=False,
                status=err.status,
                error_type=err.code,
                started=started,
            )
            return Outcome(err.message.encode(), err.code)
        outcome = await self._host.run(self._handler, event, self._host.context(request_id, ""))
        self._host.record(
            request_id, kind, cold=cold, status=200, error_type=outcome.error_type, started=started
        )
        return outcome

    async def on_shutdown(self, _app: web.Application) -> None:
        await self._host.close()
