"""The Function Compute emulator's HTTP triggers, one per API version, each the way that version
calls a Python function.

- FC 2.0 (`/2016-08-15/proxy/{service}/{function}/...` on the API endpoint): the Python runtime
  calls the HTTP function as WSGI, `handler(environ, start_response)`, with FC's `fc.context` and
  `fc.request_uri` in the environ ("HTTP handlers", FC 2.0 Python guide, doc-detail/56316).
  AuthType FUNCTION checks the FC gateway signature (`Authorization: FC ak:signature`) that the
  FC 2.0 SDK's `invoke_httptrigger` makes; a Content-MD5 the caller signs must be the body's,
  and a replayed signature is refused (`check_fc_signature`).
- FC 3.0 (its own domain, `https://<trigger-id>.<region>.fcapp.run/<path>`, here its own port):
  built-in runtimes get the request as a JSON event — `version`, `rawPath`, `headers` (keys in
  canonical case, repeated values comma-joined), `queryParameters`, `body`, `isBase64Encoded`,
  `requestContext` — and answer `{statusCode, headers, isBase64Encoded, body}` ("Use an HTTP
  trigger to invoke a function", FC 3.0 user guide). authType `function` checks ACS3-HMAC-SHA256
  in the documented caller's form, with a signed Content-MD5 and nonce when sent
  (`acs3.Acs3Verifier.verify_trigger`).
Refusals are each version's JSON error (`acs3.fc_error_response`). A handler that raises answers
502 with `X-Fc-Error-Type` and FC's error body: the status is not documented for triggers, and
a 5xx is what a caller must treat as "no reply".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from agent.sim.cloud.acs3 import (
    MAX_CLOCK_SKEW_SECONDS,
    Acs3Verifier,
    ReplayGuard,
    check_content_md5,
    fc_error_response,
    new_fc3_request_id,
    new_request_id,
    signature_mismatch,
    signed_request_from,
)
from agent.sim.cloud.cloud_model import CloudError
from agent.sim.cloud.credentials import KeyRing
from agent.sim.cloud.fc_runtime import FcSettings, FunctionHost, Handler, Outcome

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

FC2_PROXY_PREFIX = "/2016-08-15/proxy"


def http_trigger_path(service: str, function: str) -> str:
    """The path part of the FC 2.0 HTTP trigger URL for `service/function`."""
    return f"{FC2_PROXY_PREFIX}/{service}/{function}/"


@dataclass(frozen=True)
class TriggerReply:
    """What a trigger call produced: HTTP status, headers and body."""

    status: int
    headers: dict[str, str]
    body: bytes


class TriggerHandlers:
    """The HTTP triggers of one hosted function: `fc2_proxy` (WSGI) and `fc3` (event)."""

    def __init__(
        self,
        host: FunctionHost,
        *,
        http_handler: Handler | None,
        wsgi_handler: WsgiApp | None,
        function: str,
        ring: KeyRing,
        settings: FcSettings,
        now: Callable[[], float],
        wall_clock: Callable[[], float],
    ) -> None:
        self._host = host
        self._http_handler = http_handler
        self._wsgi_handler = wsgi_handler
        self._function = function
        self._ring = ring
        self._settings = settings
        self._now = now
        self._wall_clock = wall_clock
        self._verifier = Acs3Verifier(ring, now=wall_clock)
        self._fc2_replays = ReplayGuard()

    # -- FC 2.0: WSGI behind /2016-08-15/proxy/{service}/{function}/... -------------------------

    async def fc2_proxy(self, request: web.Request) -> web.Response:
        """Any method on …/proxy/{service}/{function}/…: a WSGI call of `wsgi_handler`."""
        request_id = new_request_id()
        body = await request.read()
        service_q = request.match_info["service"]
        try:
            if self._settings.http_auth == "function":
                check_fc_signature(
                    request,
                    body,
                    self._ring,
                    wall_clock=self._wall_clock,
                    replays=self._fc2_replays,
                )
            self._host.resolve_fc2(service_q, request.match_info["function"], None)
            if self._wsgi_handler is None:
                raise CloudError(
                    404, "TriggerNotFound", f"function '{self._function}' has no HTTP trigger"
                )
            app = self._wsgi_handler
            started = time.monotonic()
            cold = await self._host.start()
        except CloudError as err:
            return fc_error_response(err, request_id=request_id, api_version="2.0")
        ctx = self._host.context(request_id, service_q.partition(".")[2])
        environ = wsgi_environ(request, body, context=ctx)
        result, failure = await self._host.call(call_wsgi, app, environ)
        reply = _failed(failure) if failure else result
        return self._finish(request_id, reply, failure, cold=cold, started=started)

    # -- FC 3.0: an event trigger on its own domain -------------------------------------------

    async def fc3(self, request: web.Request) -> web.Response:
        """Any method, any path on the trigger's domain: an FC 3.0 HTTP event to `http_handler`."""
        request_id = new_fc3_request_id()
        try:
            if self._settings.http_auth == "function":
                self._verifier.verify_trigger(await signed_request_from(request))
            if self._http_handler is None:
                raise CloudError(
                    404, "TriggerNotFound", f"function '{self._function}' has no HTTP trigger"
                )
            handler = self._http_handler
            started = time.monotonic()
            cold = await self._host.start()
        except CloudError as err:
            return fc_error_response(err, request_id=request_id, api_version="3.0")
        body = await request.read()
        event = fc3_http_event(
            request,
            body,
            request_id=request_id,
            account_id=self._settings.account_id,
            now=self._now(),
        )
        outcome = await self._host.run(
            handler, json.dumps(event).encode(), self._host.context(request_id, "")
        )
        reply = _failed(outcome) if outcome.error_type else fc3_http_reply(outcome.body)
        return self._finish(
            request_id, reply, outcome if outcome.error_type else None, cold=cold, started=started
        )

    def _finish(
        self,
        request_id: str,
        reply: TriggerReply,
        failure: Outcome | None,
        *,
        cold: bool,
        started: float,
    ) -> web.Response:
        error_type = failure.error_type if failure else None
        self._host.record(
            request_id, "http", cold=cold, status=reply.status, error_type=error_type,
            started=started,
        )  # fmt: skip
        headers = {**reply.headers, "X-Fc-Request-Id": request_id}
        if error_type:
            headers["X-Fc-Error-Type"] = error_type
        return web.Response(status=reply.status, body=reply.body, headers=headers)


