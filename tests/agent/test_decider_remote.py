"""The three deciders (in-process, FC SDK against the FC emulator, HTTP trigger) speak the same decide/v1
(here through FC 2.0; FC 3.0 is test_decider_fc3)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import aiohttp
import pytest

from agent.clients.fc import (
    FunctionInvoker,
    FunctionRef,
    TriggerSigner,
    build_credential,
)
from agent.decide.deciders import (
    DecisionFailed,
    FunctionComputeDecider,
    HttpTriggerDecider,
    InvalidReply,
    LocalDecider,
    RetrySettings,
)
from agent.sim.cloud.credentials import TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET, static_test_keys
from agent.sim.cloud.fc_api import FcSettings, build_fc_app, http_trigger_path, invocations_of
from agent.sim.faults import FaultPlan
from functions import fc
from tests.support.cloud.cloud_apis import agent_fc_sdk
from tests.support.cloud.cloud_doubles import (
    FUNCTION,
    NO_WAIT,
    SERVICE,
    decide_function,
    fc_decider,
    sample_request,
    serve,
)


class TestSameReplyEverywhere:
    """In-process, FC SDK and HTTP trigger deciders answer the same request the same way."""

    async def test_local_fc_and_http_trigger_agree(self) -> None:
        """One request, three transports, byte-identical canonical replies."""
        request = sample_request()
        local = await LocalDecider().decide(request)
        async with decide_function() as (endpoint, app), aiohttp.ClientSession() as session:
            via_fc = await fc_decider(endpoint).decide(request)
            url = f"http://{endpoint}{http_trigger_path(SERVICE, FUNCTION)}"
            via_http = await HttpTriggerDecider(session, url, retry=NO_WAIT).decide(request)
            kinds = [r.kind for r in invocations_of(app)]
        canon = [json.dumps(r, sort_keys=True) for r in (local, via_fc, via_http)]
        assert canon[0] == canon[1] == canon[2]
        assert local["actions"], "the sample needs capacity"
        assert kinds == ["sync", "http"]

    async def test_large_request_runs_in_a_thread_with_the_same_answer(self) -> None:
        """The thread path of the local decider answers exactly like the inline path."""
        request = sample_request(pods=60)
        inline = await LocalDecider(thread_above_pods=1000).decide(request)
        threaded = await LocalDecider(thread_above_pods=10).decide(request)
        assert inline == threaded


class TestRefusalsAndBadReplies:
    """Refusals stay refusals; crashed functions and incomplete replies are not replies."""

    async def test_invalid_request_is_a_final_refusal_everywhere(self) -> None:
        """The function's InvalidRequest error object is not retried and is reported as such."""
        request = sample_request()
        request["pools"][0]["size"]["max"] = -1
        with pytest.raises(DecisionFailed) as local:
            await LocalDecider().decide(request)
        async with decide_function() as (endpoint, app), aiohttp.ClientSession() as session:
            with pytest.raises(DecisionFailed) as remote:
                await fc_decider(endpoint).decide(request)
            url = f"http://{endpoint}{http_trigger_path(SERVICE, FUNCTION)}"
            with pytest.raises(DecisionFailed) as http:
                await HttpTriggerDecider(session, url, retry=NO_WAIT).decide(request)
            attempts = len(invocations_of(app))
        assert local.value.code == remote.value.code == "InvalidRequest"
        assert not remote.value.retryable and not http.value.retryable
        assert attempts == 2, "one FC invocation and one trigger call: no retries"

    async def test_reply_missing_a_pod_is_rejected(self) -> None:
        """A function that forgets a pod is caught by reply validation before anything acts on it."""

        def forgetful(event: bytes, context: Any) -> bytes:
            reply = json.loads(fc.handler(event, context))
            reply["actions"][0]["pods"].pop()
            return json.dumps(reply).encode()

        async with decide_function(forgetful) as (endpoint, _app):
            with pytest.raises(InvalidReply, match="missing"):
                await fc_decider(endpoint).decide(sample_request())

    async def test_function_crash_is_not_a_reply(self) -> None:
        """An unhandled error in the function (200 + X-Fc-Error-Type) fails the decision."""

        def crashing(event: bytes, context: Any) -> bytes:
            raise RuntimeError("boom")

        async with decide_function(crashing) as (endpoint, _app):
            with pytest.raises(DecisionFailed) as caught:
                await fc_decider(endpoint).decide(sample_request())
        assert caught.value.code == "UnhandledInvocationError"

    async def test_server_errors_are_retried_then_reported(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """503s from FC are retried up to the attempt limit, then surface as retryable."""
        caplog.set_level(logging.INFO, logger="agent.decide.deciders")
        async with decide_function(faults=FaultPlan(fc_error_ratio=1.0)) as (endpoint, _app):
            with pytest.raises(DecisionFailed) as caught:
                await fc_decider(
                    endpoint, retry=RetrySettings(attempts=3, base_delay_seconds=0.01)
                ).decide(sample_request())
            assert caught.value.retryable
            assert caught.value.code == "ServiceUnavailable"
        assert [r.getMessage() for r in caplog.records] == ["decider retried"] * 2


class TestFunctionRef:
    """The function qualifier is sent, and the access key secret is never shown."""

    async def test_qualifier_is_sent_and_unknown_alias_is_final(self) -> None:
        """LATEST resolves; an alias the service lacks is a 404 that retrying cannot fix."""
        request = sample_request()
        async with decide_function() as (endpoint, app):
            sdk = agent_fc_sdk(endpoint)
            latest = FunctionComputeDecider(
                FunctionInvoker(sdk, FunctionRef(SERVICE, FUNCTION, "LATEST"))
            )
            assert (await latest.decide(request))["schema"] == "decide/v1"
            missing = FunctionComputeDecider(
                FunctionInvoker(sdk, FunctionRef(SERVICE, FUNCTION, "prod")), retry=NO_WAIT
            )
            with pytest.raises(DecisionFailed) as caught:
                await missing.decide(request)
            assert len(invocations_of(app)) == 1
        assert caught.value.code == "AliasNotFound" and not caught.value.retryable

    async def test_secret_never_reaches_logs_or_errors(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Failed, retried and refused invocations log no AccessKey secret."""
        caplog.set_level(logging.DEBUG)
        errors = []
        async with decide_function(faults=FaultPlan(fc_error_ratio=1.0)) as (endpoint, _app):
            with pytest.raises(DecisionFailed) as failed:
                await fc_decider(endpoint).decide(sample_request())
            errors.append(failed.value)
        async with serve(
            build_fc_app(
                fc.handler,
                keys={TEST_ACCESS_KEY_ID: "other"},
                service=SERVICE,
                function=FUNCTION,
                now=time.time,
            )
        ) as endpoint:
            with pytest.raises(DecisionFailed) as refused:
                await fc_decider(endpoint).decide(sample_request())
            errors.append(refused.value)
        assert caplog.records
        assert TEST_ACCESS_KEY_SECRET not in caplog.text
        assert all(TEST_ACCESS_KEY_SECRET not in str(e) for e in errors)


class TestSignedTrigger:
    """A function-auth FC 2.0 HTTP trigger answers only requests the SDK signed (FC 3.0's
    trigger: test_decider_fc3)."""

    async def test_function_auth_trigger_accepts_only_signed_requests(self) -> None:
        """AuthType FUNCTION: the FC-signed POST gets the same reply; unsigned or wrongly signed is 403, final."""
        request = sample_request()
        app = build_fc_app(
            fc.handler,
            keys=static_test_keys(),
            service=SERVICE,
            function=FUNCTION,
            wsgi_handler=fc.wsgi_handler,
            now=time.time,
            settings=FcSettings(http_auth="function"),
        )
        async with serve(app) as endpoint, aiohttp.ClientSession() as session:
            url = f"http://{endpoint}{http_trigger_path(SERVICE, FUNCTION)}"
            signer = TriggerSigner(
                build_credential(
                    access_key_id=TEST_ACCESS_KEY_ID, access_key_secret=TEST_ACCESS_KEY_SECRET
                )
            )
            signed = await HttpTriggerDecider(session, url, signer=signer, retry=NO_WAIT).decide(
                request
            )
            assert signed == await LocalDecider().decide(request)
            for bad in (
                None,
                TriggerSigner(
                    build_credential(
                        access_key_id=TEST_ACCESS_KEY_ID, access_key_secret="not-the-secret"
                    )
                ),
            ):
                with pytest.raises(DecisionFailed) as refused:
                    await HttpTriggerDecider(session, url, signer=bad, retry=NO_WAIT).decide(
                        request
                    )
                assert refused.value.code == "HTTP403" and not refused.value.retryable
