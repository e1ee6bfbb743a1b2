"""The ACS3-HMAC-SHA256 gateway check: what the real SDKs sign is accepted, and a wrong secret,
an unknown key, a stale date, a tampered body or path, a replayed nonce, a missing nonce, a
required or `x-acs-*` header left out of SignedHeaders, or a bad STS token is refused with the
gateway's code."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import aiohttp
import pytest
from alibabacloud_credentials.client import Client as CredentialClient
from alibabacloud_credentials.models import Config as CredentialConfig
from alibabacloud_cs20151215 import models as csm
from alibabacloud_cs20151215.client import Client as CsClient
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.utils import Utils, get_canonical_query_string
from darabonba.request import DaraRequest
from yarl import URL

from agent.sim.cloud.acs3 import EMPTY_BODY_SHA256, canonical_query
from agent.sim.cloud.credentials import (
    TEST_ACCESS_KEY_ID,
    TEST_ACCESS_KEY_SECRET,
    build_credentials_app,
    static_test_keys,
)
from agent.sim.cloud.cs_api import build_cs_app, writes_of
from tests.support.cloud.cloud_apis import (
    CLUSTER_ID,
    REGION_ID,
    CsHarness,
    cs_client,
    default_pools,
    desired_size_request,
    sdk_config,
)
from tests.support.cloud.memory_pools import InMemoryPools
from tests.support.cloud.sdk_wire import sdk_signed_headers
from tests.support.cloud.serving import serve


async def _list_pools(client: CsClient) -> list[str]:
    reply = await client.describe_cluster_node_pools_async(
        CLUSTER_ID, csm.DescribeClusterNodePoolsRequest()
    )
    return [p.nodepool_info.nodepool_id for p in reply.body.nodepools]


async def _refusal(client: CsClient) -> tuple[int, str]:
    with pytest.raises(ClientException) as caught:
        await _list_pools(client)
    return caught.value.status_code, caught.value.code


async def test_wrong_secret_is_refused(cs: CsHarness) -> None:
    """A request signed with the wrong secret gets SignatureDoesNotMatch."""
    assert await _refusal(cs.client(secret="not-the-secret")) == (403, "SignatureDoesNotMatch")


async def test_unknown_access_key_is_refused(cs: CsHarness) -> None:
    """An AccessKey id the gateway does not know gets InvalidAccessKeyId.NotFound (a 404 on POP)."""
    assert await _refusal(cs.client(key_id="LTAI5tNobodyHasThisKey000")) == (
        404,
        "InvalidAccessKeyId.NotFound",
    )


@pytest.mark.parametrize("skew_minutes", [-16, 16])
async def test_date_outside_fifteen_minutes_is_refused(cs: CsHarness, skew_minutes: int) -> None:
    """x-acs-date more than 15 minutes from the gateway's clock either way gets InvalidTimeStamp.Expired."""
    cs.clock.advance(skew_minutes * 60)
    assert await _refusal(cs.client()) == (400, "InvalidTimeStamp.Expired")


async def test_date_within_fifteen_minutes_is_accepted(cs: CsHarness) -> None:
    """Clock drift under 15 minutes is tolerated."""
    cs.clock.advance(14 * 60)
    assert await _list_pools(cs.client()) == ["np-cpu", "np-gpu"]


async def _send_signed(
    cs: CsHarness,
    *,
    signed_body: bytes,
    sent_body: bytes,
    signed_pool: str = "np-cpu",
    sent_pool: str = "np-cpu",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str]]:
    """PUT a ModifyClusterNodePool signed by the SDK's signer for one body/path, sending another."""
    signed_path = f"/clusters/{CLUSTER_ID}/nodepools/{signed_pool}"
    headers = headers or sdk_signed_headers(
        method="PUT",
        pathname=signed_path,
        query={},
        body=signed_body,
        host=cs.endpoint,
        action="ModifyClusterNodePool",
        key_id=TEST_ACCESS_KEY_ID,
        secret=TEST_ACCESS_KEY_SECRET,
    )
    url = URL(f"http://{cs.endpoint}/clusters/{CLUSTER_ID}/nodepools/{sent_pool}", encoded=True)
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        session.put(url, data=sent_body, headers=headers) as reply,
    ):
        return reply.status, await reply.json()


def _desired(n: int) -> bytes:
    return json.dumps({"scaling_group": {"desired_size": n}}).encode()


async def test_raw_request_signed_by_the_sdk_signer_is_accepted(cs: CsHarness) -> None:
    """Control for the tamper tests: the same raw path, untampered, goes through."""
    status, body = await _send_signed(cs, signed_body=_desired(2), sent_body=_desired(2))
    assert status == 200 and body["task_id"]
    assert cs.pools.describe_pool("np-cpu").desired == 2


