"""ACS3-HMAC-SHA256 verification: the gateway check in front of every emulated Alibaba Cloud API.

Rebuilds the canonical request exactly as alibabacloud-tea-openapi (`Utils.get_authorization`)
builds it: METHOD, the path as sent (already percent-encoded by the SDK), the query sorted by key
with values `quote(v, safe='~')`, every header named in SignedHeaders as `name:value` (values
stripped, repeated headers sorted and comma-joined), the SignedHeaders list, and the hex SHA-256
of the body. Also owns the JSON error replies the gateway sends, so every emulator refuses alike.

FC 3.0 HTTP triggers with signature authentication use the same algorithm, but the documented
caller ("Configure signature authentication for HTTP triggers", help.aliyun.com
functioncompute/fc/user-guide/configure-signature-authentication-for-http-triggers) signs only
its `x-acs-date` (and, with STS, `x-acs-security-token`) header and passes an empty string as the
hashed payload: `verify(..., signed_body=False)` checks exactly that form.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid
from calendar import timegm
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from time import strptime
from urllib.parse import quote

from aiohttp import web

from agent.sim.cloud.cloud_model import CloudError
from agent.sim.cloud.credentials import KeyRing

ALGORITHM = "ACS3-HMAC-SHA256"
MAX_CLOCK_SKEW_SECONDS = 15 * 60
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()

# Codes and statuses as the POP gateway returns them: InvalidAccessKeyId.NotFound is a 404 and
# InvalidTimeStamp.Expired a 400 in the SDK errors users report. SignatureDoesNotMatch is sent as
# 403 (the status the issue asks for; not verified against the live gateway).
SIGNATURE_MISMATCH_STATUS = 403


def signature_mismatch(detail: str) -> CloudError:
    return CloudError(
        SIGNATURE_MISMATCH_STATUS,
        "SignatureDoesNotMatch",
        f"Specified signature is not matched with our calculation. {detail}".strip(),
    )


@dataclass(frozen=True)
class SignedRequest:
    """What the verifier needs from one HTTP request, independent of the server framework."""

    method: str
    raw_path: str  # as on the wire: percent-encoded, without the query
    query: Sequence[tuple[str, str]]  # decoded pairs, in wire order
    headers: Mapping[str, Sequence[str]]  # lower-case name → every value received
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


@dataclass(frozen=True)
class Authorization:
    access_key_id: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str | None) -> Authorization:
    """`ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=a;b,Signature=hex`."""
    if not value:
        raise CloudError(
            400, "MissingAuthorization", "Authorization header is mandatory for this action."
        )
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise CloudError(
            400,
            "InvalidSignatureMethod",
            f"Specified signature method {algorithm!r} is not supported.",
        )
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if sep:
            fields[key] = val
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if not fields.get(k)]
    if missing:
        raise CloudError(400, "IncompleteSignature", f"Authorization lacks {', '.join(missing)}.")
    return Authorization(
        access_key_id=fields["Credential"],
        signed_headers=tuple(fields["SignedHeaders"].split(";")),
        signature=fields["Signature"].lower(),
    )


def canonical_query(query: Sequence[tuple[str, str]]) -> str:
    # The SDK signs a dict (one value per key, keys unencoded); the last value wins the same way.
    merged = dict(query)
    return "&".join(f"{k}={quote(merged[k], safe='~')}" for k in sorted(merged))


def canonical_headers(headers: Mapping[str, Sequence[str]], signed: Sequence[str]) -> str:
    lines = []
    for name in signed:
        values = headers.get(name)
        if values is None:
            raise signature_mismatch(f"Signed header {name!r} is missing from the request.")
        lines.append(f"{name}:{','.join(sorted(v.strip() for v in values))}\n")
    return "".join(lines)


def canonical_request(req: SignedRequest, auth: Authorization, payload_sha256: str) -> str:
    return "\n".join(
        [
            req.method.upper(),
            req.raw_path or "/",
            canonical_query(req.query),
            canonical_headers(req.headers, auth.signed_headers),
            ";".join(auth.signed_headers),
            payload_sha256,
        ]
    )


def compute_signature(secret: str, canonical: str) -> str:
    string_to_sign = f"{ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    return hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def parse_acs_date(value: str | None, *, fractional_seconds: bool = False) -> float:
    """`x-acs-date` as epoch seconds. The APIs take ISO 8601 `yyyy-MM-ddTHH:mm:ssZ`; the HTTP
    trigger's documented Node.js caller sends `Date.toISOString()`, which adds milliseconds."""
    if not value:
        raise CloudError(400, "MissingParameter", "x-acs-date is mandatory for this action.")
    if fractional_seconds and "." in value and value.endswith("Z"):
        whole, _, fraction = value[:-1].partition(".")
        if fraction.isdigit():
            value = whole + "Z"
    try:
        return float(timegm(strptime(value, "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        raise CloudError(
            400,
            "InvalidTimeStamp.Format",
            f"Specified time stamp or date value {value!r} is not well formatted.",
        ) from None


@dataclass(frozen=True)
class Caller:
    """Who a verified request came from."""

    access_key_id: str
    security_token: str | None


class Acs3Verifier:
    """Checks signatures against a key ring, on the emulator's clock, refusing replayed nonces."""

    def __init__(self, keys: KeyRing, *, now: Callable[[], float]) -> None:
        self._keys = keys
        self._now = now
        self._nonces: dict[str, float] = {}

    def verify(self, req: SignedRequest, *, signed_body: bool = True) -> Caller:
        """The caller of a correctly signed request; raises CloudError otherwise.

        `signed_body=False` is the FC 3.0 HTTP trigger's documented form: the hashed payload is
        the empty string. Whether the trigger gateway would also accept a body hash is not
        documented, so only the documented form passes here (the stricter model).
        """
        auth = parse_authorization(req.header("authorization"))
        if any(name != name.lower() or not name for name in auth.signed_headers):
            raise signature_mismatch("SignedHeaders must be lower-case names.")
        now = self._now()
        token = req.header("x-acs-security-token")
        secret = self._keys.secret_for(auth.access_key_id, token, now=now)
        sent = parse_acs_date(req.header("x-acs-date"), fractional_seconds=not signed_body)
        if abs(now - sent) > MAX_CLOCK_SKEW_SECONDS:
            raise CloudError(
                400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
            )
        payload = ""
        if signed_body:
            # The signature covers the declared hash; the declared hash must cover the body.
            payload = (req.header("x-acs-content-sha256") or "").lower()
            if payload != hashlib.sha256(req.body).hexdigest():
                raise signature_mismatch(
                    "The x-acs-content-sha256 header does not match the request body."
                )
        expected = compute_signature(secret, canonical_request(req, auth, payload))
        if not hmac.compare_digest(expected, auth.signature):
            raise signature_mismatch("")
        self._check_nonce(req.header("x-acs-signature-nonce"), now)
        return Caller(access_key_id=auth.access_key_id, security_token=token)

    def _check_nonce(self, nonce: str | None, now: float) -> None:
        if not nonce:
            return
        horizon = now - 2 * MAX_CLOCK_SKEW_SECONDS
        if len(self._nonces) > 10_000:
            self._nonces = {n: t for n, t in self._nonces.items() if t >= horizon}
        seen = self._nonces.get(nonce)
        if seen is not None and seen >= horizon:
            raise CloudError(
                400, "SignatureNonceUsed", "Specified signature nonce was used already."
            )
        self._nonces[nonce] = now


async def signed_request_from(request: web.Request) -> SignedRequest:
    """Read an aiohttp request (body included) into the verifier's framework-free shape."""
    body = await request.read()
    headers: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        headers.setdefault(name.lower(), []).append(value)
    return SignedRequest(
        method=request.method,
        raw_path=request.rel_url.raw_path,
        query=list(request.rel_url.query.items()),
        headers=headers,
        body=body,
    )


def new_request_id() -> str:
    return str(uuid.uuid4()).upper()


def new_fc3_request_id() -> str:
    """A request id in FC 3.0's form, as its Error struct example shows it
    (`1-64e70cf1-5cbef92ea8fc8c42899cf5d1`: version, hex epoch seconds, 24 hex digits)."""
    return f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"


def error_response(
    err: CloudError, *, request_id: str, host_id: str = "", fc_style: bool = False
) -> web.Response:
    """The JSON refusal body: Code/Message/RequestId, plus errorCode/errorMessage for FC."""
    body: dict[str, str] = {"Code": err.code, "Message": err.message, "RequestId": request_id}
    if host_id:
        body["HostId"] = host_id
    if fc_style:
        body["errorCode"] = err.code
        body["errorMessage"] = err.message
    return web.Response(
        status=err.status,
        body=json.dumps(body).encode(),
        content_type="application/json",
        headers={"x-acs-request-id": request_id},
    )


FC2_HOST_ID = "fc.aliyuncs.com"


def fc_error_response(err: CloudError, *, request_id: str, api_version: str) -> web.Response:
    """A Function Compute refusal in the shape of its API version.

    FC 3.0's Error struct (api-fc-2023-03-30-struct-error) is `Code`, `Message`, `RequestId`.
    FC 2.0 documents `errorCode`/`errorMessage` (its error-codes page) while the SDK, through
    tea-openapi, reads `Code`/`Message`: FC 2.0 replies carry both.
    """
    if api_version == "3.0":
        reply = error_response(err, request_id=request_id)
    else:
        reply = error_response(err, request_id=request_id, host_id=FC2_HOST_ID, fc_style=True)
    reply.headers["X-Fc-Request-Id"] = request_id
    return reply
