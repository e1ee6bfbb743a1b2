"""Authentication for the API server served over TLS (`sim serve --tls`): who a request is.

Modelled on kube-apiserver's authenticators
(https://kubernetes.io/docs/reference/access-authn-authz/authentication/):
- a client certificate that chained to the cluster CA in the TLS handshake (x509 client certs:
  the user is the subject's common name);
- `Authorization: Bearer TOKEN` matching the server's token (a static/service-account token);
- otherwise, with no credentials at all, the request is anonymous (system:anonymous, on by
  default with --anonymous-auth). The default RBAC role system:public-info-viewer lets it read
  /healthz, /livez, /readyz and /version, and nothing else: anything else is refused 403.
A bearer token that does not match is refused 401 Unauthorized ("requests that are rejected by
the authentication methods": an invalid token is not taken as anonymous).

Plain http serves no authentication at all (the default `sim serve`), as before.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

# system:public-info-viewer's nonResourceURLs (the default ClusterRole bound to
# system:unauthenticated): the paths an anonymous request may GET.
PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def authenticator(token: str) -> Any:
    """An aiohttp middleware that lets in a verified client certificate or the bearer `token`."""

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        user = _certificate_user(request)
        if user is None:
            header = request.headers.get("Authorization", "")
            scheme, _, offered = header.partition(" ")
            if header and scheme.lower() == "bearer":
                # compare_digest: the time taken says nothing about how much of the token matched
                if not hmac.compare_digest(offered.strip().encode(), token.encode()):
                    return _status(401, "Unauthorized", "Unauthorized")
                user = "token"
            elif not _public(request):
                return _status(
                    403,
                    "Forbidden",
                    f'forbidden: User "system:anonymous" cannot {request.method.lower()} '
                    f'path "{request.path}"',
                )
        return await handler(request)

    return authenticate


def _certificate_user(request: web.Request) -> str | None:
    """The common name of a client certificate the handshake verified, or None. (With
    CERT_OPTIONAL the ssl module reports a peer certificate only once it chained to the CA.)"""
    transport = request.transport
    certificate = transport.get_extra_info("peercert") if transport is not None else None
    if not certificate:
        return None
    for rdn in certificate.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return ""


def _public(request: web.Request) -> bool:
    return request.method in ("GET", "HEAD") and any(
        request.path == path or request.path.startswith(path + "/") for path in PUBLIC_PATHS
    )


def _status(code: int, reason: str, message: str) -> web.Response:
    return web.json_response(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        },
        status=code,
    )
