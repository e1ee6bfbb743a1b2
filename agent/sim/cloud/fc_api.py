"""The Function Compute emulator: FC 2.0 InvokeFunction plus an HTTP trigger, hosting one function.

This module is the HTTP façade: routes, signature checks and FC's replies; `fc_runtime` hosts the
function (faults, cold starts, credentials, the Python runtime's call and the invocation log).
InvokeFunction is checked the way alibabacloud-fc-open20210406 signs it (the SDK goes through
tea-openapi's ACS3-HMAC-SHA256 path), then runs the handler as the Python runtime does: event
bytes in, bytes out, in a worker thread, with a context object carrying request id, credentials,
function, service and region. Unhandled exceptions become FC's UnhandledInvocationError reply.
The HTTP trigger (`/2016-08-15/proxy/{service}/{function}/...`) passes an FC 3.0-style JSON event
and accepts `{statusCode, headers, body}`; it is anonymous unless `auth="function"`, in which case
it checks the FC gateway signature (`FC ak:signature`) that the SDK's `invoke_httptrigger` makes.
(That signer reads `content-type` from the caller's header dict case-sensitively: callers must
pass it lower-case, or it signs an empty content type and the real gateway refuses it too.)
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from email.utils import formatdate, parsedate_to_datetime
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from agent.sim.cloud.acs3 import (
    MAX_CLOCK_SKEW_SECONDS,
    Acs3Verifier,
    error_response,
    new_request_id,
    signature_mismatch,
    signed_request_from,
)
from agent.sim.cloud.cloud_model import CloudError
from agent.sim.cloud.credentials import KeyRing
from agent.sim.cloud.fc_runtime import (
    UNHANDLED,
    FcContext,
    FcCredentials,
    FcFunctionMeta,
    FcServiceMeta,
    FcSettings,
    FcState,
    FunctionHost,
    Handler,
    InvocationRecord,
    Outcome,
)
from agent.sim.faults import FaultPlan

__all__ = [
    "FC_STATE",
    "HOST_ID",
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
    "build_fc_app",
    "check_fc_signature",
    "http_trigger_path",
    "invocations_of",
    "settle_async_invocations",
]

HOST_ID = "fc.aliyuncs.com"
# FC refuses synchronous payloads over 32 MB before the function sees them ("EntityTooLarge:
# payload size exceeds maximum allowed size"); aiohttp's own default limit is only 1 MiB.
SYNC_PAYLOAD_LIMIT_BYTES = 32 * 1024 * 1024

FC_STATE = web.AppKey("fc_state", FcState)


def invocations_of(app: web.Application) -> list[InvocationRecord]:
    """Every invocation the function ran (sync, async and HTTP trigger), oldest first."""
    return app[FC_STATE].invocations


async def settle_async_invocations(app: web.Application) -> None:
    """Wait for every Async invocation accepted so far to finish running."""
    await asyncio.gather(*app[FC_STATE].background, return_exceptions=True)


def _fc_error(err: CloudError, request_id: str) -> web.Response:
    return error_response(err, request_id=request_id, host_id=HOST_ID, fc_style=True)


def build_fc_app(
    handler: Handler,
    *,
    keys: Mapping[str, str] | KeyRing,
    service: str,
    function: str,
    faults: FaultPlan | None = None,
    http_handler: Handler | None = None,
    now: Callable[[], float],
    settings: FcSettings | None = None,
    wall_clock: Callable[[], float] = time.time,
) -> web.Application:
    """An aiohttp app hosting `handler` as `service/function` (and `http_handler` behind a trigger).

    `now` is the simulation's clock (idle time, event timestamps); `wall_clock` is what request
    dates and STS expiry are checked against, since the SDKs stamp requests with wall time.
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
    )
    handlers = FcHandlers(
        host,
        handler=handler,
        http_handler=http_handler,
        service=service,
        function=function,
        ring=ring,
        settings=cfg,
        now=now,
        wall_clock=wall_clock,
    )
    app = web.Application(client_max_size=SYNC_PAYLOAD_LIMIT_BYTES)
    app[FC_STATE] = host.state
    app.on_shutdown.append(handlers.on_shutdown)
    app.router.add_post(
        "/2021-04-06/services/{service}/functions/{function}/invocations",
        handlers.invoke,
        name="InvokeFunction",
    )
    app.router.add_route("*", "/2016-08-15/proxy/{service}/{function}", handlers.http_trigger)
    app.router.add_route(
        "*", "/2016-08-15/proxy/{service}/{function}/{tail:.*}", handlers.http_trigger
    )
    return app


