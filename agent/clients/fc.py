"""The Function Compute client for FC 2.0 (services hold functions), the only module that imports
alibabacloud_fc_open20210406, plus what both API versions share (`agent.clients.fc3` is FC 3.0).

InvokeFunction (FC 2.0, Sync) with a JSON body and a qualifier, returning the function's reply
bytes or raising `InvocationError` that says whether another attempt could help; and the FC
gateway signature for HTTP triggers with AuthType FUNCTION (the deciders send those requests with
aiohttp: the SDK's own trigger call uses blocking `requests`). Shared with FC 3.0: the `Invoker`
and `RequestSigner` shapes the deciders depend on, `InvocationError` and the mapping of SDK
failures onto it, and credentials — alibabacloud-credentials' default chain unless explicit keys
are given (the emulator).
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from alibabacloud_credentials import models as credential_models
from alibabacloud_credentials.client import Client as CredentialClient
from alibabacloud_fc_open20210406 import models as fc_models
from alibabacloud_fc_open20210406.client import Client as FcSdkClient
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_util import models as util_models

from agent.clients.errors import RemoteCallError
from agent.clients.timeouts import within

DEFAULT_ENDPOINT_TEMPLATE = "{account_id}.{region}.fc.aliyuncs.com"


class InvocationError(RemoteCallError):
    """An invocation that produced no usable reply."""


class Invoker(Protocol):
    """Synchronous invocations of one deployed function (FC 2.0 or FC 3.0)."""

    async def invoke(self, payload: bytes) -> bytes: ...


class RequestSigner(Protocol):
    """Adds an HTTP trigger's authentication headers to one request (FC 2.0 or FC 3.0 form),
    its body's digest included."""

    async def sign(
        self, method: str, url: str, headers: dict[str, str], body: bytes
    ) -> dict[str, str]: ...


def content_md5(body: bytes) -> str:
    """RFC 1864's Content-MD5 of `body` (base64 of its MD5 digest): the body digest FC's own
    signature covers (FC "Signature authentication": CONTENT-MD5 in the string to sign)."""
    return base64.b64encode(hashlib.md5(body).digest()).decode("ascii")


@dataclass(frozen=True)
class FunctionRef:
    """Which deployed function answers: service, function and version/alias ("" = LATEST)."""

    service: str
    function: str
    qualifier: str = ""


def build_credential(
    *, access_key_id: str | None = None, access_key_secret: str | None = None
) -> Any:
    """Explicit AccessKeys (the emulators) or the default chain (RRSA in ACK, env AK locally)."""
    if access_key_id is None:
        return CredentialClient()
    return CredentialClient(
        credential_models.Config(
            type="access_key", access_key_id=access_key_id, access_key_secret=access_key_secret
        )
    )


def build_sdk_client(**options: Any) -> FcSdkClient:
    """The official FC 2.0 client (options: `sdk_config`'s)."""
    return FcSdkClient(sdk_config(**options))


def sdk_config(
    *,
    region_id: str,
    account_id: str = "",
    endpoint: str | None = None,
    protocol: str = "https",
    access_key_id: str | None = None,
    access_key_secret: str | None = None,
    credential: Any = None,
    connect_timeout_seconds: float = 5.0,
    read_timeout_seconds: float = 10.0,
) -> Any:
    """The OpenAPI Config both FC SDK clients (2.0 and 3.0) are built from: the default credential
    chain when no keys are given (RRSA), the documented `<account>.<region>.fc.aliyuncs.com`
    endpoint when none is."""
    if credential is None and access_key_id is None:
        credential = build_credential()
    return open_api_models.Config(
        region_id=region_id,
        endpoint=endpoint
        or DEFAULT_ENDPOINT_TEMPLATE.format(account_id=account_id, region=region_id),
        protocol=protocol,
        access_key_id=access_key_id,
        access_key_secret=access_key_secret,
        credential=credential,
        connect_timeout=int(connect_timeout_seconds * 1000),
        read_timeout=int(read_timeout_seconds * 1000),
    )