async def test_tampered_body_is_refused(cs: CsHarness) -> None:
    """A body changed after signing no longer matches x-acs-content-sha256."""
    status, body = await _send_signed(cs, signed_body=_desired(2), sent_body=_desired(20))
    assert (status, body["Code"]) == (403, "SignatureDoesNotMatch")
    assert body["RequestId"] and body["Message"]
    assert cs.pools.describe_pool("np-cpu").desired == 1


async def test_request_sent_to_another_path_is_refused(cs: CsHarness) -> None:
    """The path is part of the canonical request: redirecting a signed call breaks it."""
    status, body = await _send_signed(
        cs, signed_body=_desired(2), sent_body=_desired(2), sent_pool="np-gpu"
    )
    assert (status, body["Code"]) == (403, "SignatureDoesNotMatch")


async def test_replayed_request_is_refused(cs: CsHarness) -> None:
    """A second request with the same signature nonce gets SignatureNonceUsed."""
    headers = sdk_signed_headers(
        method="PUT",
        pathname=f"/clusters/{CLUSTER_ID}/nodepools/np-cpu",
        query={},
        body=_desired(2),
        host=cs.endpoint,
        action="ModifyClusterNodePool",
        key_id=TEST_ACCESS_KEY_ID,
        secret=TEST_ACCESS_KEY_SECRET,
    )
    first, _ = await _send_signed(cs, signed_body=b"", sent_body=_desired(2), headers=headers)
    second, body = await _send_signed(cs, signed_body=b"", sent_body=_desired(2), headers=headers)
    assert (first, second, body["Code"]) == (200, 400, "SignatureNonceUsed")


async def test_sts_credentials_from_a_credentials_uri_are_accepted(cs: CsHarness) -> None:
    """The production credential chain (credentials URI → STS) signs calls the emulator accepts."""
    async with serve(build_credentials_app(cs.keys, now=cs.clock)) as creds_endpoint:
        credential = CredentialClient(
            CredentialConfig(
                type="credentials_uri", credentials_uri=f"http://{creds_endpoint}/credentials"
            )
        )
        client = CsClient(sdk_config(cs.endpoint, key_id=None, secret=None, credential=credential))
        assert await _list_pools(client) == ["np-cpu", "np-gpu"]
        assert (await credential.get_credential_async()).access_key_id.startswith("STS.")


async def test_sts_token_mismatch_and_expiry_are_refused(cs: CsHarness) -> None:
    """An STS key needs its own token, and stops working when the token expires."""
    sts = cs.keys.issue(now=cs.clock(), ttl=600)

    def client(token: str) -> CsClient:
        config = sdk_config(
            cs.endpoint,
            key_id=sts.access_key_id,
            secret=sts.access_key_secret,
            security_token=token,
        )
        return CsClient(config)

    assert await _list_pools(client(sts.security_token)) == ["np-cpu", "np-gpu"]
    assert await _refusal(client("forged-token")) == (
        400,
        "InvalidSecurityToken.MismatchWithAccessKey",
    )
    cs.clock.advance(601)
    assert await _refusal(client(sts.security_token)) == (400, "InvalidSecurityToken.Expired")


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"nodepool_id": "np-cpu", "pageSize": "100"},
        {"instance_ids": '["i-1","i-2"]', "drain_node": "True", "empty": ""},
        {"name": "a b+c/d~e*f", "unicode": "节点池", "z": "1", "a": "2"},
    ],
)
def test_canonical_query_matches_the_sdk_signer(query: dict[str, str]) -> None:
    """The verifier canonicalises a decoded query exactly as the SDK does before signing."""
    decoded = list(URL(f"http://h/p?{urlencode(query)}").query.items())
    assert canonical_query(decoded) == get_canonical_query_string(query)


async def test_dates_are_checked_against_wall_time_not_the_simulation_clock() -> None:
    """A sped-up simulation clock hours ahead does not expire the SDK's wall-clock x-acs-date."""
    sim_now = time.time() + 3 * 3600
    pools = InMemoryPools(
        default_pools(), now=lambda: sim_now, cluster_id=CLUSTER_ID, region_id=REGION_ID
    )
    app = build_cs_app(pools, keys=static_test_keys(), now=lambda: sim_now)
    async with serve(app) as endpoint:
        await cs_client(endpoint).modify_cluster_node_pool_async(
            CLUSTER_ID,
            "np-cpu",
            desired_size_request(2),
        )
    assert [(w.code, w.time) for w in writes_of(app)] == [(None, sim_now)]


# --- what the gateway demands beyond a matching signature (issue 12: each was accepted) --------

POOLS_PATH = f"/clusters/{CLUSTER_ID}/nodepools"


