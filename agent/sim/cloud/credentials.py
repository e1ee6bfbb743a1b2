"""The AccessKeys the cloud emulators accept: static test keys plus STS credentials they issue.

A `KeyRing` is what the ACS3 verifier consults to turn an AccessKey id (and, for STS, the
security token) into the secret the request must have been signed with. `build_credentials_app`
serves the ring's STS credentials in the `ALIBABA_CLOUD_CREDENTIALS_URI` format that
alibabacloud-credentials reads, so the agent's production credential chain can run offline.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from agent.sim.cloud.cloud_model import CloudError

# Shaped like real keys (LTAI prefix, 30-char secret) but valid nowhere except these emulators.
TEST_ACCESS_KEY_ID = "LTAI5tRaySimulatorTestKey01"
TEST_ACCESS_KEY_SECRET = "SimulatorOnlySecretNotARealKey"

DEFAULT_STS_TTL_SECONDS = 3600.0
_STS_PREFIX = "STS."


def static_test_keys() -> dict[str, str]:
    """The static AccessKey pair every emulator accepts unless told otherwise."""
    return {TEST_ACCESS_KEY_ID: TEST_ACCESS_KEY_SECRET}


@dataclass(frozen=True)
class StsCredential:
    """A temporary credential: signing with it needs the secret *and* the security token."""

    access_key_id: str
    access_key_secret: str
    security_token: str
    expiration: float  # epoch seconds on the issuing clock


class KeyRing:
    """Long-term AccessKeys plus the STS credentials issued from them at runtime."""

    def __init__(self, keys: Mapping[str, str]) -> None:
        self._keys = dict(keys)
        self._sts: dict[str, StsCredential] = {}

    @classmethod
    def of(cls, keys: Mapping[str, str] | KeyRing) -> KeyRing:
        return keys if isinstance(keys, KeyRing) else cls(keys)

    def issue(self, *, now: float, ttl: float = DEFAULT_STS_TTL_SECONDS) -> StsCredential:
        cred = StsCredential(
            access_key_id=_STS_PREFIX + secrets.token_hex(12),
            access_key_secret=secrets.token_urlsafe(24),
            security_token=secrets.token_urlsafe(48),
            expiration=now + ttl,
        )
        self._sts[cred.access_key_id] = cred
        return cred

    def secret_for(self, access_key_id: str, security_token: str | None, *, now: float) -> str:
        """The secret to verify with, or the refusal the gateway would send."""
        if access_key_id in self._keys:
            return self._keys[access_key_id]
        cred = self._sts.get(access_key_id)
        if cred is None:
            raise CloudError(
                404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."
            )
        if not security_token:
            raise CloudError(
                400, "MissingSecurityToken", "SecurityToken is mandatory for this action."
            )
        if not secrets.compare_digest(security_token, cred.security_token):
            raise CloudError(
                400,
                "InvalidSecurityToken.MismatchWithAccessKey",
                "Specified SecurityToken mismatch with the AccessKey.",
            )
        if now >= cred.expiration:
            raise CloudError(
                400, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired."
            )
        return cred.access_key_secret


def format_expiration(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def build_credentials_app(
    ring: KeyRing, *, now: Callable[[], float], ttl: float = DEFAULT_STS_TTL_SECONDS
) -> web.Application:
    """GET /credentials → a fresh STS credential, as a credentials-URI endpoint returns it.

    `now` must be the wall clock the verifiers use (alibabacloud-credentials compares
    `Expiration` with the host's time).

    alibabacloud-credentials refreshes 15 minutes before `Expiration` on the wall clock, so
    `ttl` must stay well above 900 s or every call fetches a new credential.
    """

    async def credentials(_request: web.Request) -> web.Response:
        cred = ring.issue(now=now(), ttl=ttl)
        return web.json_response(
            {
                "Code": "Success",
                "AccessKeyId": cred.access_key_id,
                "AccessKeySecret": cred.access_key_secret,
                "SecurityToken": cred.security_token,
                "Expiration": format_expiration(cred.expiration),
            }
        )

    app = web.Application()
    app.router.add_get("/credentials", credentials)
    return app
