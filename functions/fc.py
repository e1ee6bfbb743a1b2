"""Function Compute entry points: the event handler, the FC 3.0 HTTP-trigger handler and the FC 2.0
WSGI handler. Each turns raw bytes into one decision — `functions.decide` for a decide/v1 request,
`functions.scale_in` for scale-in/v1, chosen by the request's `schema` — and maps every failure to
the contract's error object, so a caller never sees a traceback.

Choices made here:
- Event functions have no status code, so `handler` answers bad input with the error object itself
  (`{"error": {...}}`) instead of raising: a raised exception would reach the caller as FC's
  `errorMessage`/`stackTrace`. A caller tells the two apart by the top-level key (`schema` vs
  `error`).
- The FC 3.0 HTTP-trigger event is assumed to be the documented JSON object (`version`, `rawPath`,
  `headers`, `body`, `isBase64Encoded`, `requestContext.http.method`, `requestContext.requestId`),
  delivered to Python as bytes and answered with `{statusCode, headers, isBase64Encoded, body}`.
  The handler also accepts the event already parsed (a dict), as emulators may pass it.
- A body becomes a request through `functions.readers.read_request`, the reader the CLI uses too:
  the same size limit (`DEFAULT_MAX_BODY_BYTES`, FC's 32 MB synchronous payload limit;
  `DECIDE_MAX_BODY_BYTES` overrides it), checked before any parsing, then UTF-8 only, strict JSON
  and no lone surrogates. 32 MB holds ~50,000 Ray worker pods as the agent sends them (~0.6 KiB
  each); on real FC the platform refuses a larger synchronous call before the function runs.
- A failure of the core itself is a 500 (`handler`: the object itself) with the `InternalError`
  object, its `decisionId` (`functions.errors.incident_id`) and FC's request id; the traceback goes
  to the function's log under the same ids, never to the caller.
- Each decision has its own time limit, `DEFAULT_TIME_LIMIT_SECONDS` (80% of the 30 s timeout
  template.yml and s.yaml deploy; `DECIDE_TIME_LIMIT_SECONDS` overrides), narrowed by the request's
  `policy.maxDecisionSeconds`: past it the reply defers what is left (`functions.deadline`), so
  it goes out before FC's timeout would answer instead.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping

from functions import decide, scale_in
from functions.contract import SCALE_IN_SCHEMA
from functions.deadline import DEFAULT_TIME_LIMIT_SECONDS as DEFAULT_TIME_LIMIT_SECONDS
from functions.deadline import Deadline, time_limit_from
from functions.errors import DecisionError, RequestTooLarge, incident_id, internal_error
from functions.readers import (
    MAX_BODY_BYTES,
    body_too_large,
    max_body_bytes_from,
    read_request,
)

# Only the type checker reads typing (annotations are strings): ~10 ms less cold start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_MAX_BODY_BYTES = MAX_BODY_BYTES
# Headers (≤ 8 KB on FC), requestContext and the JSON quoting around the body.
_ENVELOPE_SLACK_BYTES = 64 * 1024

_REASONS = {
    200: "OK",
    400: "Bad Request",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    500: "Internal Server Error",
}
_JSON_HEADERS = {"Content-Type": "application/json"}

_log = logging.getLogger("functions.fc")


class _BadInput(Exception):
    """Input refused before the core sees it; carries the HTTP status and the error object."""

    def __init__(
        self, status: int, error: dict[str, Any], *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(error["error"]["message"])
        self.status = status
        self.error = error
        self.headers = dict(headers or {})


def _invalid(message: str) -> _BadInput:
    return _BadInput(400, {"error": {"code": "InvalidRequest", "message": message, "path": ""}})


def _request_id(context: Any) -> str:
    value = getattr(context, "request_id", None)
    return value if isinstance(value, str) and value else "-"


class DecisionEndpoint:
    """One deployed decision function: size limit, parsing, error mapping and the decision log."""

    __slots__ = ("_log", "max_body_bytes", "time_limit_seconds")

    def __init__(
        self,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        *,
        time_limit_seconds: float = DEFAULT_TIME_LIMIT_SECONDS,
        log: logging.Logger = _log,
    ):
        if max_body_bytes <= 0:
            raise ValueError(f"max_body_bytes must be positive, got {max_body_bytes}")
        self.max_body_bytes = max_body_bytes
        self.time_limit_seconds = time_limit_seconds
        self._log = log

    # ----- the three FC signatures -------------------------------------------------------------

    def handle_event(self, event: bytes | bytearray | memoryview | str, context: Any) -> bytes:
        """FC event invocation: body in, reply or error object out (always JSON bytes)."""
        # Event functions have no status code: the error object speaks for itself.
        _status, text = self._answer(event, _request_id(context))
        return text.encode("utf-8")

    def handle_http(self, event: Any, context: Any) -> dict[str, Any]:
        """FC 3.0 HTTP trigger: the JSON event in, `{statusCode, headers, body}` out."""
        request_id = _request_id(context)
        try:
            return self._handle_http(event, request_id)
        except Exception:
            incident = incident_id(event)
            self._log.exception(
                "HTTP handler failed unexpectedly (decision id %s, request id %s)",
                incident,
                request_id,
            )
            return _http_response(500, _dumps(internal_error(incident, request_id=request_id)), {})

    def _handle_http(self, event: Any, request_id: str) -> dict[str, Any]:
        try:
            envelope = self._http_envelope(event)
            if request_id == "-":
                request_id = _http_request_id(envelope)
            method = _http_method(envelope)
            if method != "POST":
                raise _method_not_allowed(method)
            body = self._http_body(envelope)
        except _BadInput as bad:
            self._log_rejected(request_id, bad.error, 0.0)
            return _http_response(bad.status, _dumps(bad.error), bad.headers)
        status, text = self._answer(body, request_id)
        return _http_response(status, text, {})

    def handle_wsgi(
        self, environ: Mapping[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """FC 2.0 HTTP trigger (WSGI): same answers as the FC 3.0 handler."""
        request_id = _request_id(environ.get("fc.context"))
        try:
            status, text, headers = self._handle_wsgi(environ, request_id)
        except Exception:
            self._log.exception("WSGI handler failed unexpectedly (request id %s)", request_id)
            error = internal_error(incident_id(None), request_id=request_id)
            status, text, headers = 500, _dumps(error), {}
        payload = text.encode("utf-8")
        response_headers = [("Content-Type", "application/json")]
        response_headers += [(name, value) for name, value in headers.items()]
        response_headers.append(("Content-Length", str(len(payload))))
        start_response(f"{status} {_REASONS[status]}", response_headers)
        return [payload]

    def _handle_wsgi(
        self, environ: Mapping[str, Any], request_id: str
    ) -> tuple[int, str, Mapping[str, str]]:
        headers: Mapping[str, str] = {}
        try:
            method = str(environ.get("REQUEST_METHOD", "")).upper()
            if method != "POST":
                raise _method_not_allowed(method)
            body: bytes | str = self._wsgi_body(environ)
        except _BadInput as bad:
            self._log_rejected(request_id, bad.error, 0.0)
            status, text, headers = bad.status, _dumps(bad.error), bad.headers
        else:
            status, text = self._answer(body, request_id)
        return status, text, headers

    # ----- shared core: bytes → decide → (status, JSON text) -----------------------------------

    def _answer(self, raw: object, request_id: str) -> tuple[int, str]:
        started = time.perf_counter()
        deadline = Deadline(self.time_limit_seconds, clock=time.perf_counter, started=started)
        try:
            request = self._parse(raw)
            if request.get("schema") == SCALE_IN_SCHEMA:
                reply = scale_in(request, deadline=deadline)
                line = {
                    "event": "scale-in-decision",
                    "requestId": request_id,
                    "decisionId": reply.get("decisionId"),
                    "nodes": len(request.get("nodes") or ()),
                    "remove": len(reply.get("remove") or ()),
                    "deferred": reply["summary"].get("deferredNodes", 0),
                }
            else:
                # Anything else is decide/v1's to accept or refuse (an unknown schema included).
                reply = decide(request, deadline=deadline)
                line = {
                    "event": "decision",
                    "requestId": request_id,
                    "decisionId": reply.get("decisionId"),
                    "pods": len(request.get("pods") or ()),
                    "actions": len(reply.get("actions") or ()),
                    "deferred": reply["summary"].get("deferredPods", 0),
                }
            text = _dumps(reply)
        except _BadInput as bad:
            self._log_rejected(request_id, bad.error, _ms_since(started))
            return bad.status, _dumps(bad.error)
        except DecisionError as err:
            error = err.to_json()
            self._log_rejected(request_id, error, _ms_since(started))
            return (413 if isinstance(err, RequestTooLarge) else 400), _dumps(error)
        except Exception:
            # The traceback goes to the function's log, never to the caller.
            incident = incident_id(raw)
            self._log.exception(
                "decision failed unexpectedly (decision id %s, request id %s)", incident, request_id
            )
            return 500, _dumps(internal_error(incident, request_id=request_id))
        line["ms"] = _ms_since(started)
        self._log.info(_dumps(line))
        return 200, text

    def _parse(self, raw: object) -> dict[str, Any]:
        if not isinstance(raw, (bytes, bytearray, memoryview, str)):
            raise _invalid(f"request body must be bytes, got {type(raw).__name__}")
        # The one reader the CLI shares (DecisionError on refusal, mapped by `_answer`).
        return read_request(raw, max_bytes=self.max_body_bytes)

    def _too_large(self, size: int) -> _BadInput:
        # Refused before reading, in the reader's words (the CLI's too).
        return _BadInput(413, body_too_large(size, self.max_body_bytes).to_json())

    # ----- FC 3.0 event envelope ---------------------------------------------------------------

    def _http_envelope(self, event: Any) -> dict[str, Any]:
        if isinstance(event, Mapping):
            return dict(event)
        if not isinstance(event, (bytes, bytearray, memoryview, str)):
            raise _invalid(f"HTTP trigger event must be JSON, got {type(event).__name__}")
        size = len(event) if isinstance(event, str) else memoryview(event).nbytes
        # base64 grows a body by 4/3; anything beyond that is too large whatever its encoding.
        if size > self.max_body_bytes * 4 // 3 + _ENVELOPE_SLACK_BYTES:
            raise self._too_large(size)
        try:
            envelope = json.loads(event if isinstance(event, str) else bytes(event))
        except (ValueError, RecursionError):
            raise _invalid("HTTP trigger event is not a JSON object") from None
        if not isinstance(envelope, dict):
            raise _invalid("HTTP trigger event is not a JSON object")
        return envelope

    def _http_body(self, envelope: Mapping[str, Any]) -> bytes | str:
        body = envelope.get("body")
        if body is None:
            body = ""
        if not isinstance(body, str):
            raise _invalid("HTTP trigger event field 'body' must be a string")
        if not envelope.get("isBase64Encoded"):
            return body
        # Exact decoded size (padding aside) is known before decoding.
        decoded_size = len(body) * 3 // 4 - body[-2:].count("=")
        if decoded_size > self.max_body_bytes:
            raise self._too_large(decoded_size)
        # Imported here: JSON bodies arrive as text, so most cold starts never need base64.
        import base64

        try:
            return base64.b64decode(body, validate=True)
        except ValueError:  # binascii.Error, and non-ASCII characters in the text
            raise _invalid("request body is marked base64 but is not valid base64") from None

    # ----- FC 2.0 WSGI body --------------------------------------------------------------------

    def _wsgi_body(self, environ: Mapping[str, Any]) -> bytes:
        stream = environ.get("wsgi.input")
        declared = str(environ.get("CONTENT_LENGTH") or "").strip()
        if declared:
            try:
                length = int(declared)
            except ValueError:
                raise _invalid(f"Content-Length {declared!r} is not a number") from None
            if length < 0:
                raise _invalid(f"Content-Length {declared!r} is negative")
            if length > self.max_body_bytes:
                raise self._too_large(length)
            return bytes(stream.read(length)) if stream is not None and length else b""
        if stream is None:
            return b""
        # No length (chunked): read one byte past the limit to know whether it was exceeded.
        data = bytes(stream.read(self.max_body_bytes + 1))
        if len(data) > self.max_body_bytes:
            raise self._too_large(len(data))
        return data

    # ----- logging -----------------------------------------------------------------------------

    def _log_rejected(self, request_id: str, error: Mapping[str, Any], ms: float) -> None:
        detail = error.get("error", {})
        self._log.info(
            _dumps(
                {
                    "event": "decision-rejected",
                    "requestId": request_id,
                    "code": detail.get("code"),
                    "path": detail.get("path"),
                    "ms": ms,
                }
            )
        )


def _http_method(envelope: Mapping[str, Any]) -> str:
    context = envelope.get("requestContext")
    http = context.get("http") if isinstance(context, Mapping) else None
    method = http.get("method") if isinstance(http, Mapping) else None
    if not isinstance(method, str) or not method:
        raise _invalid("not an HTTP trigger event: requestContext.http.method is missing")
    return method.upper()


def _http_request_id(envelope: Mapping[str, Any]) -> str:
    context = envelope.get("requestContext")
    value = context.get("requestId") if isinstance(context, Mapping) else None
    return value if isinstance(value, str) and value else "-"


def _method_not_allowed(method: str) -> _BadInput:
    error = {
        "error": {
            "code": "MethodNotAllowed",
            "message": f"method {method or '(none)'} not allowed; POST a decide/v1 request",
            "path": "",
        }
    }
    return _BadInput(405, error, headers={"Allow": "POST"})


def _http_response(status: int, body: str, headers: Mapping[str, str]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {**_JSON_HEADERS, **headers},
        "isBase64Encoded": False,
        "body": body,
    }


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)


# The deployed instance: configured once per FC instance, at cold start.
_ENDPOINT = DecisionEndpoint(
    max_body_bytes_from(os.environ), time_limit_seconds=time_limit_from(os.environ)
)


def handler(event: bytes, context: Any) -> bytes:
    """FC event handler (deployed as `index.handler`: functions/fc_index.py)."""
    return _ENDPOINT.handle_event(event, context)


def http_handler(event: Any, context: Any) -> dict[str, Any]:
    """FC 3.0 HTTP-trigger handler: 200 reply, 400 bad input, 405 non-POST, 413 too large."""
    return _ENDPOINT.handle_http(event, context)


def wsgi_handler(environ: Mapping[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """FC 2.0 HTTP-trigger handler (WSGI), same semantics as `http_handler`."""
    return _ENDPOINT.handle_wsgi(environ, start_response)
