"""The CS node-pool client through the real alibabacloud-cs20151215 SDK against the CS emulator."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from agent.clients.cs import CloudCallError, NodePoolClient, RetryPolicy
from agent.sim.cloud.credentials import TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET, static_test_keys
from agent.sim.cloud.cs_api import build_cs_app, writes_of
from agent.sim.faults import FaultPlan
from tests.support.builders import pool_view
from tests.support.cloud.cloud_apis import agent_cs_sdk
from tests.support.cloud.cloud_doubles import ScriptedPools
from tests.support.cloud.serving import serve

FAST = RetryPolicy(
    attempts=3, base_delay_seconds=0.01, max_delay_seconds=0.02, call_timeout_seconds=5.0
)


@dataclass
class Cs:
    client: NodePoolClient
    sdk: Any
    pools: ScriptedPools
    app: web.Application
    faults: FaultPlan


@pytest.fixture
async def cs() -> AsyncIterator[Cs]:
    pools = ScriptedPools(
        [
            pool_view("np-cpu", desired=1, max_size=20),
            pool_view("np-gpu", instance_type="ecs.gn7i-c8g1.2xlarge"),
        ]
    )
    faults = FaultPlan()
    app = build_cs_app(pools, keys=static_test_keys(), faults=faults, now=time.time)
    async with serve(app) as endpoint:
        sdk = agent_cs_sdk(endpoint)
        yield Cs(
            NodePoolClient(sdk, "c-test", retry=FAST, rng=random.Random(1)), sdk, pools, app, faults
        )


def _puts(app: web.Application) -> int:
    return sum(1 for w in writes_of(app) if w.method == "PUT")


class TestReadsAndWrites:
    """NodePoolClient maps the CS SDK's pools, desired writes and tasks."""

    async def test_describe_pools_maps_the_sdk_shape(self, cs: Cs) -> None:
        """nodepool_info / scaling_group / auto_scaling / status / kubernetes_config become PoolInfo."""
        pools = {p.pool_id: p for p in await cs.client.describe_pools()}
        cpu = pools["np-cpu"]
        assert (cpu.name, cpu.instance_types, cpu.desired, cpu.min_size, cpu.max_size) == (
            "cpu",
            ("ecs.g7.xlarge",),
            1,
            0,
            20,
        )
        assert cpu.labels["alibabacloud.com/nodepool-id"] == "np-cpu"
        assert (cpu.total_nodes, cpu.ready_nodes) == (1, 1)
        assert pools["np-gpu"].instance_types == ("ecs.gn7i-c8g1.2xlarge",)

    async def test_set_desired_is_absolute_and_returns_the_task(self, cs: Cs) -> None:
        """ModifyClusterNodePool carries desired_size; the emulator sees the absolute target."""
        task_id = await cs.client.set_desired("np-cpu", 6)
        assert task_id
        assert cs.pools.set_desired_calls == [("np-cpu", 6)]
        assert (await cs.client.describe_pool("np-cpu")).desired == 6
        assert [w.summary.get("desired_size") for w in writes_of(cs.app)] == [6]

    async def test_task_outcome_is_read(self, cs: Cs) -> None:
        """DescribeTaskInfo's running / fail with its error come back as TaskState."""
        task_id = await cs.client.set_desired("np-cpu", 3)
        assert task_id is not None
        assert (await cs.client.describe_task(task_id)).state == "running"
        cs.pools.fail_tasks("np-cpu", "OperationDenied.NoStock: sold out")
        failed = await cs.client.describe_task(task_id)
        assert failed.state == "fail"
        assert failed.error is not None and "NoStock" in failed.error