class FcHandlers:
    """The routes of one hosted function: InvokeFunction and the HTTP trigger; `build_fc_app`
    wires them into an aiohttp Application. Every refusal is FC's JSON error reply."""

    def __init__(
        self,
        host: FunctionHost,
        *,
        handler: Handler,
        http_handler: Handler | None,
        service: str,
        function: str,
        ring: KeyRing,
        settings: FcSettings,
        now: Callable[[], float],
        wall_clock: Callable[[], float],
    ) -> None:
        self._host = host
        self._handler = handler
        self._http_handler = http_handler
        self._service = service
        self._function = function
        self._ring = ring
        self._settings = settings
        self._now = now
        self._wall_clock = wall_clock
        self._verifier = Acs3Verifier(ring, now=wall_clock)

    def _resolve(self, service_name: str, function_name: str, qualifier: str | None) -> None:
        """Refuse a service, function or alias (`service.alias` or `qualifier`) not deployed."""
        name, _, alias = service_name.partition(".")
        if name != self._service:
            raise CloudError(404, "ServiceNotFound", f"service '{name}' does not exist")
        if function_name != self._function:
            raise CloudError(404, "FunctionNotFound", f"function '{function_name}' does not exist")
        if (qualifier or alias) not in ("", "LATEST"):
            raise CloudError(404, "AliasNotFound", f"alias '{qualifier or alias}' does not exist")

    # -- InvokeFunction ------------------------------------------------------------------

    async def invoke(self, request: web.Request) -> web.Response:
        """POST …/invocations: Sync (reply with the result) or Async (202, run afterwards)."""
        request_id = new_request_id()
        qualifier = request.query.get("qualifier", "")
        try:
            await self._admit_invoke(request, qualifier)
            started = time.monotonic()
            cold = await self._host.start()
        except CloudError as err:
            return _fc_error(err, request_id)
        event = await request.read()
        ctx = self._host.context(request_id, qualifier)
        headers = {"X-Fc-Request-Id": request_id, "X-Fc-Invocation-Service-Version": "LATEST"}
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

    async def _admit_invoke(self, request: web.Request, qualifier: str) -> None:
        """The checks before a run: payload size, the ACS3 signature, the function's name."""
        if (request.content_length or 0) > SYNC_PAYLOAD_LIMIT_BYTES:
            raise CloudError(413, "EntityTooLarge", "payload size exceeds maximum allowed size")
        self._verifier.verify(await signed_request_from(request))
        self._resolve(request.match_info["service"], request.match_info["function"], qualifier)

    # -- the HTTP trigger ----------------------------------------------------------------

    async def http_trigger(self, request: web.Request) -> web.Response:
        """Any method on …/proxy/{service}/{function}/…: an FC 3.0 HTTP event to `http_handler`."""
        request_id = new_request_id()
        body = await request.read()
        service_q = request.match_info["service"]
        try:
            http_handler = self._admit_trigger(request, service_q)
            started = time.monotonic()
            cold = await self._host.start()
        except CloudError as err:
            return _fc_error(err, request_id)
        event = json.dumps(
            _http_event(
                request,
                body,
                request_id=request_id,
                account_id=self._settings.account_id,
                now=self._now(),
            )
        ).encode()
        outcome = await self._host.run(
            http_handler, event, self._host.context(request_id, service_q.partition(".")[2])
        )
        return self._trigger_reply(request_id, outcome, cold=cold, started=started)

    def _admit_trigger(self, request: web.Request, service_q: str) -> Handler:
        """The checks before a run: the FC signature (if required), the name, a trigger."""
        if self._settings.http_auth == "function":
            check_fc_signature(request, self._ring, wall_clock=self._wall_clock)
        self._resolve(service_q, request.match_info["function"], None)
        if self._http_handler is None:
            raise CloudError(
                404, "TriggerNotFound", f"function '{self._function}' has no HTTP trigger"
            )
        return self._http_handler

    def _trigger_reply(
        self, request_id: str, outcome: Outcome, *, cold: bool, started: float
    ) -> web.Response:
        if outcome.error_type:
            self._host.record(
                request_id,
                "http",
                cold=cold,
                status=502,
                error_type=outcome.error_type,
                started=started,
            )
            return web.Response(
                status=502,
                body=outcome.body,
                content_type="application/json",
                headers={"X-Fc-Request-Id": request_id, "X-Fc-Error-Type": outcome.error_type},
            )
        status, headers, reply = _http_reply(outcome.body)
        self._host.record(
            request_id, "http", cold=cold, status=status, error_type=None, started=started
        )
        return web.Response(
            status=status, body=reply, headers={**headers, "X-Fc-Request-Id": request_id}
        )

    async def on_shutdown(self, _app: web.Application) -> None:
        await self._host.close()


