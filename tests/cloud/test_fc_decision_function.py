"""The real decision function (functions.fc) hosted by the FC emulator: both FC SDKs and both HTTP
triggers (FC 3.0's event, FC 2.0's WSGI) get exactly what `functions.decide` answers, and bad
input comes back as the contract's error object rather than an FC error."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from alibabacloud_fc20230330 import models as fc3m
from alibabacloud_fc_open20210406 import models as fcm
from yarl import URL

from agent.sim.cloud.fc_api import http_trigger_path
from functions import decide
from functions.fc import handler, http_handler, wsgi_handler
from tests.support.clocks import TestClock
from tests.support.cloud.cloud_apis import FC_FUNCTION, FC_SERVICE, fc_emulator
from tests.support.decide_requests import walkthrough_request as walkthrough


def walkthrough_request() -> dict[str, Any]:
    """The ACK walkthrough: 15 one-vCPU Ray workers pending, one 4 vCPU pool with one node."""
    return walkthrough(cluster_id="c-test", allocatable=("3900m", "14Gi"), ray_node_type=True)


async def test_fc_sdk_gets_the_decision_core_reply(clock: TestClock) -> None:
    """InvokeFunction on functions.fc.handler answers what functions.decide answers."""
    request = walkthrough_request()
    async with fc_emulator(handler, clock=clock) as fc:
        reply = await fc.client().invoke_function_async(
            FC_SERVICE, FC_FUNCTION, fcm.InvokeFunctionRequest(body=json.dumps(request).encode())
        )
    assert "x-fc-error-type" not in reply.headers
    got = json.loads(reply.body)
    assert got == decide(request)
    assert [a["poolId"] for a in got["actions"] if a["kind"] == "scale-pool"] == ["np-cpu"]


async def test_invalid_request_is_answered_with_the_contract_error(clock: TestClock) -> None:
    """Bad input is the handler's error object, not an FC unhandled error."""
    async with fc_emulator(handler, clock=clock) as fc:
        reply = await fc.client().invoke_function_async(
            FC_SERVICE, FC_FUNCTION, fcm.InvokeFunctionRequest(body=b'{"schema": "decide/v0"}')
        )
    assert "x-fc-error-type" not in reply.headers
    assert json.loads(reply.body)["error"]["code"] == "InvalidRequest"


async def test_fc3_sdk_gets_the_decision_core_reply(clock: TestClock) -> None:
    """FC 3.0 InvokeFunction on functions.fc.handler answers what functions.decide answers."""
    request = walkthrough_request()
    async with fc_emulator(handler, clock=clock) as fc:
        reply = await fc.client3().invoke_function_async(
            FC_FUNCTION, fc3m.InvokeFunctionRequest(body=json.dumps(request).encode())
        )
    assert "x-fc-error-type" not in reply.headers
    assert json.loads(reply.body.read()) == decide(request)


async def test_http_trigger_gets_the_decision_core_reply(clock: TestClock) -> None:
    """POST to the FC 3.0 HTTP trigger of functions.fc.http_handler answers what
    functions.decide answers."""
    request = walkthrough_request()
    async with (
        fc_emulator(handler, clock=clock, http_handler=http_handler) as fc,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        session.post(fc.trigger_url, json=request) as reply,
    ):
        status, body = reply.status, await reply.json()
    assert (status, body) == (200, decide(request))


async def test_fc2_http_trigger_gets_the_decision_core_reply(clock: TestClock) -> None:
    """POST to the FC 2.0 HTTP trigger (WSGI) of functions.fc.wsgi_handler answers what
    functions.decide answers."""
    request = walkthrough_request()
    async with fc_emulator(handler, clock=clock, wsgi_handler=wsgi_handler) as fc:
        url = URL(f"http://{fc.endpoint}{http_trigger_path(FC_SERVICE, FC_FUNCTION)}", encoded=True)
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
            session.post(url, json=request) as reply,
        ):
            status, body = reply.status, await reply.json()
    assert (status, body) == (200, decide(request))
