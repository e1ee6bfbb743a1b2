"""The Function Compute emulator through the real alibabacloud-fc20230330 SDK (FC 3.0): its
InvokeFunction (`POST /2023-03-30/functions/{name}/invocations`, no service) is signed and
checked like every ACS3 API, returns the handler's bytes, and refuses in FC 3.0's error shape
(`Code`/`Message`/`RequestId`), which the SDK turns into its exceptions."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from alibabacloud_fc20230330 import models as fc3m
from alibabacloud_fc_open20210406 import models as fcm
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException
from darabonba.runtime import RuntimeOptions

from agent.sim.cloud.fc_api import (
    SYNC_PAYLOAD_LIMIT_BYTES,
    FcSettings,
    invocations_of,
    settle_async_invocations,
)
from tests.support.clocks import TestClock
from tests.support.cloud.cloud_apis import FC_FUNCTION, FC_SERVICE, REGION_ID, fc_emulator

FC3_REQUEST_ID = re.compile(r"^1-[0-9a-f]{8}-[0-9a-f]{24}$")


def echo(event: bytes, context: Any) -> bytes:
    """Reply with the request and what the runtime told the handler about itself."""
    if event == b"raise":
        raise RuntimeError("the decision core blew up")
    return json.dumps(
        {
            "event": json.loads(event),
            "requestId": context.request_id,
            "function": [context.function.name, context.function.handler],
            "region": context.region,
            "token": bool(context.credentials.security_token),
        }
    ).encode()


def invoke(
    body: bytes, *, qualifier: str | None = None, kind: str = "Sync", log: str | None = None
) -> tuple[Any, ...]:
    return (
        FC_FUNCTION,
        fc3m.InvokeFunctionRequest(body=body, qualifier=qualifier),
        fc3m.InvokeFunctionHeaders(x_fc_invocation_type=kind, x_fc_log_type=log),
        RuntimeOptions(),
    )


async def test_sync_invoke_returns_the_handler_reply(clock: TestClock) -> None:
    """The 3.0 SDK gets the handler's bytes back, with an FC 3.0 request id."""
    async with fc_emulator(echo, clock=clock) as fc:
        reply = await fc.client3().invoke_function_with_options_async(
            *invoke(b'{"schema": "decide/v1"}')
        )
    assert reply.status_code == 200
    got = json.loads(reply.body.read())
    assert got["event"] == {"schema": "decide/v1"}
    assert got["requestId"] == reply.headers["x-fc-request-id"]
    assert FC3_REQUEST_ID.match(got["requestId"]), got["requestId"]
    assert got["function"] == [FC_FUNCTION, "index.handler"]
    assert (got["region"], got["token"]) == (REGION_ID, True)
    assert "x-fc-error-type" not in reply.headers
    assert [r.kind for r in invocations_of(fc.app)] == ["sync"]


async def test_qualifier_latest_is_served_and_an_unknown_one_is_not_found(
    clock: TestClock,
) -> None:
    """`?qualifier=LATEST` reaches the function; an alias that is not deployed is a 404."""
    async with fc_emulator(echo, clock=clock) as fc:
        client = fc.client3()
        latest = await client.invoke_function_with_options_async(*invoke(b"{}", qualifier="LATEST"))
        with pytest.raises(ClientException) as caught:
            await client.invoke_function_with_options_async(*invoke(b"{}", qualifier="prod"))
    assert latest.status_code == 200
    assert (caught.value.status_code, caught.value.code) == (404, "AliasNotFound")


async def test_unknown_function_is_not_found_in_the_fc3_error_shape(clock: TestClock) -> None:
    """404 FunctionNotFound with exactly Code, Message and RequestId (FC 3.0's Error struct)."""
    async with fc_emulator(echo, clock=clock) as fc:
        with pytest.raises(ClientException) as caught:
            await fc.client3().invoke_function_async(
                "no-such-function", fc3m.InvokeFunctionRequest(body=b"{}")
            )
    error = caught.value
    assert (error.status_code, error.code) == (404, "FunctionNotFound")
    # The SDK adds the reply's statusCode to what it parsed from the body.
    assert set(error.data) - {"statusCode"} == {"Code", "Message", "RequestId"}
    assert error.data["Message"] == "function not found"
    assert FC3_REQUEST_ID.match(error.request_id)


