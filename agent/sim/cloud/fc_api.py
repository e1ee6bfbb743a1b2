"""The Function Compute emulator: FC 2.0 InvokeFunction plus an HTTP trigger, hosting one function.

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
import concurrent.futures
import contextlib
import hashlib
import hmac
import json
import os
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from typing import Any, Literal
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
from agent.sim.cloud.credentials import KeyRing, StsCredential
from agent.sim.faults import FaultPlan

Handler = Callable[[bytes, Any], Any]
HOST_ID = "fc.aliyuncs.com"
_STS_REFRESH_SECONDS = 300.0
UNHANDLED = "UnhandledInvocationError"
# FC refuses synchronous payloads over 32 MB before the function sees them ("EntityTooLarge:
# payload size exceeds maximum allowed size"); aiohttp's own default limit is only 1 MiB.
SYNC_PAYLOAD_LIMIT_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class FcCredentials:
    access_key_id: str
    access_key_secret: str
    security_token: str


@dataclass(frozen=True)
class FcFunctionMeta:
    name: str
    handler: str
    memory: int
    timeout: int


@dataclass(frozen=True)
class FcServiceMeta:
    name: str
    qualifier: str = "LATEST"
    version_id: str = ""
    log_project: str = ""
    log_store: str = ""


@dataclass(frozen=True)
class FcContext:
    """What the FC Python runtime hands a handler as `context`."""

    request_id: str
    credentials: FcCredentials
    function: FcFunctionMeta
    service: FcServiceMeta
    region: str
    account_id: str


@dataclass(frozen=True)
class FcSettings:
    """The deployed function's configuration and the emulator's timing knobs."""

    region: str = "cn-hangzhou"
    account_id: str = "1234567890123456"
    handler: str = "index.handler"
    memory_mb: int = 512
    timeout_seconds: int = 60
    # An instance is reclaimed after this much idle time; the next call pays fc_cold_start_seconds.
    cold_after_idle_seconds: float = 300.0
    # How long a `fc_timeout_ratio` fault holds the reply (ended early when the app shuts down).
    hang_seconds: float = 60.0
    http_auth: Literal["anonymous", "function"] = "anonymous"


@dataclass(frozen=True)
class InvocationRecord:
    request_id: str
    kind: Literal["sync", "async", "http"]
    cold: bool
    status: int
    error_type: str | None
    started: float
    duration_seconds: float


@dataclass
class _FcState:
    invocations: list[InvocationRecord] = field(default_factory=list)
    last_invoked: float | None = None
    credentials: StsCredential | None = None
    background: set[asyncio.Task[None]] = field(default_factory=set)
    closing: asyncio.Event = field(default_factory=asyncio.Event)


FC_STATE = web.AppKey("fc_state", _FcState)


def invocations_of(app: web.Application) -> list[InvocationRecord]:
    """Every invocation the function ran (sync, async and HTTP trigger), oldest first."""
    return app[FC_STATE].invocations


async def settle_async_invocations(app: web.Application) -> None:
    """Wait for every Async invocation accepted so far to finish running."""
    await asyncio.gather(*app[FC_STATE].background, return_exceptions=True)


@dataclass(frozen=True)
class _Outcome:
    body: bytes
    error_type: str | None


_RUNTIME_DIRS = (os.path.dirname(asyncio.__file__), os.path.dirname(concurrent.futures.__file__))


def _unhandled_body(exc: BaseException) -> bytes:
    # Only the function's own frames, as FC shows them: not the emulator's or the thread pool's.
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if f.filename != __file__ and not f.filename.startswith(_RUNTIME_DIRS)
    ]
    return json.dumps(
        {
            "errorMessage": str(exc),
            "errorType": type(exc).__name__,
            "stackTrace": [
                [f'File "{f.filename}"', f"line {f.lineno}", f"in {f.name}", f.line or ""]
                for f in frames
            ],
        }
    ).encode()


def _as_bytes(result: Any) -> bytes:
    # The Python runtime replies with bytes or str; anything else we JSON-encode for convenience.
    if isinstance(result, bytes | bytearray):
        return bytes(result)
    if isinstance(result, str):
        return result.encode()
    if result is None:
        return b""
    return json.dumps(result).encode()


def _fc_error(status: int, code: str, message: str, request_id: str) -> web.Response:
    return error_response(
        CloudError(status, code, message), request_id=request_id, host_id=HOST_ID, fc_style=True
    )


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
    verifier = Acs3Verifier(ring, now=wall_clock)
    state = _FcState()
    function_meta = FcFunctionMeta(function, cfg.handler, cfg.memory_mb, cfg.timeout_seconds)

    def resolve(
        service_name: str, function_name: str, qualifier: str | None, request_id: str
    ) -> web.Response | None:
        name, _, alias = service_name.partition(".")
        if name != service:
            return _fc_error(404, "ServiceNotFound", f"service '{name}' does not exist", request_id)
        if function_name != function:
            return _fc_error(
                404, "FunctionNotFound", f"function '{function_name}' does not exist", request_id
            )
        if (qualifier or alias) not in ("", "LATEST"):
            return _fc_error(
                404, "AliasNotFound", f"alias '{qualifier or alias}' does not exist", request_id
            )
        return None

    async def before_run(request_id: str) -> tuple[bool, web.Response | None]:
        """Apply faults and the cold start; returns (cold, refusal)."""
        if faults is not None:
            if faults.fc_latency_seconds > 0:
                await asyncio.sleep(faults.fc_latency_seconds)
            if faults.roll(faults.fc_timeout_ratio):
                # Hold the reply past the client's read timeout; release on shutdown.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(state.closing.wait(), cfg.hang_seconds)
                return False, _fc_error(
                    504, "Timeout", "the invocation timed out in the service", request_id
                )
            if faults.roll(faults.fc_error_ratio):
                return False, _fc_error(
                    503, "ServiceUnavailable", "The service is temporarily unavailable.", request_id
                )
        t = now()
        cold = state.last_invoked is None or t - state.last_invoked >= cfg.cold_after_idle_seconds
        state.last_invoked = t
        stale = (
            state.credentials is None
            or state.credentials.expiration - wall_clock() < _STS_REFRESH_SECONDS
        )
        if cold or stale:
            # A new instance (or an old token near expiry): fresh STS credentials, as FC assumes
            # the service role per instance and refreshes the token before it lapses.
            state.credentials = ring.issue(now=wall_clock())
        if cold and faults is not None and faults.fc_cold_start_seconds > 0:
            await asyncio.sleep(faults.fc_cold_start_seconds)
        return cold, None

    def context_for(request_id: str, qualifier: str) -> FcContext:
        cred = state.credentials or ring.issue(now=wall_clock())
        return FcContext(
            request_id=request_id,
            credentials=FcCredentials(
                cred.access_key_id, cred.access_key_secret, cred.security_token
            ),
            function=function_meta,
            service=FcServiceMeta(service, qualifier=qualifier or "LATEST"),
            region=cfg.region,
            account_id=cfg.account_id,
        )

    async def run(fn: Handler, event: bytes, ctx: FcContext) -> _Outcome:
        try:
            result = await asyncio.wait_for(asyncio.to_thread(fn, event, ctx), cfg.timeout_seconds)
        except asyncio.TimeoutError:
            message = f"Function timed out after {cfg.timeout_seconds} seconds"
            return _Outcome(json.dumps({"errorMessage": message}).encode(), UNHANDLED)
        except Exception as exc:  # the runtime catches everything the handler raises
            return _Outcome(_unhandled_body(exc), UNHANDLED)
        return _Outcome(_as_bytes(result), None)

    def record(
        request_id: str,
        kind: Literal["sync", "async", "http"],
        *,
        cold: bool,
        status: int,
        error_type: str | None,
        started: float,
    ) -> None:
        state.invocations.append(
            InvocationRecord(
                request_id, kind, cold, status, error_type, started, time.monotonic() - started
            )
        )

    async def invoke(request: web.Request) -> web.Response:
        request_id = new_request_id()
        if (request.content_length or 0) > SYNC_PAYLOAD_LIMIT_BYTES:
            too_large = CloudError(
                413, "EntityTooLarge", "payload size exceeds maximum allowed size"
            )
            return error_response(too_large, request_id=request_id, host_id=HOST_ID, fc_style=True)
        try:
            verifier.verify(await signed_request_from(request))
        except CloudError as err:
            return error_response(err, request_id=request_id, host_id=HOST_ID, fc_style=True)
        qualifier = request.query.get("qualifier", "")
        refusal = resolve(
            request.match_info["service"], request.match_info["function"], qualifier, request_id
        )
        if refusal is not None:
            return refusal
        started = time.monotonic()
        cold, refusal = await before_run(request_id)
        if refusal is not None:
            return refusal
        event = await request.read()
        ctx = context_for(request_id, qualifier)
        headers = {"X-Fc-Request-Id": request_id, "X-Fc-Invocation-Service-Version": "LATEST"}
        if request.headers.get("X-Fc-Invocation-Type", "Sync").strip('"') == "Async":

            async def run_async() -> None:
                outcome = await run(handler, event, ctx)
                record(
                    request_id,
                    "async",
                    cold=cold,
                    status=202,
                    error_type=outcome.error_type,
                    started=started,
                )

            task = asyncio.get_running_loop().create_task(run_async())
            state.background.add(task)
            task.add_done_callback(state.background.discard)
            return web.Response(status=202, headers=headers)
        outcome = await run(handler, event, ctx)
        record(
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

    def check_fc_signature(request: web.Request) -> None:
        # The SDK's FC signer leaves the body unsigned (it sends no Content-MD5).
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("FC "):
            raise CloudError(
                403, "AccessDenied", "required HTTP header Authorization was not provided"
            )
        access_key_id, _, signature = auth[3:].partition(":")
        secret = ring.secret_for(
            access_key_id, request.headers.get("x-fc-security-token"), now=wall_clock()
        )
        date = request.headers.get("Date", "")
        try:
            sent = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            raise CloudError(
                403, "AccessDenied", "the Date header is missing or malformed"
            ) from None
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

    async def http_trigger(request: web.Request) -> web.Response:
        request_id = new_request_id()
        body = await request.read()
        if cfg.http_auth == "function":
            try:
                check_fc_signature(request)
            except CloudError as err:
                return error_response(err, request_id=request_id, host_id=HOST_ID, fc_style=True)
        service_q = request.match_info["service"]
        refusal = resolve(service_q, request.match_info["function"], None, request_id)
        if refusal is not None:
            return refusal
        if http_handler is None:
            return _fc_error(
                404, "TriggerNotFound", f"function '{function}' has no HTTP trigger", request_id
            )
        started = time.monotonic()
        cold, refusal = await before_run(request_id)
        if refusal is not None:
            return refusal
        event = json.dumps(
            _http_event(request, body, request_id=request_id, account_id=cfg.account_id, now=now())
        ).encode()
        outcome = await run(
            http_handler, event, context_for(request_id, service_q.partition(".")[2])
        )
        if outcome.error_type:
            record(
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
        record(request_id, "http", cold=cold, status=status, error_type=None, started=started)
        return web.Response(
            status=status, body=reply, headers={**headers, "X-Fc-Request-Id": request_id}
        )

    async def on_shutdown(_app: web.Application) -> None:
        state.closing.set()
        for task in list(state.background):
            task.cancel()
        await asyncio.gather(*state.background, return_exceptions=True)

    app = web.Application(client_max_size=SYNC_PAYLOAD_LIMIT_BYTES)
    app[FC_STATE] = state
    app.on_shutdown.append(on_shutdown)
    app.router.add_post(
        "/2021-04-06/services/{service}/functions/{function}/invocations",
        invoke,
        name="InvokeFunction",
    )
    app.router.add_route("*", "/2016-08-15/proxy/{service}/{function}", http_trigger)
    app.router.add_route("*", "/2016-08-15/proxy/{service}/{function}/{tail:.*}", http_trigger)
    return app


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
