"""The FC emulator's FC 2.0 HTTP trigger (`/2016-08-15/proxy/{service}/{function}/...`): the
Python runtime calls the function as WSGI, `handler(environ, start_response)`; anonymous by
default, or checked against the FC gateway signature the FC 2.0 SDK's `invoke_httptrigger`
makes, a signed Content-MD5 holding the body to it, and a replayed signature refused. (The FC 3.0
trigger, an event handler on a domain of its own, is test_fc3_http_trigger.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp
import pytest
from alibabacloud_gateway_fc_util.client import Client as FcGatewaySigner
from requests import Request
from yarl import URL

from agent.clients.fc import CredentialSnapshot, build_credential
from agent.sim.cloud.acs3 import content_md5
from agent.sim.cloud.credentials import TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET
from agent.sim.cloud.fc_api import FcSettings, http_trigger_path, invocations_of
from tests.support.clocks import TestClock
from tests.support.cloud.cloud_apis import FC_FUNCTION, FC_SERVICE, FcHarness, fc_emulator


def unused(event: bytes, context: Any) -> bytes:
    raise AssertionError("the event handler must not run for HTTP-trigger calls")


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answer with what the trigger passed in, the way an FC 2.0 HTTP function replies."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    if body == b"raise":
        raise ValueError("bad request body")
    start_response(
        "202 Accepted",
        [("Content-Type", "application/json"), ("X-Seen-Method", environ["REQUEST_METHOD"])],
    )
    reply = {
        "pathInfo": environ["PATH_INFO"],
        "query": environ["QUERY_STRING"],
        "body": body.hex(),
        "contentType": environ["CONTENT_TYPE"],
        "requestUri": environ["fc.request_uri"],
        "contextRequestId": environ["fc.context"].request_id,
        "customHeader": environ.get("HTTP_X_CUSTOM"),
    }
    return [json.dumps(reply).encode()]


async def _post(
    fc: FcHarness, tail: str, body: bytes, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    url = URL(
        f"http://{fc.endpoint}{http_trigger_path(FC_SERVICE, FC_FUNCTION)}{tail}", encoded=True
    )
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        session.post(url, data=body, headers=headers) as reply,
    ):
        return reply.status, dict(reply.headers), await reply.read()


async def test_http_trigger_calls_the_function_as_wsgi(clock: TestClock) -> None:
    """Path, query, body, method and headers reach the WSGI environ; its status/headers/body
    reach the caller."""
    async with fc_emulator(unused, clock=clock, wsgi_handler=wsgi_app) as fc:
        status, headers, body = await _post(
            fc,
            "decide?dryRun=1",
            b'{"schema": "decide/v1"}',
            **{"Content-Type": "application/json", "X-Custom": "yes"},
        )
    got = json.loads(body)
    assert (status, headers["X-Seen-Method"]) == (202, "POST")
    assert got["pathInfo"] == "/decide" and got["query"] == "dryRun=1"
    assert bytes.fromhex(got["body"]) == b'{"schema": "decide/v1"}'
    assert (got["contentType"], got["customHeader"]) == ("application/json", "yes")
    assert got["requestUri"].endswith("/decide?dryRun=1")
    assert got["contextRequestId"] == headers["X-Fc-Request-Id"]
    assert [r.kind for r in invocations_of(fc.app)] == ["http"]


async def test_binary_bodies_reach_the_app_unchanged(clock: TestClock) -> None:
    """A body that is not UTF-8 arrives in wsgi.input byte for byte."""
    async with fc_emulator(unused, clock=clock, wsgi_handler=wsgi_app) as fc:
        _, _, body = await _post(fc, "", b"\xff\xfe\x00")
    assert bytes.fromhex(json.loads(body)["body"]) == b"\xff\xfe\x00"


async def test_an_event_handler_cannot_answer_the_fc2_trigger(clock: TestClock) -> None:
    """An FC 3.0-style event handler wired to the FC 2.0 trigger fails as it would on FC 2.0:
    the runtime calls it with (environ, start_response)."""

    def event_handler(event: bytes, context: Any) -> dict[str, Any]:
        json.loads(event)  # a WSGI environ is not JSON: TypeError
        return {"statusCode": 200, "body": "{}"}

    async with fc_emulator(unused, clock=clock, wsgi_handler=event_handler) as fc:
        status, headers, _ = await _post(fc, "", b"{}")
    assert (status, headers["X-Fc-Error-Type"]) == (502, "UnhandledInvocationError")


async def test_handler_exception_on_the_trigger_is_an_unhandled_error(clock: TestClock) -> None:
    """A raising WSGI app answers 502 with X-Fc-Error-Type and the FC error body."""
    async with fc_emulator(unused, clock=clock, wsgi_handler=wsgi_app) as fc:
        status, headers, body = await _post(fc, "", b"raise")
    assert (status, headers["X-Fc-Error-Type"]) == (502, "UnhandledInvocationError")
    error = json.loads(body)
    assert error["errorMessage"] == "bad request body"
    assert [frame[2] for frame in error["stackTrace"]] == ["in wsgi_app"]


@pytest.mark.filterwarnings(
    "ignore:Call to deprecated function:DeprecationWarning"
)  # inside the FC SDK
async def test_function_auth_accepts_the_sdk_signed_trigger_call(clock: TestClock) -> None:
    """With auth "function", the FC SDK's invoke_httptrigger signature is accepted."""
    async with fc_emulator(
        unused, clock=clock, wsgi_handler=wsgi_app, settings=FcSettings(http_auth="function")
    ) as fc:
        url = f"http://{fc.endpoint}{http_trigger_path(FC_SERVICE, FC_FUNCTION)}decide?x=1"
        # The SDK's trigger helper is synchronous (requests); keep it off the event loop.
        reply = await asyncio.to_thread(
            fc.client().invoke_httptrigger,
            url,
            "POST",
            b'{"a": 1}',
            {"content-type": "application/json"},
        )
    assert reply.status_code == 202
    assert json.loads(reply.content)["query"] == "x=1"


