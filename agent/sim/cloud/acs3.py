"""ACS3-HMAC-SHA256 verification: the gateway check in front of every emulated Alibaba Cloud API.

Rebuilds the canonical request exactly as alibabacloud-tea-openapi (`Utils.get_authorization`)
builds it: METHOD, the path as sent (already percent-encoded by the SDK), the query sorted by key
with values `quote(v, safe='~')`, every header named in SignedHeaders as `name:value` (values
stripped, repeated headers sorted and comma-joined), the SignedHeaders list, and the hex SHA-256
of the body. Also owns the JSON error replies the gateway sends, so every emulator refuses alike.

What the gateway demands of an API call beyond a matching signature (the V3 signature page,
"V3 request structure and signature", help.aliyun.com/document_detail/2593177: its table of
common headers marks `host`, `x-acs-date`, `x-acs-signature-nonce` and `x-acs-content-sha256`
required, says every common header present except Authorization must be signed, that the nonce
prevents replays and that `x-acs-date` is valid for 15 minutes):
- SignedHeaders includes host, x-acs-content-sha256, x-acs-date and x-acs-signature-nonce, and
  every `x-acs-*` header the request carries; otherwise `IncompleteSignature` (400);
- the nonce is unused: a nonce seen within the date's validity window is `SignatureNonceUsed`;
- `x-acs-content-sha256` is the body's SHA-256, so a tampered body is `SignatureDoesNotMatch`.
The official SDKs sign every header they send (tea-openapi `do_request`), so they pass.

FC 3.0 HTTP triggers with signature authentication use the same algorithm, but the documented
caller ("Configure signature authentication for HTTP triggers", help.aliyun.com
functioncompute/fc/user-guide/configure-signature-authentication-for-http-triggers) signs only
its `x-acs-date` (and, with STS, `x-acs-security-token`) header and passes an empty string as the
hashed payload: `verify_trigger` checks that form, plus what a caller may add and the emulator
then holds it to (see there): a signed `Content-MD5` body digest and a signed nonce.
"""

from __future__ import annotations

import base64
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
NONCE_HEADER = "x-acs-signature-nonce"
# The V3 page's required common headers, each of which must be signed (module docstring).
REQUIRED_SIGNED_HEADERS = ("host", "x-acs-content-sha256", "x-acs-date", NONCE_HEADER)

# Codes and statuses as the POP gateway returns them: InvalidAccessKeyId.NotFound is a 404 and
# InvalidTimeStamp.Expired a 400 in the SDK errors users report. SignatureDoesNotMatch is sent as
# 403 (the status the issue asks for; not verified against the live gateway).
SIGNATURE_MISMATCH_STATUS = 403


def incomplete_signature(detail: str) -> CloudError:
    # IncompleteSignature is the gateway's code for a signature that leaves out what it must
    # cover; the message's first sentence is the gateway's, the rest says what is missing.
    return CloudError(
        400,
        "IncompleteSignature",
        f"The request signature does not conform to Aliyun standards. {detail}".strip(),
    )


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


