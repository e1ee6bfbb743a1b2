"""DescribeClusterUserKubeconfig through the official CS SDK against the CS emulator: a verified
caller gets a kubeconfig for the simulated API server and its expiration; the temporary duration
is bounded as the request model documents; an unknown AccessKey gets nothing."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import yaml

from agent.agentless.kubeconfig_cache import expiry_of
from agent.clients.cs import CloudCallError, NodePoolClient, RetryPolicy, build_sdk_client
from tests.support.sim_pools import PoolCluster, cluster_with_a_pool

CLUSTER_ID = "c-kubeconfig"


@pytest.fixture
async def box() -> AsyncIterator[PoolCluster]:
    async with cluster_with_a_pool(CLUSTER_ID) as opened:
        yield opened


def client(box: PoolCluster, *, secret: str | None = None) -> NodePoolClient:
    from agent.sim.cloud.credentials import TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET

    sdk = build_sdk_client(
        region_id="cn-hangzhou",
        endpoint=box.cs_endpoint,
        protocol="http",
        access_key_id=TEST_ACCESS_KEY_ID,
        access_key_secret=secret or TEST_ACCESS_KEY_SECRET,
    )
    return NodePoolClient(sdk, CLUSTER_ID, retry=RetryPolicy(attempts=1))


async def test_a_temporary_kubeconfig_points_at_the_api_server_and_expires(
    box: PoolCluster,
) -> None:
    """Asked for 60 minutes: the kubeconfig's cluster is the simulated API server, and CS's
    expiration is an hour from now on the wall clock."""
    before = time.time()
    issued = await client(box).describe_user_kubeconfig(temporary_duration_minutes=60)
    config = yaml.safe_load(issued.config)
    assert config["clusters"][0]["cluster"]["server"] == box.cluster.url
    expires = expiry_of(issued.expiration)
    assert expires is not None and before + 3600 - 1 <= expires <= time.time() + 3600


@pytest.mark.parametrize("minutes", [14, 4321])
async def test_a_duration_out_of_range_is_refused(box: PoolCluster, minutes: int) -> None:
    """15..4320 minutes, as the SDK's request model documents."""
    with pytest.raises(CloudCallError) as refused:
        await client(box).describe_user_kubeconfig(temporary_duration_minutes=minutes)
    assert refused.value.status == 400 and refused.value.code == "InvalidParameter"


async def test_a_caller_with_a_wrong_secret_gets_no_kubeconfig(box: PoolCluster) -> None:
    """RAM authorises the call: a signature that does not verify is refused before any reply."""
    with pytest.raises(CloudCallError) as refused:
        await client(box, secret="not-the-secret").describe_user_kubeconfig()
    assert refused.value.status is not None and refused.value.status >= 400
