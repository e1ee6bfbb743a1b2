"""The Function Compute emulator through the real alibabacloud-fc-open20210406 SDK (FC 2.0; FC 3.0
is test_fc3_invoke): InvokeFunction returns the handler's bytes, hands it an FC-like context,
maps handler errors as FC does, and surfaces injected 5xx, timeouts and cold starts."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from alibabacloud_cs20151215 import models as csm
from alibabacloud_cs20151215.client import Client as CsClient
from alibabacloud_fc_open20210406 import models as fcm
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException
from alibabacloud_tea_openapi.utils_models import Config
from alibabacloud_tea_util.models import RuntimeOptions
from darabonba.exceptions import UnretryableException

from agent.sim.cloud.fc_api import (
    SYNC_PAYLOAD_LIMIT_BYTES,
    FcSettings,
    invocations_of,
    settle_async_invocations,
)
from tests.support.clocks import TestClock
from tests.support.cloud.cloud_apis import (
    CLUSTER_ID,
    FC_FUNCTION,
    FC_SERVICE,
    REGION_ID,
    CsHarness,
    fc_emulator,
)


def echo(event: bytes, context: Any) -> bytes:
    """Reply with the request and what the runtime told the handler about itself."""
    if event == b"raise":
        raise RuntimeError("the decision core blew up")
    return json.dumps(
        {
            "event": json.loads(event),
            "requestId": context.request_id,
            "function": [
                context.function.name,
                context.function.handler,
                context.function.memory,
                context.function.timeout,
            ],
            "service": context.service.name,
            "region": context.region,
            "credentials": [
                context.credentials.access_key_id,
                context.credentials.access_key_secret,
                context.credentials.security_token,
            ],
        }
    ).encode()


def _invoke(body: bytes, *, kind: str = "Sync", log: str | None = None) -> tuple[Any, ...]:
    return (
        FC_SERVICE,
        FC_FUNCTION,
        fcm.InvokeFunctionRequest(body=body),
        fcm.InvokeFunctionHeaders(x_fc_invocation_type=kind, x_fc_log_type=log),
        RuntimeOptions(),
    )


async def test_sync_invoke_returns_the_handler_reply(clock: TestClock) -> None:
    """The SDK gets the handler's bytes back, and the context describes the function."""
    async with fc_emulator(
        echo, clock=clock, settings=FcSettings(memory_mb=256, timeout_seconds=30)
    ) as fc:
        reply = await fc.client().invoke_function_async(
            FC_SERVICE, FC_FUNCTION, fcm.InvokeFunctionRequest(body=b'{"schema": "decide/v1"}')
        )
    assert reply.status_code == 200
    got = json.loads(reply.body)
    assert got["event"] == {"schema": "decide/v1"}
    assert got["requestId"] == reply.headers["x-fc-request-id"]
    assert got["function"] == [FC_FUNCTION, "index.handler", 256, 30]
    assert (got["service"], got["region"]) == (FC_SERVICE, REGION_ID)
    assert "x-fc-error-type" not in reply.headers


async def test_context_credentials_are_sts_keys_the_cs_emulator_accepts(
    cs: CsHarness, clock: TestClock
) -> None:
    """The function's context credentials sign CS calls, as a service role's STS token would."""
    async with fc_emulator(echo, clock=clock, keys=cs.keys) as fc:
        reply = await fc.client().invoke_function_async(
            FC_SERVICE, FC_FUNCTION, fcm.InvokeFunctionRequest(body=b"{}")
        )
    key_id, secret, token = json.loads(reply.body)["credentials"]
    assert key_id.startswith("STS.") and token
    client = CsClient(
        Config(
            access_key_id=key_id,
            access_key_secret=secret,
            security_token=token,
            endpoint=cs.endpoint,
            protocol="http",
            region_id=REGION_ID,
            read_timeout=5000,
        )
    )
    pools = await client.describe_cluster_node_pools_async(
        CLUSTER_ID, csm.DescribeClusterNodePoolsRequest()
    )
    assert len(pools.body.nodepools) == 2


async def test_handler_exception_becomes_an_unhandled_invocation_error(clock: TestClock) -> None:
    """A raising handler yields 200 with X-Fc-Error-Type and errorMessage/errorType/stackTrace."""
    async with fc_emulator(echo, clock=clock) as fc:
        reply = await fc.client().invoke_function_with_options_async(*_invoke(b"raise", log="Tail"))
    assert reply.status_code == 200
    assert reply.headers["x-fc-error-type"] == "UnhandledInvocationError"
    error = json.loads(reply.body)
    assert (error["errorMessage"], error["errorType"]) == (
        "the decision core blew up",
        "RuntimeError",
    )
    assert [frame[2] for frame in error["stackTrace"]] == ["in echo"]
    assert (
        reply.headers["x-fc-request-id"]
        in base64.b64decode(reply.headers["x-fc-log-result"]).decode()
    )