class FunctionInvoker:
    """Synchronous invocations of one function over an injected SDK client."""

    def __init__(
        self, sdk: FcSdkClient, function: FunctionRef, *, timeout_seconds: float = 15.0
    ) -> None:
        self._sdk = sdk
        self._function = function
        self._timeout = timeout_seconds

    @property
    def function(self) -> FunctionRef:
        return self._function

    async def invoke(self, payload: bytes) -> bytes:
        request = fc_models.InvokeFunctionRequest(
            body=payload, qualifier=self._function.qualifier or None
        )
        headers = fc_models.InvokeFunctionHeaders(x_fc_invocation_type="Sync", x_fc_log_type="None")
        runtime = _runtime_options()
        try:
            response = await within(
                self._timeout,
                self._sdk.invoke_function_with_options_async(
                    self._function.service, self._function.function, request, headers, runtime
                ),
            )
        except asyncio.TimeoutError:
            raise InvocationError(
                "Timeout", None, f"no reply within {self._timeout}s", retryable=True
            ) from None
        except Exception as exc:
            raise as_invocation_error(exc) from None
        error_type = header_value(response.headers or {}, "x-fc-error-type")
        if error_type:
            # The function ran and raised: the runtime reports it in a 200 with this header.
            raise InvocationError(
                error_type, response.status_code, excerpt(response.body), retryable=False
            )
        return bytes(response.body or b"")


class TriggerSigner:
    """Adds FC's `Authorization: FC ak:signature` (plus Date, Content-MD5 and, for STS, the
    security token) to an HTTP-trigger request, with the FC SDK's own signer.

    The body is signed through its Content-MD5 (`sign_request_with_content_md5`, the SDK's way to
    cover the body), so a changed body no longer matches. FC 2.0's signature has no nonce: what
    tells two signed requests apart is the Date (whole seconds) and the body, so the signer never
    signs the same body twice in one second (a retry waits for the next second) — a gateway that
    refuses replays, as the emulator does, never takes a retry for one.
    """

    def __init__(self, credential: Any) -> None:
        self._credential = credential
        self._last: tuple[str, str] | None = None  # (Date, Content-MD5) of the last signature
        self._lock = threading.Lock()

    async def sign(
        self, method: str, url: str, headers: dict[str, str], body: bytes
    ) -> dict[str, str]:
        # Reading the credential may refresh it over the network (RRSA, credentials URI): off the loop.
        return await asyncio.to_thread(self._sign, method, url, headers, body)

    def _sign(self, method: str, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        from alibabacloud_gateway_fc_util.client import Client as FcGatewaySigner
        from requests import Request

        # The signer reads `content-type` case-sensitively: it must arrive lower-case.
        request = Request(
            method=method, url=url, headers={k.lower(): v for k, v in headers.items()}
        )
        snapshot = CredentialSnapshot(self._credential.get_credential())
        digest = content_md5(body)
        with self._lock:
            now = time.time()
            if self._last == (email.utils.formatdate(now, usegmt=True), digest):
                time.sleep(1.0 - (now % 1.0) + 0.001)
            signed = dict(
                FcGatewaySigner(snapshot).sign_request_with_content_md5(request, digest).headers
            )
            self._last = (signed.get("date", ""), digest)
        return signed


class CredentialSnapshot:
    """One reading of a rotating credential, so id, secret and token all come from the same STS
    pair (the signer asks for them one by one)."""

    def __init__(self, model: Any) -> None:
        self._model = model

    def get_access_key_id(self) -> str:
        return str(self._model.access_key_id)

    def get_access_key_secret(self) -> str:
        return str(self._model.access_key_secret)

    def get_security_token(self) -> str | None:
        return self._model.security_token or None


def _runtime_options() -> Any:
    # The SDK's own retry stays off: the decider's retry and circuit breaker own that policy.
    return util_models.RuntimeOptions(autoretry=False)


def header_value(headers: dict[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def excerpt(body: Any) -> str:
    text = bytes(body or b"")[:300].decode("utf-8", "replace")
    return text


def as_invocation_error(exc: Exception) -> InvocationError:
    status = getattr(exc, "status_code", None)
    code = getattr(exc, "code", None)
    if isinstance(status, int) or (isinstance(code, str) and code):
        code_text = str(code or "Unknown")
        retryable = (
            code_text.startswith("Throttling") or status is None or status >= 500 or status == 429
        )
        return InvocationError(
            code_text,
            status if isinstance(status, int) else None,
            str(getattr(exc, "message", "") or ""),
            retryable=retryable,
        )
    # Transport failures: the SDK's wrapper text may carry the signed request, so keep the type only.
    return InvocationError("NetworkError", None, type(exc).__name__, retryable=True)
