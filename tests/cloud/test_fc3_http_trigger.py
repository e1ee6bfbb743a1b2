"""The FC emulator's FC 3.0 HTTP trigger, on an endpoint of its own as a trigger's domain is on FC:
the request as FC 3.0's JSON event in, `{statusCode, headers, body}` out; anonymous by default, or
checked against ACS3-HMAC-SHA256 signed the way FC's documentation signs it (its Python example:
alibabacloud_openapi_util's `get_authorization` over `x-acs-date`, empty payload hash), with a
signed Content-MD5 holding the body to it and replays refused."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlparse

import aiohttp
import pytest
from alibabacloud_openapi_util.client import Client as OpenApiUtil
from Tea.request import TeaRequest

from agent.sim.cloud.acs3 import content_md5
from agent.sim.cloud.credentials import TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET
from agent.sim.cloud.fc_api import FcSettings, invocations_of
from tests.support.clocks import TestClock
from tests.support.cloud.cloud_apis import FcHarness, fc_emulator

FUNCTION_AUTH = FcSettings(http_auth="function")


def unused(event: bytes, context: Any) -> bytes:
    raise AssertionError("the event handler must not run for HTTP-trigger calls")


def web_handler(event: bytes, context: Any) -> dict[str, Any]:
    """Answer with what the trigger passed in, the way an FC 3.0 HTTP function replies."""
    e = json.loads(event)
    if e["body"] == "raise":
        raise ValueError("bad request body")
    return {
        "statusCode": 202,
        "headers": {
            "Content-Type": "application/json",
            "X-Seen-Method": e["requestContext"]["http"]["method"],
        },
        "isBase64Encoded": False,
        "body": json.dumps(
            {
                "version": e["version"],
                "rawPath": e["rawPath"],
                "query": e["queryParameters"],
                "headers": e["headers"],
                "body": e["body"],
                "isBase64Encoded": e["isBase64Encoded"],
                "requestId": e["requestContext"]["requestId"],
                "time": e["requestContext"]["time"],
                "contextRequestId": context.request_id,
            }
        ),
    }


def documented_signature(
    url: str, *, method: str = "POST", secret: str = TEST_ACCESS_KEY_SECRET, date: str = ""
) -> dict[str, str]:
    """Headers exactly as the FC documentation's Python example makes them ("Configure
    signature authentication for HTTP triggers")."""
    parsed = urlparse(url)
    headers = {"x-acs-date": date or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    request = TeaRequest()
    request.method = method
    request.pathname = parsed.path.replace("$", "%24")
    request.headers = headers
    request.query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
    auth = OpenApiUtil.get_authorization(
        request, "ACS3-HMAC-SHA256", "", TEST_ACCESS_KEY_ID, secret
    )
    return {**headers, "authorization": auth}


async def _post(
    fc: FcHarness, tail: str, body: bytes, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        session.post(fc.trigger_url + tail, data=body, headers=headers) as reply,
    ):
        return reply.status, dict(reply.headers), await reply.read()


async def test_http_trigger_passes_an_fc3_event_and_maps_the_reply(clock: TestClock) -> None:
    """Path, query, body and method reach the handler; its statusCode/headers/body reach the caller."""
    async with fc_emulator(unused, clock=clock, http_handler=web_handler) as fc:
        status, headers, body = await _post(
            fc, "decide?dryRun=1&x=a&x=b", b'{"schema": "decide/v1"}', **{"x-custom": "yes"}
        )
    got = json.loads(body)
    assert (status, headers["X-Seen-Method"]) == (202, "POST")
    assert got["version"] == "v1" and got["rawPath"] == "/decide"
    assert got["query"] == {"dryRun": "1", "x": "a,b"}
    assert (got["body"], got["isBase64Encoded"]) == ('{"schema": "decide/v1"}', False)
    assert got["headers"]["X-Custom"] == "yes", "FC 3.0 canonicalises header keys"
    assert got["requestId"] == got["contextRequestId"] == headers["X-Fc-Request-Id"]
    assert time.strptime(got["time"], "%Y-%m-%dT%H:%M:%SZ")
    assert [r.kind for r in invocations_of(fc.app)] == ["http"]


async def test_binary_bodies_arrive_base64_encoded(clock: TestClock) -> None:
    """A body that is not UTF-8 is passed base64-encoded with isBase64Encoded set."""
    async with fc_emulator(unused, clock=clock, http_handler=web_handler) as fc:
        _, _, body = await _post(fc, "", b"\xff\xfe\x00")
    got = json.loads(body)
    assert (got["body"], got["isBase64Encoded"]) == ("//4A", True)


async def test_a_plain_reply_is_the_response_body(clock: TestClock) -> None:
    """A handler that returns bare bytes answers 200 with those bytes."""
    async with fc_emulator(unused, clock=clock, http_handler=lambda event, ctx: b"plain") as fc:
        status, _, body = await _post(fc, "", b"{}")
    assert (status, body) == (200, b"plain")


async def test_handler_exception_on_the_trigger_is_an_unhandled_error(clock: TestClock) -> None:
    """A raising HTTP handler answers 502 with X-Fc-Error-Type and the FC error body."""
    async with fc_emulator(unused, clock=clock, http_handler=web_handler) as fc:
        status, headers, body = await _post(fc, "", b"raise")
    assert (status, headers["X-Fc-Error-Type"]) == (502, "UnhandledInvocationError")
    assert json.loads(body)["errorMessage"] == "bad request body"


async def test_function_auth_accepts_the_documented_signature(clock: TestClock) -> None:
    """With auth "function", a request signed as FC's documentation signs it is answered."""
    async with fc_emulator(
        unused, clock=clock, http_handler=web_handler, settings=FUNCTION_AUTH
    ) as fc:
        url = fc.trigger_url + "decide?x=1"
        status, _, body = await _post(fc, "decide?x=1", b'{"a": 1}', **documented_signature(url))
    assert status == 202
    assert json.loads(body)["query"] == {"x": "1"}


async def test_function_auth_accepts_millisecond_dates(clock: TestClock) -> None:
    """The documentation's Node.js caller stamps x-acs-date with Date.toISOString() (milliseconds)."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + ".123Z"
    async with fc_emulator(
        unused, clock=lambda: now, http_handler=web_handler, settings=FUNCTION_AUTH
    ) as fc:
        headers = documented_signature(fc.trigger_url, date=stamp)
        status, _, _ = await _post(fc, "", b"{}", **headers)
    assert status == 202


async def test_function_auth_refuses_unsigned_forged_and_altered_calls(clock: TestClock) -> None:
    """Unsigned, wrong-secret and path-altered requests are refused with FC 3.0's error body."""
    async with fc_emulator(
        unused, clock=clock, http_handler=web_handler, settings=FUNCTION_AUTH
    ) as fc:
        unsigned = await _post(fc, "decide", b"{}")
        forged = await _post(
            fc, "decide", b"{}", **documented_signature(fc.trigger_url + "decide", secret="x")
        )
        altered = await _post(fc, "other", b"{}", **documented_signature(fc.trigger_url + "decide"))
        refused = invocations_of(fc.app)
    assert [status for status, _, _ in (unsigned, forged, altered)] == [400, 403, 403]
    codes = [json.loads(body) for _, _, body in (unsigned, forged, altered)]
    assert [c["Code"] for c in codes] == [
        "MissingAuthorization",
        "SignatureDoesNotMatch",
        "SignatureDoesNotMatch",
    ]
    # FC 3.0's Error struct: Code, Message, RequestId (no FC 2.0 errorCode/errorMessage).
    assert all(set(c) == {"Code", "Message", "RequestId"} for c in codes)
    assert refused == []


async def test_a_body_hash_signature_is_not_the_documented_form(clock: TestClock) -> None:
    """Signing the body hash instead of the empty payload is refused: only the documented form
    is known to pass FC's gateway, so the emulator accepts only that."""
    async with fc_emulator(
        unused, clock=clock, http_handler=web_handler, settings=FUNCTION_AUTH
    ) as fc:
        headers = {"x-acs-date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        request = TeaRequest()
        request.method, request.pathname, request.headers, request.query = "POST", "/", headers, {}
        auth = OpenApiUtil.get_authorization(
            request,
            "ACS3-HMAC-SHA256",
            hashlib.sha256(b"{}").hexdigest(),
            TEST_ACCESS_KEY_ID,
            TEST_ACCESS_KEY_SECRET,
        )
        status, _, _ = await _post(fc, "", b"{}", **headers, authorization=auth)
    assert status == 403


async def test_function_without_http_trigger_is_not_found(clock: TestClock) -> None:
    """A function deployed without an HTTP handler has no FC 3.0 trigger to call."""
    async with fc_emulator(unused, clock=clock) as fc:
        status, _, body = await _post(fc, "", b"{}")
    assert (status, json.loads(body)["Code"]) == (404, "TriggerNotFound")


# --- the body digest, the nonce and replays (issue 12: replays and tampered bodies passed) ------


def signed_with(
    url: str,
    body: bytes,
    *,
    sign: tuple[str, ...] = ("x-acs-date", "x-acs-signature-nonce", "content-md5"),
    send: tuple[str, ...] = ("x-acs-date", "x-acs-signature-nonce", "content-md5"),
) -> dict[str, str]:
    """The documented signature (empty payload hash) over the headers in `sign`, sending those
    in `send`: a nonce and a Content-MD5 body digest as the agent's trigger signer adds them."""
    parsed = urlparse(url)
    headers = {
        "x-acs-date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "x-acs-signature-nonce": uuid.uuid4().hex,
        "content-md5": content_md5(body),
    }
    request = TeaRequest()
    request.method = "POST"
    request.pathname = parsed.path.replace("$", "%24")
    request.headers = {k: v for k, v in headers.items() if k in sign}
    request.query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
    auth = OpenApiUtil.get_authorization(
        request, "ACS3-HMAC-SHA256", "", TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET
    )
    return {**{k: v for k, v in headers.items() if k in send}, "authorization": auth}


async def test_a_signed_digest_and_nonce_are_accepted(clock: TestClock) -> None:
    """Control: the documented signature plus a signed nonce and Content-MD5 is answered."""
    async with fc_emulator(
        unused, clock=clock, http_handler=web_handler, settings=FUNCTION_AUTH
    ) as fc:
        status, _, _ = await _post(fc, "", b'{"a": 1}', **signed_with(fc.trigger_url, b'{"a": 1}'))
    assert status == 202


async def test_a_tampered_body_is_refused(clock: TestClock) -> None:
    """The body changed after signing no longer matches the signed Content-MD5: 403, the
    function never runs."""
    async with fc_emulator(
        unused, clock=clock, http_handler=web_handler, settings=FUNCTION_AUTH
    ) as fc:
        headers = signed_with(fc.trigger_url, b'{"replicas": 1}')
        status, _, body = await _post(fc, "", b'{"replicas": 100}', **headers)
        ran = invocations_of(fc.app)
    assert (status, json.loads(body)["Code"]) == (403, "SignatureDoesNotMatch")
    assert ran == []


@pytest.mark.parametrize("nonce", [True, False], ids=["signed-nonce", "documented-form"])
async def test_a_replay_is_refused(clock: TestClock, nonce: bool) -> None:
    """The same signed request again within the validity window is refused, by its nonce or,
    in the documented form that has none, by its signature (before, every replay passed)."""
    async with fc_emulator(
        unused, clock=clock, http_handler=web_handler, settings=FUNCTION_AUTH
    ) as fc:
        if nonce:
            headers = signed_with(fc.trigger_url, b"{}")
        else:
            headers = documented_signature(fc.trigger_url)
        replies = [await _post(fc, "", b"{}", **headers) for _ in range(5)]
    assert [status for status, _, _ in replies] == [202, 400, 400, 400, 400]
    assert json.loads(replies[1][2])["Code"] == "SignatureNonceUsed"


@pytest.mark.parametrize("unsigned", ["x-acs-signature-nonce", "content-md5"])
async def test_a_nonce_or_digest_sent_unsigned_is_refused(clock: TestClock, unsigned: str) -> None:
    """A nonce or a Content-MD5 that is sent must be signed: otherwise anyone could change it."""
    async with fc_emulator(
        unused, clock=clock, http_handler=web_handler, settings=FUNCTION_AUTH
    ) as fc:
        sign = tuple(
            h for h in ("x-acs-date", "x-acs-signature-nonce", "content-md5") if h != unsigned
        )
        status, _, body = await _post(
            fc, "", b"{}", **signed_with(fc.trigger_url, b"{}", sign=sign)
        )
    assert (status, json.loads(body)["Code"]) == (400, "IncompleteSignature")
    assert unsigned in json.loads(body)["Message"]


async def test_a_body_hash_header_is_refused(clock: TestClock) -> None:
    """x-acs-content-sha256, even signed, is refused: whether FC's trigger gateway takes it as
    the hashed payload is not documented, and a signature valid under one reading only is not
    something to rely on."""
    async with fc_emulator(
        unused, clock=clock, http_handler=web_handler, settings=FUNCTION_AUTH
    ) as fc:
        headers = {
            "x-acs-date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "x-acs-content-sha256": hashlib.sha256(b"{}").hexdigest(),
        }
        request = TeaRequest()
        request.method, request.pathname, request.headers, request.query = "POST", "/", headers, {}
        auth = OpenApiUtil.get_authorization(
            request, "ACS3-HMAC-SHA256", "", TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET
        )
        status, _, body = await _post(fc, "", b"{}", **headers, authorization=auth)
    assert (status, json.loads(body)["Code"]) == (403, "SignatureDoesNotMatch")