def _failed(outcome: Outcome) -> TriggerReply:
    return TriggerReply(502, {"Content-Type": "application/json"}, outcome.body)


# -- FC 2.0: the gateway signature and the WSGI call -------------------------------------------


def check_fc_signature(
    request: web.Request,
    body: bytes,
    ring: KeyRing,
    *,
    wall_clock: Callable[[], float],
    replays: ReplayGuard | None = None,
) -> None:
    """The FC gateway signature (`Authorization: FC ak:signature`) the SDK's HTTP-trigger
    signer makes; raises CloudError. The Date header must be close to `wall_clock()`.

    The string to sign holds the Content-MD5 header (FC "Signature authentication",
    help.aliyun.com/document_detail/53252: the MD5 of the body, empty without the header), which
    the SDK sets with `sign_request_with_content_md5`; when sent it must be the body's (RFC 1864),
    so a tampered body is refused. Its plain `sign_request` sends none and the body is then not
    covered, as on FC. With `replays`, a signature seen within the date's validity window is
    refused: FC 2.0's signature has no nonce, so the stricter reading is that a byte-identical
    signed request is a replay (whether FC's gateway refuses it is not documented).
    """
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
    # Content-MD5 is always in FC's string to sign: when sent, it is signed.
    check_content_md5(request.headers.get("Content-MD5"), body, signed=True)
    if replays is not None and replays.used(signature, wall_clock()):
        raise CloudError(403, "AccessDenied", "the signed request was already used (a replay)")


