"""Helpers that reach below the SDK's typed models, still through its own signer and transport."""
from __future__ import annotations

from typing import Any

from alibabacloud_tea_openapi.client import Client as OpenApiClient
from alibabacloud_tea_openapi.utils_models import OpenApiRequest, Params
from darabonba.runtime import RuntimeOptions


async def raw_cs_json(client: OpenApiClient, *, action: str, pathname: str, query: dict[str, str] | None = None) -> Any:
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
        return [p for i, (s, g) in enumerate(zip(sent, got, strict=True)) for p in missing_from(s, g, f"{path}[{i}]")]
    return [] if sent == got else [path]