def check_fc_signature(
    request: web.Request, ring: KeyRing, *, wall_clock: Callable[[], float]
) -> None:
    """The FC gateway signature (`Authorization: FC ak:signature`) the SDK's HTTP-trigger
    signer makes; raises CloudError. The Date header must be close to `wall_clock()`."""
    # The SDK's FC signer leaves the body unsigned (it sends no Content-MD5).
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("FC "):
        raise CloudError(403, "AccessDenied", "required HTTP header Authorization was not provided")
    access_key_id, _, signature = auth[3:].partition(":")
    secret = ring.secret_for(
        access_key_id, request.headers.get("x-fc-security-token"), now=wall_clock()
    )
    date = request.headers.get("Date", "")
    try:
        sent = parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        raise CloudError(403, "AccessDenied", "the Date header is missing or malformed") from None
    if abs(wall_clock() - sent) > MAX_CLOCK_SKEW_SECONDS:
        raise CloudError(
            403,
            "AccessDenied",
            "the difference between the request time and the server's time is too large",
        )
    fc_headers = sorted(
        (k.lower(), v) for k, v in request.headers.items() if k.lower().startswith("x-fc-")
    )
    canonical_headers = "".join(f"{k}:{v}\n" for k, v in fc_headers)
    resource = unquote(request.rel_url.raw_path) + "\n"
    if request.rel_url.raw_query_string:
        resource += "\n".join(unquote(request.rel_url.raw_query_string).split("&"))
    string_to_sign = "\n".join(
        [
            request.method.upper(),
            request.headers.get("Content-MD5", ""),
            request.headers.get("Content-Type", ""),
            date,
            canonical_headers + resource,
        ]
    )
    expected = base64.b64encode(
        hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).digest()
    ).decode()
    if not hmac.compare_digest(expected, signature):
        raise signature_mismatch("")


def http_trigger_path(service: str, function: str) -> str:
    """The path part of the HTTP trigger URL for `service/function`."""
    return f"/2016-08-15/proxy/{service}/{function}/"


def _http_event(
    request: web.Request, body: bytes, *, request_id: str, account_id: str, now: float
) -> dict[str, Any]:
    """The FC 3.0 HTTP-trigger event (`rawPath`, `headers`, `body`, `isBase64Encoded`, `requestContext`)."""
    try:
        text, is_b64 = body.decode(), False
    except UnicodeDecodeError:
        text, is_b64 = base64.b64encode(body).decode(), True
    prefix = f"/2016-08-15/proxy/{request.match_info['service']}/{request.match_info['function']}"
    raw_path = request.path[len(prefix) :] or "/"
    headers: dict[str, str] = {}
    for k, v in request.headers.items():
        headers[k] = f"{headers[k]},{v}" if k in headers else v
    peer = request.remote or ""
    return {
        "version": "v1",
        "rawPath": raw_path,
        "headers": headers,
        "queryParameters": dict(request.query),
        "body": text,
        "isBase64Encoded": is_b64,
        "requestContext": {
            "accountId": account_id,
            "domainName": request.host,
            "domainPrefix": request.match_info["function"],
            "http": {
                "method": request.method,
                "path": raw_path,
                "protocol": f"HTTP/{request.version.major}.{request.version.minor}",
                "sourceIp": peer,
                "userAgent": request.headers.get("User-Agent", ""),
            },
            "requestId": request_id,
            "time": formatdate(now, usegmt=True),
            "timeEpoch": str(int(now * 1000)),
        },
    }


def _http_reply(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Read `{statusCode, headers, body, isBase64Encoded}`; any other reply is the body itself."""
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict) or "statusCode" not in parsed:
        return 200, {}, raw
    body = parsed.get("body", "")
    if parsed.get("isBase64Encoded"):
        data = base64.b64decode(body or "")
    elif isinstance(body, str):
        data = body.encode()
    else:
        data = json.dumps(body).encode()
    headers = {str(k): str(v) for k, v in (parsed.get("headers") or {}).items()}
    return int(parsed["statusCode"]), headers, data