async def test_wrong_secret_is_refused(clock: TestClock) -> None:
    """InvokeFunction 3.0 is signature-checked like every other API, before anything runs."""
    async with fc_emulator(echo, clock=clock) as fc:
        with pytest.raises(ClientException) as caught:
            await fc.client3(secret="wrong").invoke_function_async(
                FC_FUNCTION, fc3m.InvokeFunctionRequest(body=b"{}")
            )
    assert (caught.value.status_code, caught.value.code) == (403, "SignatureDoesNotMatch")
    assert invocations_of(fc.app) == []


async def test_sts_credentials_need_their_token(clock: TestClock) -> None:
    """STS keys sign with their security token; the same keys without it are refused."""
    async with fc_emulator(echo, clock=clock) as fc:
        sts = fc.keys.issue(now=clock())
        keys = {"key_id": sts.access_key_id, "secret": sts.access_key_secret}
        signed = await fc.client3(**keys, security_token=sts.security_token).invoke_function_async(
            FC_FUNCTION, fc3m.InvokeFunctionRequest(body=b"{}")
        )
        with pytest.raises(ClientException) as caught:
            await fc.client3(**keys).invoke_function_async(
                FC_FUNCTION, fc3m.InvokeFunctionRequest(body=b"{}")
            )
    assert signed.status_code == 200
    assert caught.value.code == "MissingSecurityToken"


async def test_handler_exception_is_an_unhandled_invocation_error(clock: TestClock) -> None:
    """A raising handler yields X-Fc-Error-Type and errorMessage/errorType/stackTrace."""
    async with fc_emulator(echo, clock=clock) as fc:
        reply = await fc.client3().invoke_function_with_options_async(*invoke(b"raise", log="Tail"))
    assert reply.headers["x-fc-error-type"] == "UnhandledInvocationError"
    error = json.loads(reply.body.read())
    assert (error["errorMessage"], error["errorType"]) == (
        "the decision core blew up",
        "RuntimeError",
    )
    assert [frame[2] for frame in error["stackTrace"]] == ["in echo"]


async def test_async_invoke_is_accepted_and_runs_later(clock: TestClock) -> None:
    """x-fc-invocation-type Async answers 202 at once and runs the handler in the background."""
    async with fc_emulator(echo, clock=clock) as fc:
        reply = await fc.client3().invoke_function_with_options_async(
            *invoke(b'{"n": 1}', kind="Async")
        )
        assert reply.status_code == 202
        await asyncio.wait_for(settle_async_invocations(fc.app), 5)
    assert [(r.kind, r.error_type) for r in invocations_of(fc.app)] == [("async", None)]


async def test_service_errors_surface_as_server_errors(clock: TestClock) -> None:
    """fc_error_ratio makes invocations fail with 503 before the handler runs."""
    async with fc_emulator(echo, clock=clock) as fc:
        fc.faults.fc_error_ratio = 1.0
        with pytest.raises(ServerException) as caught:
            await fc.client3().invoke_function_async(
                FC_FUNCTION, fc3m.InvokeFunctionRequest(body=b"{}")
            )
    assert (caught.value.status_code, caught.value.code) == (503, "ServiceUnavailable")
    assert invocations_of(fc.app) == []


async def test_payload_over_the_sync_limit_is_entity_too_large(clock: TestClock) -> None:
    """Over FC's 32 MB the platform refuses the call before the function runs."""
    async with fc_emulator(echo, clock=clock, settings=FcSettings()) as fc:
        with pytest.raises(ClientException) as caught:
            await fc.client3().invoke_function_async(
                FC_FUNCTION,
                fc3m.InvokeFunctionRequest(body=b"x" * (SYNC_PAYLOAD_LIMIT_BYTES + 1)),
            )
    assert (caught.value.status_code, caught.value.code) == (400, "EntityTooLarge")
    assert invocations_of(fc.app) == []


async def test_the_fc2_route_still_serves_the_same_function(clock: TestClock) -> None:
    """One hosted function answers both APIs; only FC 2.0 names its service."""
    async with fc_emulator(echo, clock=clock) as fc:
        v3 = await fc.client3().invoke_function_async(
            FC_FUNCTION, fc3m.InvokeFunctionRequest(body=b'{"v": 3}')
        )
        v2 = await fc.client().invoke_function_async(
            FC_SERVICE, FC_FUNCTION, fcm.InvokeFunctionRequest(body=b'{"v": 2}')
        )
    assert json.loads(v3.body.read())["event"] == {"v": 3}
    assert json.loads(v2.body)["event"] == {"v": 2}
    assert [r.kind for r in invocations_of(fc.app)] == ["sync", "sync"]