def wsgi_environ(request: web.Request, body: bytes, *, context: Any) -> dict[str, Any]:
    """The PEP 3333 environ FC 2.0 hands an HTTP function, plus `fc.context`/`fc.request_uri`.
    PATH_INFO is the path after `/2016-08-15/proxy/{service}/{function}`."""
    prefix = f"{FC2_PROXY_PREFIX}/{request.match_info['service']}/{request.match_info['function']}"
    host, _, port = request.host.partition(":")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": request.path[len(prefix) :] or "/",
        "QUERY_STRING": request.rel_url.raw_query_string,
        "CONTENT_TYPE": request.headers.get("Content-Type", ""),
        "CONTENT_LENGTH": str(len(body)),
        "SERVER_NAME": host,
        "SERVER_PORT": port or "80",
        "SERVER_PROTOCOL": f"HTTP/{request.version.major}.{request.version.minor}",
        "REMOTE_ADDR": request.remote or "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": request.scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "fc.context": context,
        "fc.request_uri": str(request.rel_url),
    }
    for name, value in request.headers.items():
        key = "HTTP_" + name.upper().replace("-", "_")
        if key in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
            continue
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def call_wsgi(app: WsgiApp, environ: dict[str, Any]) -> TriggerReply:
    """Call a WSGI app as a server does: status and headers from `start_response`, the body
    from the returned iterable (closed afterwards, as PEP 3333 requires)."""
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None and started:
            raise exc_info[1].with_traceback(exc_info[2])
        started[:] = [(status, headers)]
        return lambda _data: None

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    if not started:
        raise RuntimeError("the WSGI app returned without calling start_response")
    status, headers = started[0]
    return TriggerReply(int(status.split(" ", 1)[0]), dict(headers), body)


# -- FC 3.0: the event and the reply -----------------------------------------------------------


def fc3_http_event(
    request: web.Request, body: bytes, *, request_id: str, account_id: str, now: float
) -> dict[str, Any]:
    """The FC 3.0 HTTP-trigger event for `request`, as the FC 3.0 user guide lays it out."""
    try:
        text, is_b64 = body.decode(), False
    except UnicodeDecodeError:
        text, is_b64 = base64.b64encode(body).decode(), True
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        # FC 3.0 canonicalises header keys (first letter of each word upper-case).
        key = "-".join(part.capitalize() for part in name.split("-"))
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    query: dict[str, str] = {}
    for name, value in request.rel_url.query.items():
        query[name] = f"{query[name]},{value}" if name in query else value
    return {
        "version": "v1",
        "rawPath": request.rel_url.raw_path,
        "headers": headers,
        "queryParameters": query,
        "body": text,
        "isBase64Encoded": is_b64,
        "requestContext": {
            "accountId": account_id,
            "domainName": request.host,
            "domainPrefix": request.host.partition(".")[0],
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": f"HTTP/{request.version.major}.{request.version.minor}",
                "sourceIp": request.remote or "",
                "userAgent": request.headers.get("User-Agent", ""),
            },
            "requestId": request_id,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "timeEpoch": str(int(now * 1000)),
        },
    }


def fc3_http_reply(raw: bytes) -> TriggerReply:
    """Read `{statusCode, headers, body, isBase64Encoded}`; any other reply is the body itself."""
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, Mapping) or "statusCode" not in parsed:
        return TriggerReply(200, {}, raw)
    body = parsed.get("body", "")
    if parsed.get("isBase64Encoded"):
        data = base64.b64decode(body or "")
    elif isinstance(body, str):
        data = body.encode()
    else:
        data = json.dumps(body).encode()
    headers = {str(k): str(v) for k, v in (parsed.get("headers") or {}).items()}
    return TriggerReply(int(parsed["statusCode"]), headers, data)