class TestRetries:
    """Throttling, server errors and timeouts are retried; client errors are final."""

    async def test_throttling_is_retried_until_attempts_run_out(self, cs: Cs) -> None:
        """Throttling.User (a 400) is retryable: every attempt reaches the API, then it gives up."""
        cs.faults.cs_throttle_ratio = 1.0
        heard: list[tuple[str, str]] = []
        client = NodePoolClient(
            cs.sdk, "c-test", retry=FAST, on_attempt=lambda a, o: heard.append((a, o))
        )
        with pytest.raises(CloudCallError) as caught:
            await client.set_desired("np-cpu", 4)
        assert caught.value.code == "Throttling.User" and caught.value.retryable
        assert _puts(cs.app) == FAST.attempts
        assert heard == [("ModifyClusterNodePool", "Throttling.User")] * FAST.attempts
        assert cs.pools.set_desired_calls == []

    async def test_throttling_then_success(self, cs: Cs) -> None:
        """A throttle that clears is invisible to the caller apart from the counter."""
        cs.faults.cs_throttle_ratio = 0.5
        client = NodePoolClient(
            cs.sdk, "c-test", retry=RetryPolicy(attempts=12, base_delay_seconds=0.001)
        )
        for target in (2, 3, 4, 5):
            await client.set_desired("np-cpu", target)
        assert (await client.describe_pool("np-cpu")).desired == 5
        assert client.calls_by_outcome.get("ModifyClusterNodePool Throttling.User", 0) >= 1

    async def test_server_errors_are_retried(self, cs: Cs) -> None:
        """503 ServiceUnavailable is retried."""
        cs.faults.cs_error_ratio = 1.0
        with pytest.raises(CloudCallError) as caught:
            await cs.client.set_desired("np-cpu", 4)
        assert caught.value.status == 503 and caught.value.retryable
        assert _puts(cs.app) == FAST.attempts

    async def test_client_errors_are_not_retried(self, cs: Cs) -> None:
        """A 4xx other than throttling (desired above max) fails at once: one write on the wire."""
        with pytest.raises(CloudCallError) as caught:
            await cs.client.set_desired("np-cpu", 21)
        assert caught.value.status == 400 and not caught.value.retryable
        assert caught.value.code == "InvalidParameter"
        assert _puts(cs.app) == 1

    async def test_unknown_pool_is_not_retried(self, cs: Cs) -> None:
        """404 ErrorNodePoolNotFound is final."""
        with pytest.raises(CloudCallError) as caught:
            await cs.client.describe_pool("np-nope")
        assert caught.value.status == 404 and not caught.value.retryable

    async def test_slow_calls_time_out_and_are_retried(self, cs: Cs) -> None:
        """A call slower than the per-call timeout is abandoned and tried again."""
        cs.faults.cs_latency_seconds = 2.0
        client = NodePoolClient(
            cs.sdk,
            "c-test",
            retry=RetryPolicy(attempts=2, base_delay_seconds=0.01, call_timeout_seconds=0.2),
        )
        with pytest.raises(CloudCallError) as caught:
            await client.describe_pools()
        assert caught.value.code == "Timeout" and caught.value.retryable
        assert client.calls_by_outcome == {"DescribeClusterNodePools Timeout": 2}


class TestSecrets:
    """The access key secret never reaches logs or errors."""

    async def test_secret_never_reaches_logs_or_errors(
        self, cs: Cs, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Successful, throttled, refused and unauthenticated calls log no AccessKey secret."""
        caplog.set_level(logging.DEBUG)
        await cs.client.describe_pools()
        cs.faults.cs_throttle_ratio = 1.0
        errors: list[CloudCallError] = []
        with pytest.raises(CloudCallError) as throttled:
            await cs.client.set_desired("np-cpu", 4)
        errors.append(throttled.value)
        cs.faults.cs_throttle_ratio = 0.0
        async with serve(
            build_cs_app(cs.pools, keys={TEST_ACCESS_KEY_ID: "another-secret"}, now=time.time)
        ) as ep:
            wrong = agent_cs_sdk(ep)
            with pytest.raises(CloudCallError) as refused:
                await NodePoolClient(wrong, "c-test", retry=FAST).describe_pools()
        errors.append(refused.value)
        assert refused.value.status is not None and 400 <= refused.value.status < 500
        assert caplog.records, "the failures were logged"
        assert TEST_ACCESS_KEY_SECRET not in caplog.text
        for error in errors:
            assert TEST_ACCESS_KEY_SECRET not in str(error)