def _hand_signed(
    cs: CsHarness,
    *,
    sign: tuple[str, ...],
    drop: tuple[str, ...] = (),
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """A DescribeClusterNodePools GET signed by the SDK's own `get_authorization` over only the
    headers named in `sign`, then sent without the headers in `drop` and with `extra` added."""
    headers = {
        "host": cs.endpoint,
        "x-acs-version": "2015-12-15",
        "x-acs-action": "DescribeClusterNodePools",
        "x-acs-date": Utils.get_timestamp(),
        "x-acs-signature-nonce": Utils.get_nonce(),
        "x-acs-content-sha256": EMPTY_BODY_SHA256,
        "accept": "application/json",
    }
    request = DaraRequest()
    request.method, request.pathname, request.query = "GET", POOLS_PATH, {}
    request.headers = {k: v for k, v in headers.items() if k in sign}
    authorization = Utils.get_authorization(
        request, "ACS3-HMAC-SHA256", EMPTY_BODY_SHA256, TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET
    )
    sent = {k: v for k, v in headers.items() if k not in drop}
    return {**sent, **(extra or {}), "Authorization": authorization}


async def _get(cs: CsHarness, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        session.get(f"http://{cs.endpoint}{POOLS_PATH}", headers=headers) as reply,
    ):
        return reply.status, await reply.json(content_type=None)


EVERYTHING = (
    "host",
    "x-acs-version",
    "x-acs-action",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-content-sha256",
    "accept",
)


async def test_a_request_signed_over_every_header_is_accepted(cs: CsHarness) -> None:
    """Control for the refusals below: the hand-built request, signed as the SDK signs."""
    status, body = await _get(cs, _hand_signed(cs, sign=EVERYTHING))
    assert status == 200, body


async def test_a_request_without_a_nonce_is_refused_and_cannot_be_replayed(
    cs: CsHarness,
) -> None:
    """No x-acs-signature-nonce: IncompleteSignature, every one of 20 replays too (before, 20 of
    20 were accepted)."""
    signed = tuple(h for h in EVERYTHING if h != "x-acs-signature-nonce")
    headers = _hand_signed(cs, sign=signed, drop=("x-acs-signature-nonce",))
    replies = [await _get(cs, headers) for _ in range(20)]
    assert {(status, body["Code"]) for status, body in replies} == {(400, "IncompleteSignature")}
    assert "x-acs-signature-nonce" in replies[0][1]["Message"]


@pytest.mark.parametrize(
    "left_out", ["host", "x-acs-date", "x-acs-content-sha256", "x-acs-signature-nonce"]
)
async def test_each_required_header_must_be_signed(cs: CsHarness, left_out: str) -> None:
    """host, x-acs-date, x-acs-content-sha256 and x-acs-signature-nonce are sent but left out of
    SignedHeaders: IncompleteSignature naming it."""
    headers = _hand_signed(cs, sign=tuple(h for h in EVERYTHING if h != left_out))
    status, body = await _get(cs, headers)
    assert (status, body["Code"]) == (400, "IncompleteSignature")
    assert left_out in body["Message"]


async def test_a_host_only_signature_is_refused_even_with_its_date_changed(cs: CsHarness) -> None:
    """Signed over `host` alone, then its x-acs-date moved: refused (before, accepted)."""
    headers = _hand_signed(cs, sign=("host",))
    headers["x-acs-date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 600))
    status, body = await _get(cs, headers)
    assert (status, body["Code"]) == (400, "IncompleteSignature")


async def test_an_unsigned_acs_header_is_refused(cs: CsHarness) -> None:
    """Every x-acs-* header sent must be signed: one added after signing is refused."""
    headers = _hand_signed(cs, sign=EVERYTHING, extra={"x-acs-accesskey-id": TEST_ACCESS_KEY_ID})
    status, body = await _get(cs, headers)
    assert (status, body["Code"]) == (400, "IncompleteSignature")
    assert "x-acs-accesskey-id" in body["Message"]


async def test_a_signed_date_cannot_be_changed(cs: CsHarness) -> None:
    """x-acs-date is signed: moving it breaks the signature."""
    headers = _hand_signed(cs, sign=EVERYTHING)
    headers["x-acs-date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
    status, body = await _get(cs, headers)
    assert (status, body["Code"]) == (403, "SignatureDoesNotMatch")


async def test_a_nonce_is_refused_for_the_whole_validity_window(cs: CsHarness) -> None:
    """A nonce seen 29 minutes ago is still refused (a date may be 15 minutes either side)."""
    headers = _hand_signed(cs, sign=EVERYTHING)
    assert (await _get(cs, headers))[0] == 200
    cs.clock.advance(14 * 60)  # the date is still within 15 minutes of the gateway's clock
    status, body = await _get(cs, headers)
    assert (status, body["Code"]) == (400, "SignatureNonceUsed")