@pytest.mark.filterwarnings(
    "ignore:Call to deprecated function:DeprecationWarning"
)  # inside the FC SDK
async def test_function_auth_refuses_unsigned_and_wrongly_signed_calls(clock: TestClock) -> None:
    """With auth "function", an anonymous call and a wrong secret are both refused."""
    async with fc_emulator(
        unused, clock=clock, wsgi_handler=wsgi_app, settings=FcSettings(http_auth="function")
    ) as fc:
        anonymous, _, body = await _post(fc, "decide", b"{}")
        url = f"http://{fc.endpoint}{http_trigger_path(FC_SERVICE, FC_FUNCTION)}decide"
        forged = await asyncio.to_thread(
            fc.client(secret="wrong").invoke_httptrigger,
            url,
            "POST",
            b"{}",
            {"content-type": "application/json"},
        )
    assert (anonymous, json.loads(body)["errorCode"]) == (403, "AccessDenied")
    assert (forged.status_code, forged.json()["Code"]) == (403, "SignatureDoesNotMatch")
    assert invocations_of(fc.app) == []


async def test_function_without_http_trigger_is_not_found(clock: TestClock) -> None:
    """A function deployed without a WSGI handler has no FC 2.0 trigger to call."""
    async with fc_emulator(unused, clock=clock) as fc:
        status, _, body = await _post(fc, "", b"{}")
    assert (status, json.loads(body)["Code"]) == (404, "TriggerNotFound")


# --- the body digest and replays (issue 12: a tampered body and replays were accepted) -----------


def _fc_signed(fc: FcHarness, tail: str, body: bytes, *, digest: bool) -> dict[str, str]:
    """Headers the FC SDK's gateway signer makes for a POST, with the body's Content-MD5
    (`sign_request_with_content_md5`, RFC 1864 base64) or without (`sign_request`)."""
    url = f"http://{fc.endpoint}{http_trigger_path(FC_SERVICE, FC_FUNCTION)}{tail}"
    request = Request(method="POST", url=url, headers={"content-type": "application/json"})
    credential = build_credential(
        access_key_id=TEST_ACCESS_KEY_ID, access_key_secret=TEST_ACCESS_KEY_SECRET
    )
    signer = FcGatewaySigner(CredentialSnapshot(credential.get_credential()))
    if digest:
        signed = signer.sign_request_with_content_md5(request, content_md5(body))
    else:
        signed = signer.sign_request(request)
    return dict(signed.headers)


FUNCTION_AUTH = FcSettings(http_auth="function")


async def test_a_signed_body_digest_is_accepted_and_a_tampered_body_refused(
    clock: TestClock,
) -> None:
    """Content-MD5 is in FC's string to sign: the body it names is accepted, another body with
    the same signed headers is refused before the function runs."""
    async with fc_emulator(
        unused, clock=clock, wsgi_handler=wsgi_app, settings=FUNCTION_AUTH
    ) as fc:
        good = await _post(
            fc, "decide", b'{"a": 1}', **_fc_signed(fc, "decide", b'{"a": 1}', digest=True)
        )
        headers = _fc_signed(fc, "decide", b'{"a": 1}', digest=True)
        tampered = await _post(fc, "decide", b'{"a": 2}', **headers)
        calls = len(invocations_of(fc.app))
    assert good[0] == 202
    assert (tampered[0], json.loads(tampered[2])["Code"]) == (403, "SignatureDoesNotMatch")
    assert "Content-MD5" in json.loads(tampered[2])["Message"]
    assert calls == 1


@pytest.mark.parametrize("digest", [True, False], ids=["with-content-md5", "without"])
async def test_a_replayed_signed_request_is_refused(clock: TestClock, digest: bool) -> None:
    """FC 2.0's signature has no nonce: the same signed request sent again within the date's
    validity window is a replay, refused (before, accepted every time)."""
    async with fc_emulator(
        unused, clock=clock, wsgi_handler=wsgi_app, settings=FUNCTION_AUTH
    ) as fc:
        headers = _fc_signed(fc, "decide", b"{}", digest=digest)
        replies = [await _post(fc, "decide", b"{}", **headers) for _ in range(5)]
    assert [status for status, _, _ in replies] == [202, 403, 403, 403, 403]
    assert json.loads(replies[1][2])["Code"] == "AccessDenied"