class ReplayGuard:
    """What a gateway remembers to refuse a replay: each nonce (or signature) it accepted, for
    twice the date's validity window (a date may sit 15 minutes either side of the clock)."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    def used(self, key: str, now: float) -> bool:
        """True when `key` was accepted within the window; otherwise remembers it now."""
        horizon = now - 2 * MAX_CLOCK_SKEW_SECONDS
        if len(self._seen) > 10_000:
            self._seen = {k: t for k, t in self._seen.items() if t >= horizon}
        seen = self._seen.get(key)
        if seen is not None and seen >= horizon:
            return True
        self._seen[key] = now
        return False


class Acs3Verifier:
    """Checks signatures against a key ring, on the emulator's clock, refusing replays."""

    def __init__(self, keys: KeyRing, *, now: Callable[[], float]) -> None:
        self._keys = keys
        self._now = now
        self._replays = ReplayGuard()

    def verify(self, req: SignedRequest) -> Caller:
        """The caller of a correctly signed API request; raises CloudError otherwise."""
        auth = parse_authorization(req.header("authorization"))
        _check_signed_names(req, auth, required=REQUIRED_SIGNED_HEADERS)
        now = self._now()
        token = req.header("x-acs-security-token")
        secret = self._keys.secret_for(auth.access_key_id, token, now=now)
        self._check_date(req.header("x-acs-date"), now, fractional_seconds=False)
        # The signature covers the declared hash; the declared hash must cover the body.
        payload = (req.header("x-acs-content-sha256") or "").lower()
        if payload != hashlib.sha256(req.body).hexdigest():
            raise signature_mismatch(
                "The x-acs-content-sha256 header does not match the request body."
            )
        self._check_signature(req, auth, secret, payload)
        self._check_replay(req.header(NONCE_HEADER) or "", now)
        return Caller(access_key_id=auth.access_key_id, security_token=token)

    def verify_trigger(self, req: SignedRequest) -> Caller:
        """The caller of a correctly signed FC 3.0 HTTP-trigger request; raises CloudError.

        The documented form: x-acs-date (and x-acs-security-token) signed, the empty string as
        the hashed payload. Held to, where the documentation is silent (the stricter reading):
        - every `x-acs-*` header sent is signed, as the V3 rules say of common headers;
        - a `Content-MD5` body digest, when sent, is signed and is the body's (RFC 1864,
          base64 of the MD5): FC's own signature covers the body through Content-MD5 (FC
          "Signature authentication", help.aliyun.com/document_detail/53252, CONTENT-MD5),
          and a tampered body then fails. Without one the body is not covered, as on FC;
        - `x-acs-content-sha256` is refused: whether the trigger's gateway would read it as the
          hashed payload (the V3 rule) or keep the documented empty one is not documented, so
          a signature that passes only one reading is refused;
        - a replay within the validity window is refused: by its signed nonce, or, without one,
          by the signature itself (a byte-identical signed request is a replay).
        """
        auth = parse_authorization(req.header("authorization"))
        _check_signed_names(req, auth, required=("x-acs-date",))
        if req.header("x-acs-content-sha256") is not None:
            raise signature_mismatch(
                "x-acs-content-sha256 is not part of the documented HTTP-trigger signature "
                "(whose hashed payload is empty); sign a Content-MD5 body digest instead."
            )
        now = self._now()
        token = req.header("x-acs-security-token")
        secret = self._keys.secret_for(auth.access_key_id, token, now=now)
        self._check_date(req.header("x-acs-date"), now, fractional_seconds=True)
        self._check_signature(req, auth, secret, "")
        check_content_md5(
            req.header("content-md5"), req.body, signed="content-md5" in auth.signed_headers
        )
        self._check_replay(req.header(NONCE_HEADER) or auth.signature, now)
        return Caller(access_key_id=auth.access_key_id, security_token=token)

    @staticmethod
    def _check_date(value: str | None, now: float, *, fractional_seconds: bool) -> None:
        sent = parse_acs_date(value, fractional_seconds=fractional_seconds)
        if abs(now - sent) > MAX_CLOCK_SKEW_SECONDS:
            raise CloudError(
                400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
            )

    @staticmethod
    def _check_signature(
        req: SignedRequest, auth: Authorization, secret: str, payload: str
    ) -> None:
        expected = compute_signature(secret, canonical_request(req, auth, payload))
        if not hmac.compare_digest(expected, auth.signature):
            raise signature_mismatch("")

    def _check_replay(self, key: str, now: float) -> None:
        if self._replays.used(key, now):
            raise CloudError(
                400, "SignatureNonceUsed", "Specified signature nonce was used already."
            )


def _check_signed_names(
    req: SignedRequest, auth: Authorization, *, required: Sequence[str]
) -> None:
    """SignedHeaders are lower-case names, include `required` and every `x-acs-*` header sent."""
    if any(name != name.lower() or not name for name in auth.signed_headers):
        raise signature_mismatch("SignedHeaders must be lower-case names.")
    signed = set(auth.signed_headers)
    unsigned = sorted(
        {*required, *(name for name in req.headers if name.startswith("x-acs-"))} - signed
    )
    if unsigned:
        raise incomplete_signature(
            f"SignedHeaders must include {', '.join(unsigned)} (signed: {';'.join(auth.signed_headers)})."
        )


def content_md5(body: bytes) -> str:
    """RFC 1864's Content-MD5 of `body`: base64 of its MD5 digest."""
    return base64.b64encode(hashlib.md5(body).digest()).decode("ascii")


def check_content_md5(value: str | None, body: bytes, *, signed: bool) -> None:
    """A Content-MD5 that came with the request must be signed and be the body's."""
    if value is None:
        return
    if not signed:
        raise incomplete_signature("SignedHeaders must include content-md5, which was sent.")
    if not hmac.compare_digest(value.strip(), content_md5(body)):
        raise signature_mismatch("The Content-MD5 header does not match the request body.")


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
