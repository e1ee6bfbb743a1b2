"""How a part of the simulated world reaches the API server, as a pod does in a real cluster."""

from __future__ import annotations

import ssl
from dataclasses import dataclass


@dataclass(frozen=True)
class InClusterAccess:
    """How a part of the simulated world reaches the API server, as a pod does through its
    service account: the URL, the CA to trust and the bearer token (both None on plain http)."""

    url: str
    ssl: ssl.SSLContext | None = None
    token: str | None = None

    def headers(self) -> dict[str, str]:
        return {} if self.token is None else {"Authorization": f"Bearer {self.token}"}
