"""The real decision function (functions.fc) hosted by the FC emulator: the FC SDK and the HTTP
trigger get exactly what `functions.decide` answers, and bad input comes back as the contract's
error object rather than an FC error."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from alibabacloud_fc_open20210406 import models as fcm
from yarl import URL

from agent.sim.cloud.fc_api import http_trigger_path
from functions import decide
from functions.fc import handler, http_handler

from .harness import FC_FUNCTION, FC_SERVICE, fc_emulator
from .serving import TestClock


def walkthrough_request() -> dict[str, Any]:
    """The ACK walkthrough: 15 one-vCPU Ray workers pending, one 4 vCPU pool with one node."""
    pod = {
        "namespace": "ray",
        "labels": {
            "ray.io/cluster": "myfirst-ray-cluster",
            "ray.io/group": "workergroup",
            "ray.io/node-type": "worker",
        },
        "annotations": {},
        "requests": {"cpu": "1", "memory": "1Gi"},
        "nodeSelector": {},
        "affinity": {},
        "tolerations": [],
        "hostNetwork": False,
        "volumeTypes": ["emptyDir"],
        "privileged": False,
        "unschedulableSince": "2026-11-29T04:59:58Z",
        "message": "0/1 nodes are available: 1 Insufficient cpu.",
    }
    return {
        "schema": "decide/v1",
        "now": "2026-11-29T05:00:00Z",
        "cluster": {"id": "c-test", "region": "cn-hangzhou"},
        "pods": [
            {**pod, "uid": f"u-{i}", "name": f"myfirst-ray-cluster-worker-workergroup-{i:05d}"}
            for i in range(15)
        ],
        "pools": [
            {
                "id": "np-cpu",
                "name": "cpu",
                "instanceType": "ecs.g7.xlarge",
                "allocatable": {"cpu": "3900m", "memory": "14Gi", "pods": "110"},
                "labels": {"alibabacloud.com/nodepool-id": "np-cpu"},
                "taints": [],
                "size": {"min": 0, "max": 20, "desired": 1, "ready": 1},
                "scalingSince": None,
                "lastError": None,
                "bootSeconds": 90,
                "pricePerHour": 0.9,
                "priority": 0,
            }
        ],
        "eci": {"enabled": False},
        "policy": {"strategy": "cost"},
    }


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


async def test_http_trigger_gets_the_decision_core_reply(clock: TestClock) -> None:
    """POST to the HTTP trigger of functions.fc.http_handler answers what functions.decide answers."""
    request = walkthrough_request()
    async with fc_emulator(handler, clock=clock, http_handler=http_handler) as fc:
        url = URL(f"http://{fc.endpoint}{http_trigger_path(FC_SERVICE, FC_FUNCTION)}", encoded=True)
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
            session.post(url, json=request) as reply,
        ):
            status, body = reply.status, await reply.json()
    assert (status, body) == (200, decide(request))
