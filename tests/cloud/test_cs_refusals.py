"""Refusals and injected faults of the CS emulator, as the real SDK surfaces them: wrong cluster,
unknown pool, a target above max, throttling and 5xx."""

from __future__ import annotations

import pytest
from alibabacloud_cs20151215 import models as csm
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException

from agent.sim.cloud.cs_api import scale_requests_of, writes_of
from tests.support.cloud.cloud_apis import CLUSTER_ID, CsHarness, desired_size_request


async def test_wrong_cluster_is_not_found(cs: CsHarness) -> None:
    """A cluster id the service does not own gets 404 ErrorClusterNotFound."""
    with pytest.raises(ClientException) as caught:
        await cs.client().describe_cluster_node_pools_async(
            "c-elsewhere", csm.DescribeClusterNodePoolsRequest()
        )
    assert (caught.value.status_code, caught.value.code) == (404, "ErrorClusterNotFound")
    assert caught.value.request_id


async def test_unknown_pool_is_not_found(cs: CsHarness) -> None:
    """Writing to a pool that does not exist gets 404 and changes nothing."""
    with pytest.raises(ClientException) as caught:
        await cs.client().modify_cluster_node_pool_async(
            CLUSTER_ID, "np-missing", desired_size_request(2)
        )
    assert (caught.value.status_code, caught.value.code) == (404, "ErrorNodePoolNotFound")
    assert scale_requests_of(cs.app) == []


async def test_target_above_max_is_refused(cs: CsHarness) -> None:
    """desired_size above the pool's max_instances is a 400 and the pool keeps its target."""
    with pytest.raises(ClientException) as caught:
        await cs.client().modify_cluster_node_pool_async(
            CLUSTER_ID, "np-gpu", desired_size_request(5)
        )
    assert (caught.value.status_code, caught.value.code) == (
        400,
        "InvalidParameter",
    )
    with pytest.raises(ClientException):
        await cs.client().scale_cluster_node_pool_async(
            CLUSTER_ID, "np-gpu", csm.ScaleClusterNodePoolRequest(count=5)
        )
    assert cs.pools.describe_pool("np-gpu").desired == 0


async def test_throttling_surfaces_as_a_client_error(cs: CsHarness) -> None:
    """cs_throttle_ratio makes calls fail with 400 Throttling.User, journaled like any write."""
    cs.faults.cs_throttle_ratio = 1.0
    with pytest.raises(ClientException) as caught:
        await cs.client().modify_cluster_node_pool_async(
            CLUSTER_ID, "np-cpu", desired_size_request(3)
        )
    assert (caught.value.status_code, caught.value.code) == (400, "Throttling.User")
    assert "user flow control" in caught.value.message
    assert [(w.action, w.code) for w in writes_of(cs.app)] == [
        ("ModifyClusterNodePool", "Throttling.User")
    ]
    cs.faults.cs_throttle_ratio = 0.0
    await cs.client().modify_cluster_node_pool_async(CLUSTER_ID, "np-cpu", desired_size_request(3))
    assert cs.pools.describe_pool("np-cpu").desired == 3


async def test_service_errors_surface_as_server_errors(cs: CsHarness) -> None:
    """cs_error_ratio makes calls fail with 503 ServiceUnavailable (a ServerException in the SDK)."""
    cs.faults.cs_error_ratio = 1.0
    with pytest.raises(ServerException) as caught:
        await cs.client().describe_task_info_async("T-whatever")
    assert (caught.value.status_code, caught.value.code) == (503, "ServiceUnavailable")


async def test_faults_apply_only_after_the_signature_check(cs: CsHarness) -> None:
    """A badly signed call is refused for its signature even while faults are on."""
    cs.faults.cs_error_ratio = 1.0
    with pytest.raises(ClientException) as caught:
        await cs.client(secret="wrong").describe_task_info_async("T-whatever")
    assert caught.value.code == "SignatureDoesNotMatch"
