"""The embedded ACK's cloud side through the official SDKs, using only what `info()` hands out:
the CS SDK reads and grows the scenario's pool (nodes turn Ready in the Kubernetes API), and the
FC SDK and HTTP trigger get the decision function's decide/v1 reply."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from alibabacloud_credentials import models as credential_models
from alibabacloud_credentials.client import Client as CredentialClient
from kubernetes_asyncio import client

from agent.clients import fc3
from agent.clients.cs import CloudCallError, NodePoolClient
from agent.clients.cs import build_sdk_client as build_cs_sdk
from agent.clients.fc import FunctionInvoker, FunctionRef, TriggerSigner, build_credential
from agent.clients.fc import build_sdk_client as build_fc_sdk
from agent.decide.deciders import (
    DecisionFailed,
    FunctionComputeDecider,
    HttpTriggerDecider,
    RetrySettings,
)
from agent.sim.embedded import EmbeddedAck
from agent.sim.scenario import load_scenario
from agent.sim.world.nodepools import POOL_LABEL
from functions import decide
from functions.example import seed_request

SPEED = 200  # the seed pool boots in 60-90 simulated seconds: under half a real second
NO_RETRY = RetrySettings(attempts=1)


@pytest.fixture
async def ack() -> AsyncIterator[EmbeddedAck]:
    """The seed scenario's embedded ACK, faults off, at high speed."""
    async with EmbeddedAck(load_scenario("seed"), speed=SPEED, faults=False) as running:
        yield running


def cs_pools(info: dict[str, Any], **keys: Any) -> NodePoolClient:
    cs = info["cs"]
    sdk = build_cs_sdk(
        region_id=cs["regionId"], endpoint=cs["endpoint"], protocol="http",
        access_key_id=cs["accessKeyId"], access_key_secret=cs["accessKeySecret"],
        timeout_seconds=5.0, **keys,
    )  # fmt: skip
    return NodePoolClient(sdk, cs["clusterId"])


def fc_invoker(info: dict[str, Any], **keys: Any) -> FunctionInvoker:
    fc = info["fc"]
    credentials = keys or {
        "access_key_id": fc["accessKeyId"],
        "access_key_secret": fc["accessKeySecret"],
    }
    sdk = build_fc_sdk(
        region_id=info["cs"]["regionId"], endpoint=fc["endpoint"], protocol="http",
        read_timeout_seconds=5.0, **credentials,
    )  # fmt: skip
    return FunctionInvoker(sdk, FunctionRef(fc["service"], fc["function"]), timeout_seconds=5.0)


async def ready_pool_nodes(url: str, pool_id: str, want: int) -> list[str]:
    """Watch nodes of one pool through kubernetes-asyncio until `want` are Ready (bounded)."""
    configuration = client.Configuration(host=url)
    configuration.proxy = None
    async with client.ApiClient(configuration) as api_client:
        core = client.CoreV1Api(api_client)

        async def poll() -> list[str]:
            while True:
                nodes = await core.list_node(label_selector=f"{POOL_LABEL}={pool_id}")
                ready = [
                    n.metadata.name
                    for n in nodes.items
                    if any(
                        c.type == "Ready" and c.status == "True" for c in n.status.conditions or ()
                    )
                ]
                if len(ready) >= want:
                    return ready
                await asyncio.sleep(0.05)

        return await asyncio.wait_for(poll(), 10)


