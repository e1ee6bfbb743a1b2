"""The remote deciders as configured: `--decider fc` (InvokeFunction through the FC SDK) and
`--decider http` (a POST to the HTTP trigger, signed), each in the form of the configured
Function Compute API version — 3.0 by default (alibabacloud-fc20230330, functions by name,
ACS3-signed triggers) or 2.0 (alibabacloud-fc-open20210406, a service holding the function,
`FC ak:signature` triggers)."""

from __future__ import annotations

from typing import Any

import aiohttp

from agent.app.settings import AgentConfig
from agent.clients import fc, fc3
from agent.decide.deciders import FunctionComputeDecider, HttpTriggerDecider, RetrySettings


def fc_decider(
    config: AgentConfig,
    keys: dict[str, str],
    *,
    endpoint: str,
    protocol: str,
    retry: RetrySettings,
) -> FunctionComputeDecider:
    """InvokeFunction (Sync) on the configured function, through the version's official SDK.
    `endpoint`/`protocol` are `config.fc_endpoint` split as the SDKs take them."""
    invoker: fc.Invoker
    sdk_arguments: dict[str, Any] = dict(
        region_id=config.region,
        endpoint=endpoint,
        protocol=protocol,
        read_timeout_seconds=config.decider_timeout_seconds,
        access_key_id=keys.get("access_key_id"),
        access_key_secret=keys.get("access_key_secret"),
    )
    if config.fc_api_version == "2.0":
        sdk2 = fc.build_sdk_client(**sdk_arguments)
        invoker = fc.FunctionInvoker(
            sdk2,
            fc.FunctionRef(
                config.fc_service or "", config.fc_function or "", config.fc_qualifier or ""
            ),
            timeout_seconds=config.decider_timeout_seconds,
        )
    else:
        sdk3 = fc3.build_sdk_client(**sdk_arguments)
        invoker = fc3.FunctionInvoker(
            sdk3,
            config.fc_function or "",
            qualifier=config.fc_qualifier or "",
            timeout_seconds=config.decider_timeout_seconds,
        )
    return FunctionComputeDecider(invoker, retry=retry)


def http_decider(
    config: AgentConfig,
    keys: dict[str, str],
    session: aiohttp.ClientSession,
    *,
    retry: RetrySettings,
) -> HttpTriggerDecider:
    """POSTs to the HTTP trigger, signed as the version's triggers with auth type function
    expect (the deploy templates create that kind; an anonymous trigger does not need it)."""
    credential = fc.build_credential(
        access_key_id=keys.get("access_key_id"), access_key_secret=keys.get("access_key_secret")
    )
    signer: fc.RequestSigner
    if config.fc_api_version == "2.0":
        signer = fc.TriggerSigner(credential)
    else:
        signer = fc3.TriggerSigner(credential)
    return HttpTriggerDecider(
        session,
        config.http_url or "",
        timeout_seconds=config.decider_timeout_seconds,
        retry=retry,
        signer=signer,
    )
