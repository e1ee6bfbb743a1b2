"""The Function Compute 3.0 client: the only module that imports alibabacloud_fc20230330.

FC 3.0 (API 2023-03-30) has no services: a function is addressed by name (and an optional
version or alias). InvokeFunction (`POST /2023-03-30/functions/{name}/invocations`, Sync) goes
through the official SDK, which signs with ACS3-HMAC-SHA256 (tea-openapi's `do_request`); HTTP
triggers with signature authentication take the same algorithm in the form FC's documentation
shows ("Configure signature authentication for HTTP triggers"), made here by `TriggerSigner`.
What FC 2.0 and 3.0 share (errors, credentials, the shapes the deciders use) is in
`agent.clients.fc`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

from alibabacloud_fc20230330 import models as fc3_models
from alibabacloud_fc20230330.client import Client as Fc3SdkClient
from alibabacloud_tea_openapi.utils import Utils as SignatureUtils
from darabonba.request import DaraRequest
from darabonba.runtime import RuntimeOptions

from agent.clients.fc import (
    CredentialSnapshot,
    InvocationError,
    as_invocation_error,
    content_md5,
    excerpt,
    header_value,
    sdk_config,
)
from agent.clients.timeouts import within

# FC 3.0's documented endpoints (FC 3.0 developer reference, "Endpoints") have the same form as
# 2.0's, which `sdk_config` defaults to; the SDK's own default (`fcv3.<region>.aliyuncs.com`) is
# not among them, so an endpoint is always passed explicitly.
SIGNATURE_ALGORITHM = "ACS3-HMAC-SHA256"


def build_sdk_client(**options: Any) -> Fc3SdkClient:
    """The official FC 3.0 client (options: `agent.clients.fc.sdk_config`'s)."""
    return Fc3SdkClient(sdk_config(**options))


class FunctionInvoker:
    """Synchronous invocations of one FC 3.0 function over an injected SDK client.

    `qualifier` is a version or alias; "" invokes LATEST (the SDK then sends no `qualifier`).
    """

    def __init__(
        self,
        sdk: Fc3SdkClient,
        function: str,
        *,
        qualifier: str = "",
        timeout_seconds: float = 15.0,
    ) -> None:
        self._sdk = sdk
        self._function = function
        self._qualifier = qualifier
        self._timeout = timeout_seconds

    @property
    def function(self) -> str:
        return self._function

    async def invoke(self, payload: bytes) -> bytes:
        # The SDK reads the body with `Stream.read_as_bytes_async`, which takes bytes as they are.
        request = fc3_models.InvokeFunctionRequest(body=payload, qualifier=self._qualifier or None)
        headers = fc3_models.InvokeFunctionHeaders(
            x_fc_invocation_type="Sync", x_fc_log_type="None"
        )
        # No SDK retries: the decider's retry and circuit breaker own that policy.
        runtime = RuntimeOptions(autoretry=False)
        try:
            response = await within(
                self._timeout,
                self._sdk.invoke_function_with_options_async(
                    self._function, request, headers, runtime
                ),
            )
        except asyncio.TimeoutError:
            raise InvocationError(
                "Timeout", None, f"no reply within {self._timeout}s", retryable=True
            ) from None
        except Exception as exc:
            raise as_invocation_error(exc) from None
        body = _read_body(response.body)
        error_type = header_value(response.headers or {}, "x-fc-error-type")
        if error_type:
            # The function ran and raised: the runtime reports it in the reply's headers.
            raise InvocationError(error_type, response.status_code, excerpt(body), retryable=False)
        return body


def _read_body(body: Any) -> bytes:
    # body_type "binary": the async transport has read it already and wraps it in a BytesIO.
    if body is None:
        return b""
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    return bytes(body.read())


class TriggerSigner:
    """Signs a request to an FC 3.0 HTTP trigger with authType `function`.

    The form is the documented caller's (help.aliyun.com, "Configure signature authentication
    for HTTP triggers"): ACS3-HMAC-SHA256 over the method, the URL path (`$` as `%24`), the query
    (first value of each key), the `x-acs-date` header and — with STS credentials — the
    `x-acs-security-token` header, with an empty string as the hashed payload. The signing
    function is tea-openapi's `Utils.get_authorization`, the same algorithm as the documented
    `alibabacloud_openapi_util.Client.get_authorization` (both sources read).

    Two more signed headers, which a gateway verifying the SignedHeaders list (as ACS3 is
    verified) checks like any other: `x-acs-signature-nonce`, new for every request, so a replay
    can be told from a retry; and `content-md5`, the body's digest (RFC 1864; FC's own signature
    covers the body this way), so a changed body no longer matches. The body is not hashed into
    the payload: the documented form's payload is empty, and whether the trigger's gateway would
    read `x-acs-content-sha256` as the payload is not documented.
    """

    def __init__(self, credential: Any, *, clock: Any = time.time) -> None:
        self._credential = credential
        self._clock = clock

    async def sign(
        self, method: str, url: str, headers: dict[str, str], body: bytes
    ) -> dict[str, str]:
        # Reading the credential may refresh it over the network (RRSA, credentials URI): off the loop.
        return await asyncio.to_thread(self._sign, method, url, headers, body)

    def _sign(self, method: str, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        snapshot = CredentialSnapshot(self._credential.get_credential())
        signed = {
            "x-acs-date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._clock())),
            "x-acs-signature-nonce": uuid.uuid4().hex,
            "content-md5": content_md5(body),
        }
        token = snapshot.get_security_token()
        if token:
            signed["x-acs-security-token"] = token
        parts = urlsplit(url)
        request = DaraRequest()
        request.method = method.upper()
        request.pathname = (parts.path or "/").replace("$", "%24")
        request.query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        request.headers = dict(signed)
        authorization = SignatureUtils.get_authorization(
            request,
            SIGNATURE_ALGORITHM,
            "",
            snapshot.get_access_key_id(),
            snapshot.get_access_key_secret(),
        )
        return {**headers, **signed, "authorization": authorization}