class TestCsSdk:
    """The real CS SDK against the embedded ACK's CS emulator, with the info keys."""

    async def test_the_seed_pool_is_listed_with_the_info_keys(self, ack):
        """DescribeClusterNodePools through the agent's CS client shows np-cpu at desired 0,
        ACK's auto scaling off (no bounds from ACK); the bounds come from the info's
        managedPools, as they would from the agent's configuration."""
        (pool,) = await cs_pools(ack.info()).describe_pools()
        assert (pool.pool_id, pool.desired, pool.max_size) == ("np-cpu", 0, 0)
        assert not pool.ack_autoscaling
        assert ack.info()["cs"]["managedPools"] == "np-cpu:0:10"
        assert pool.instance_types == ("ecs.g7.xlarge",)

    async def test_a_desired_raise_brings_ready_nodes_and_is_journaled(self, ack):
        """ModifyClusterNodePool desired 2 → two Ready np-cpu nodes; the task ends in success."""
        pools = cs_pools(ack.info())
        task_id = await pools.set_desired("np-cpu", 2)
        assert task_id
        names = await ready_pool_nodes(ack.kubernetes_url, "np-cpu", 2)
        assert all(name.startswith("cn-hangzhou.") for name in names)

        async def task_done() -> str:
            while True:
                task = await pools.describe_task(task_id)
                if task.state != "running":
                    return task.state
                await asyncio.sleep(0.05)

        assert await asyncio.wait_for(task_done(), 10) == "success"
        (write,) = ack.cs_scale_requests()
        assert write.summary == {"nodepool_id": "np-cpu", "desired_size": 2}
        assert len(ack.cs_writes()) == 1

    async def test_a_wrong_secret_is_refused(self, ack):
        """The emulator checks signatures: a wrong secret is SignatureDoesNotMatch, not a write."""
        info = ack.info()
        info["cs"] = {**info["cs"], "accessKeySecret": "not-the-secret"}
        with pytest.raises(CloudCallError) as refused:
            await cs_pools(info).set_desired("np-cpu", 1)
        assert (refused.value.code, refused.value.status) == ("SignatureDoesNotMatch", 403)
        (write,) = ack.cs_writes()
        assert write.code == "SignatureDoesNotMatch"
        assert ack.cs_scale_requests() == []


class TestFunctionCompute:
    """The real FC SDK and HTTP trigger against the embedded FC emulator."""

    async def test_the_fc_sdk_gets_the_decide_reply_for_the_example_request(self, ack):
        """InvokeFunction with the example request answers what functions.decide answers."""
        request = seed_request()
        reply = await FunctionComputeDecider(fc_invoker(ack.info()), retry=NO_RETRY).decide(request)
        assert reply["schema"] == "decide/v1"
        assert json.dumps(reply, sort_keys=True) == json.dumps(decide(request), sort_keys=True)
        assert [(r.kind, r.error_type) for r in ack.fc_invocations()] == [("sync", None)]

    async def test_the_http_trigger_urls_answer_the_same(self, ack):
        """The info's httpTriggerUrl (FC 3.0, ACS3-signed) and httpTriggerUrlFc2 (FC 2.0, WSGI,
        FC-signed) are the same decision function behind signed triggers; unsigned is refused."""
        request = seed_request()
        info = ack.info()["fc"]
        credential = build_credential(
            access_key_id=info["accessKeyId"], access_key_secret=info["accessKeySecret"]
        )
        async with aiohttp.ClientSession(trust_env=False) as session:
            replies = [
                await HttpTriggerDecider(
                    session, info[url], signer=signer(credential), retry=NO_RETRY
                ).decide(request)
                for url, signer in (
                    ("httpTriggerUrl", fc3.TriggerSigner),
                    ("httpTriggerUrlFc2", TriggerSigner),
                )
            ]
            with pytest.raises(DecisionFailed) as unsigned:
                await HttpTriggerDecider(session, info["httpTriggerUrl"], retry=NO_RETRY).decide(
                    request
                )
        assert replies == [decide(request)] * 2
        assert unsigned.value.code.startswith("HTTP4")
        assert [r.kind for r in ack.fc_invocations()] == ["http", "http"]

    async def test_the_fc3_sdk_gets_the_decide_reply(self, ack):
        """FC 3.0 InvokeFunction by function name alone (no service) answers the same."""
        info = ack.info()
        fc = info["fc"]
        sdk = fc3.build_sdk_client(
            region_id=info["cs"]["regionId"], endpoint=fc["endpoint"], protocol="http",
            access_key_id=fc["accessKeyId"], access_key_secret=fc["accessKeySecret"],
        )  # fmt: skip
        invoker = fc3.FunctionInvoker(sdk, fc["function"], timeout_seconds=5.0)
        request = seed_request()
        reply = await FunctionComputeDecider(invoker, retry=NO_RETRY).decide(request)
        assert reply == decide(request)

    async def test_sts_keys_from_the_credentials_uri_are_accepted(self, ack):
        """The credentials endpoint issues STS keys the FC emulator verifies (the RRSA-like path)."""
        credential = CredentialClient(
            credential_models.Config(type="credentials_uri", credentials_uri=ack.credentials_uri)
        )
        invoker = fc_invoker(ack.info(), credential=credential)
        reply = json.loads(await invoker.invoke(json.dumps(seed_request()).encode()))
        assert reply["schema"] == "decide/v1"