@pytest.mark.parametrize(
    ("service", "function", "code"),
    [
        ("no-such-service", FC_FUNCTION, "ServiceNotFound"),
        (FC_SERVICE, "no-such-function", "FunctionNotFound"),
    ],
)
async def test_unknown_service_or_function_is_not_found(
    clock: TestClock, service: str, function: str, code: str
) -> None:
    """Invoking something that is not deployed gets 404 with both FC and POP error fields."""
    async with fc_emulator(echo, clock=clock) as fc:
        with pytest.raises(ClientException) as caught:
            await fc.client().invoke_function_async(
                service, function, fcm.InvokeFunctionRequest(body=b"{}")
            )
    assert (caught.value.status_code, caught.value.code) == (404, code)
    assert caught.value.data["errorCode"] == code and caught.value.data["errorMessage"]


async def test_wrong_secret_is_refused(clock: TestClock) -> None:
    """InvokeFunction is signature-checked like every other API."""
    async with fc_emulator(echo, clock=clock) as fc:
        with pytest.raises(ClientException) as caught:
            await fc.client(secret="wrong").invoke_function_async(
                FC_SERVICE, FC_FUNCTION, fcm.InvokeFunctionRequest(body=b"{}")
            )
    assert (caught.value.status_code, caught.value.code) == (403, "SignatureDoesNotMatch")
    assert invocations_of(fc.app) == []


async def test_async_invoke_is_accepted_and_runs_later(clock: TestClock) -> None:
    """X-Fc-Invocation-Type Async answers 202 at once and runs the handler in the background."""
    async with fc_emulator(echo, clock=clock) as fc:
        reply = await fc.client().invoke_function_with_options_async(
            *_invoke(b'{"n": 1}', kind="Async")
        )
        assert reply.status_code == 202
        await asyncio.wait_for(settle_async_invocations(fc.app), 5)
    record = invocations_of(fc.app)[0]
    assert (record.kind, record.error_type, record.request_id) == (
        "async",
        None,
        reply.headers["x-fc-request-id"],
    )


async def test_service_errors_surface_as_server_errors(clock: TestClock) -> None:
    """fc_error_ratio makes invocations fail with 503 before the handler runs."""
    async with fc_emulator(echo, clock=clock) as fc:
        fc.faults.fc_error_ratio = 1.0
        with pytest.raises(ServerException) as caught:
            await fc.client().invoke_function_async(
                FC_SERVICE, FC_FUNCTION, fcm.InvokeFunctionRequest(body=b"{}")
            )
    assert (caught.value.status_code, caught.value.code) == (503, "ServiceUnavailable")
    assert invocations_of(fc.app) == []


async def test_hung_invocation_trips_the_sdk_read_timeout(clock: TestClock) -> None:
    """fc_timeout_ratio holds the reply until the SDK's read timeout gives up."""
    async with fc_emulator(echo, clock=clock, settings=FcSettings(hang_seconds=10)) as fc:
        fc.faults.fc_timeout_ratio = 1.0
        service, function, request, headers, _ = _invoke(b"{}")
        with pytest.raises(UnretryableException, match="Timeout on reading"):
            await fc.client().invoke_function_with_options_async(
                service, function, request, headers, RuntimeOptions(read_timeout=300)
            )
    assert invocations_of(fc.app) == []


async def test_cold_start_after_idle(clock: TestClock) -> None:
    """The first call and the first after the idle window are cold; calls in between are warm."""
    async with fc_emulator(
        echo, clock=clock, settings=FcSettings(cold_after_idle_seconds=300)
    ) as fc:
        fc.faults.fc_cold_start_seconds = 0.01
        client = fc.client()
        for advance in (0, 10, 301):
            clock.advance(advance)
            await client.invoke_function_async(
                FC_SERVICE, FC_FUNCTION, fcm.InvokeFunctionRequest(body=b"{}")
            )
    assert [r.cold for r in invocations_of(fc.app)] == [True, False, True]


async def test_payloads_up_to_the_sync_limit_reach_the_function(clock: TestClock) -> None:
    """A multi-megabyte request (a burst of thousands of pods) is invoked, not cut at 1 MiB."""
    big = json.dumps({"pad": "x" * (3 * 1024 * 1024)}).encode()
    async with fc_emulator(echo, clock=clock) as fc:
        reply = await fc.client().invoke_function_async(
            FC_SERVICE, FC_FUNCTION, fcm.InvokeFunctionRequest(body=big)
        )
    assert reply.status_code == 200
    assert len(json.loads(reply.body)["event"]["pad"]) == 3 * 1024 * 1024


async def test_payload_over_the_sync_limit_is_entity_too_large(clock: TestClock) -> None:
    """Over FC's 32 MB the platform refuses the call before the function runs: 400
    EntityTooLarge, as FC's error-codes page lists it."""
    too_big = b"x" * (SYNC_PAYLOAD_LIMIT_BYTES + 1)
    async with fc_emulator(echo, clock=clock) as fc:
        with pytest.raises(ClientException) as caught:
            await fc.client().invoke_function_async(
                FC_SERVICE, FC_FUNCTION, fcm.InvokeFunctionRequest(body=too_big)
            )
    assert (caught.value.status_code, caught.value.code) == (400, "EntityTooLarge")
    assert invocations_of(fc.app) == []
