"""The FC emulator's HTTP trigger: an FC 3.0-style JSON event in, `{statusCode, headers, body}`
out; anonymous by default, or checked against the FC gateway signature the SDK's
`invoke_httptrigger` makes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from yarl import URL

from agent.sim.cloud.fc_api import FcSettings, http_trigger_path, invocations_of
from tests.support.clocks import TestClock
from tests.support.cloud.cloud_apis import FC_FUNCTION, FC_SERVICE, FcHarness, fc_emulator


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
                "rawPath": e["rawPath"],
                "query": e["queryParameters"],
                "body": e["body"],
                "isBase64Encoded": e["isBase64Encoded"],
                "requestId": e["requestContext"]["requestId"],
                "contextRequestId": context.request_id,
            }
        ),
    }


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


async def test_http_trigger_passes_an_fc3_event_and_maps_the_reply(clock: TestClock) -> None:
    """Path, query, body and method reach the handler; its statusCode/headers/body reach the caller."""
    async with fc_emulator(unused, clock=clock, http_handler=web_handler) as fc:
        status, headers, body = await _post(fc, "decide?dryRun=1", b'{"schema": "decide/v1"}')
    got = json.loads(body)
    assert (status, headers["X-Seen-Method"]) == (202, "POST")
    assert got["rawPath"] == "/decide" and got["query"] == {"dryRun": "1"}
    assert (got["body"], got["isBase64Encoded"]) == ('{"schema": "decide/v1"}', False)
    assert got["requestId"] == got["contextRequestId"] == headers["X-Fc-Request-Id"]
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


@pytest.mark.filterwarnings(
    "ignore:Call to deprecated function:DeprecationWarning"
)  # inside the FC SDK
async def test_function_auth_accepts_the_sdk_signed_trigger_call(clock: TestClock) -> None:
    """With auth "function", the FC SDK's invoke_httptrigger signature is accepted."""
    async with fc_emulator(
        unused, clock=clock, http_handler=web_handler, settings=FcSettings(http_auth="function")
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
    assert json.loads(reply.content)["query"] == {"x": "1"}


@pytest.mark.filterwarnings(
    "ignore:Call to deprecated function:DeprecationWarning"
)  # inside the FC SDK
async def test_function_auth_refuses_unsigned_and_wrongly_signed_calls(clock: TestClock) -> None:
    """With auth "function", an anonymous call and a wrong secret are both refused."""
    async with fc_emulator(
        unused, clock=clock, http_handler=web_handler, settings=FcSettings(http_auth="function")
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
    """A function deployed without an HTTP handler has no trigger to call."""
    async with fc_emulator(unused, clock=clock) as fc:
        status, _, body = await _post(fc, "", b"{}")
    assert (status, json.loads(body)["Code"]) == (404, "TriggerNotFound")
