"""Helpers that reach below the SDK's typed models, still through its own signer and transport."""

from __future__ import annotations

from typing import Any

from alibabacloud_tea_openapi.client import Client as OpenApiClient
from alibabacloud_tea_openapi.utils import Utils
from alibabacloud_tea_openapi.utils_models import OpenApiRequest, Params
from darabonba.request import DaraRequest
from darabonba.runtime import RuntimeOptions


async def raw_cs_json(
    client: OpenApiClient, *, action: str, pathname: str, query: dict[str, str] | None = None
) -> Any:
    """GET a CS path with the SDK's generic `call_api` and return the JSON body as it arrived."""
    params = Params(
        action=action,
        version="2015-12-15",
        protocol="HTTPS",
        pathname=pathname,
        method="GET",
        auth_type="AK",
        style="ROA",
        req_body_type="json",
        body_type="json",
    )
    reply = await client.call_api_async(params, OpenApiRequest(query=query or {}), RuntimeOptions())
    return reply["body"]


def missing_from(sent: Any, got: Any, path: str = "$") -> list[str]:
    """Paths of everything in `sent` that `got` lacks or changed (extra keys in `got` are fine)."""
    if isinstance(sent, dict):
        if not isinstance(got, dict):
            return [path]
        return [p for k, v in sent.items() for p in missing_from(v, got.get(k), f"{path}.{k}")]
    if isinstance(sent, list):
        if not isinstance(got, list) or len(got) != len(sent):
            return [path]
        return [
            p
            for i, (s, g) in enumerate(zip(sent, got, strict=True))
            for p in missing_from(s, g, f"{path}[{i}]")
        ]
    return [] if sent == got else [path]


def sdk_signed_headers(
    *,
    method: str,
    pathname: str,
    query: dict[str, str],
    body: bytes,
    host: str,
    action: str,
    key_id: str,
    secret: str,
) -> dict[str, str]:
    """Headers for a CS call signed by the SDK's own signer, so a test can alter what it sends."""
    request = DaraRequest()
    request.method = method
    request.pathname = pathname
    request.query = dict(query)
    payload = Utils.hash(body, "ACS3-HMAC-SHA256").hex()
    request.headers = {
        "host": host,
        "x-acs-version": "2015-12-15",
        "x-acs-action": action,
        "user-agent": Utils.get_user_agent(None),
        "x-acs-date": Utils.get_timestamp(),
        "x-acs-signature-nonce": Utils.get_nonce(),
        "accept": "application/json",
        "content-type": "application/json; charset=utf-8",
        "x-acs-content-sha256": payload,
    }
    request.headers["Authorization"] = Utils.get_authorization(
        request, "ACS3-HMAC-SHA256", payload, key_id, secret
    )
    return dict(request.headers)
