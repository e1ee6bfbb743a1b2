"""The remote deciders on Function Compute 3.0, the default: the agent's FC 3.0 client
(agent.clients.fc3, over the real alibabacloud-fc20230330 SDK) and its ACS3 trigger signer,
against the FC emulator hosting `functions.fc`, answer exactly what the in-process decider does,
and fail the way the decider's retry and fallback expect."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from alibabacloud_credentials import models as credential_models
from alibabacloud_credentials.client import Client as CredentialClient

from agent.clients import fc3
from agent.clients.fc import build_credential
from agent.decide.deciders import (
    DecisionFailed,
    FunctionComputeDecider,
    HttpTriggerDecider,
    LocalDecider,
    RetrySettings,
)
from agent.sim.cloud.credentials import TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET
from agent.sim.cloud.fc_api import FcSettings, invocations_of
from agent.sim.faults import FaultPlan
from functions import fc
from tests.support.cloud.cloud_apis import FC_FUNCTION, FcHarness, agent_fc3_sdk, fc_emulator
from tests.support.cloud.cloud_doubles import NO_WAIT, sample_request


@asynccontextmanager
async def fc3_function(
    handler: Any = fc.handler, *, faults: FaultPlan | None = None
) -> AsyncIterator[FcHarness]:
    """The emulator hosting `functions.fc` with a signed (authType function) FC 3.0 trigger."""
    async with fc_emulator(
        handler,
        clock=time.time,
        http_handler=fc.http_handler,
        settings=FcSettings(http_auth="function"),
        faults=faults,
    ) as function:
        yield function


def fc3_decider(
    harness: FcHarness, *, function: str = FC_FUNCTION, qualifier: str = "", retry: Any = NO_WAIT
) -> FunctionComputeDecider:
    invoker = fc3.FunctionInvoker(
        agent_fc3_sdk(harness.endpoint), function, qualifier=qualifier, timeout_seconds=10.0
    )
    return FunctionComputeDecider(invoker, retry=retry)


def signer(secret: str = TEST_ACCESS_KEY_SECRET) -> fc3.TriggerSigner:
    return fc3.TriggerSigner(
        build_credential(access_key_id=TEST_ACCESS_KEY_ID, access_key_secret=secret)
    )


async def test_fc3_sdk_and_signed_trigger_agree_with_the_local_decider() -> None:
    """One request: in-process, FC 3.0 InvokeFunction and the signed FC 3.0 trigger give the
    same reply."""
    request = sample_request()
    local = await LocalDecider().decide(request)
    async with fc3_function() as function, aiohttp.ClientSession() as session:
        via_sdk = await fc3_decider(function).decide(request)
        via_trigger = await HttpTriggerDecider(
            session, function.trigger_url, signer=signer(), retry=NO_WAIT
        ).decide(request)
        kinds = [r.kind for r in invocations_of(function.app)]
    canon = [json.dumps(r, sort_keys=True) for r in (local, via_sdk, via_trigger)]
    assert canon[0] == canon[1] == canon[2]
    assert local["actions"], "the sample needs capacity"
    assert kinds == ["sync", "http"]


async def test_trigger_refuses_unsigned_and_wrongly_signed_requests_finally() -> None:
    """Without a signature, or with the wrong secret, the trigger refuses; a 4xx is final."""
    request = sample_request()
    async with fc3_function() as function, aiohttp.ClientSession() as session:
        for bad in (None, signer("not-the-secret")):
            with pytest.raises(DecisionFailed) as refused:
                await HttpTriggerDecider(
                    session, function.trigger_url, signer=bad, retry=NO_WAIT
                ).decide(request)
            assert refused.value.code.startswith("HTTP4") and not refused.value.retryable
        assert invocations_of(function.app) == []


async def test_sts_credentials_sign_with_their_token() -> None:
    """RRSA hands the agent STS credentials: the trigger signature then carries
    x-acs-security-token, and the SDK path sends it too."""
    request = sample_request()
    async with fc3_function() as function, aiohttp.ClientSession() as session:
        sts = function.keys.issue(now=time.time())
        credential = CredentialClient(
            credential_models.Config(
                type="sts",
                access_key_id=sts.access_key_id,
                access_key_secret=sts.access_key_secret,
                security_token=sts.security_token,
            )
        )
        via_trigger = await HttpTriggerDecider(
            session, function.trigger_url, signer=fc3.TriggerSigner(credential), retry=NO_WAIT
        ).decide(request)
        sdk = fc3.build_sdk_client(
            region_id="cn-hangzhou",
            endpoint=function.endpoint,
            protocol="http",
            credential=credential,
        )
        via_sdk = await FunctionComputeDecider(
            fc3.FunctionInvoker(sdk, FC_FUNCTION), retry=NO_WAIT
        ).decide(request)
    assert via_trigger == via_sdk == await LocalDecider().decide(request)


async def test_unknown_function_or_qualifier_is_a_final_refusal() -> None:
    """A function or alias that is not deployed is a 404 that retrying cannot fix."""
    async with fc3_function() as function:
        for decider, code in (
            (fc3_decider(function, function="nope"), "FunctionNotFound"),
            (fc3_decider(function, qualifier="prod"), "AliasNotFound"),
        ):
            with pytest.raises(DecisionFailed) as caught:
                await decider.decide(sample_request())
            assert (caught.value.code, caught.value.retryable) == (code, False)
        latest = await fc3_decider(function, qualifier="LATEST").decide(sample_request())
    assert latest["schema"] == "decide/v1"


async def test_function_crash_is_not_a_reply() -> None:
    """An unhandled error in the function (X-Fc-Error-Type) fails the decision, not retried."""

    def crashing(event: bytes, context: Any) -> bytes:
        raise RuntimeError("boom")

    async with fc3_function(crashing) as function:
        with pytest.raises(DecisionFailed) as caught:
            await fc3_decider(function).decide(sample_request())
    assert (caught.value.code, caught.value.retryable) == ("UnhandledInvocationError", False)


async def test_server_errors_are_retried_then_reported() -> None:
    """503s from FC 3.0 are retryable and retried up to the attempt limit."""
    retry = RetrySettings(attempts=3, base_delay_seconds=0.01)
    async with fc3_function(faults=FaultPlan(fc_error_ratio=1.0)) as function:
        with pytest.raises(DecisionFailed) as caught:
            await fc3_decider(function, retry=retry).decide(sample_request())
    assert (caught.value.code, caught.value.retryable) == ("ServiceUnavailable", True)
