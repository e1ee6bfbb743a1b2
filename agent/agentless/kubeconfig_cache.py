"""The reconcile function's way into the API server: a temporary kubeconfig from the CS API
(DescribeClusterUserKubeconfig, authorised by RAM for the function's role), kept on the warm
instance's disk and reused until shortly before it expires.

The function has no service account and no in-cluster address; a temporary kubeconfig is ACK's
way to hand a RAM identity cluster access (its RBAC is what that identity was granted). Asking for
one per invocation would add a CS round trip to every wake-up and count against CS's throttling,
so an instance asks again only `margin_seconds` before the expiration CS stated (on the wall
clock, as CS states it). An expiration that cannot be read is not cached at all.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from agent.clients.cs import UserKubeconfig

# ACK's range is 15..4320 minutes; an hour outlives any warm instance's idle reclaim by far.
DEFAULT_DURATION_MINUTES = 60
DEFAULT_MARGIN_SECONDS = 300.0


class IssuesKubeconfigs(Protocol):
    async def describe_user_kubeconfig(
        self, *, temporary_duration_minutes: int | None = None, private_ip: bool = False
    ) -> UserKubeconfig: ...


@dataclass(frozen=True)
class _Entry:
    path: Path
    expires_at: float


def expiry_of(text: str) -> float | None:
    """Epoch seconds of CS's RFC 3339 `expiration`; None when absent or unreadable."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class KubeconfigCache:
    """One instance's kubeconfig: `path(cs)` returns a file valid for a while yet."""

    def __init__(
        self,
        *,
        directory: str | None = None,
        duration_minutes: int = DEFAULT_DURATION_MINUTES,
        margin_seconds: float = DEFAULT_MARGIN_SECONDS,
        private_ip: bool = True,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """`private_ip`: the API server's internal endpoint (a function in the cluster's VPC).
        `directory` defaults to a folder of this cache's own under the temp dir (FC: /tmp)."""
        self._directory = directory or tempfile.mkdtemp(prefix="ray-ack-scaler-")
        self._duration = duration_minutes
        self._margin = margin_seconds
        self._private_ip = private_ip
        self._wall_clock = wall_clock
        self._entry: _Entry | None = None
        self.fetches = 0

    async def path(self, cs: IssuesKubeconfigs) -> str:
        entry = self._entry
        if entry is not None and self._wall_clock() < entry.expires_at - self._margin:
            return str(entry.path)
        issued = await cs.describe_user_kubeconfig(
            temporary_duration_minutes=self._duration, private_ip=self._private_ip
        )
        self.fetches += 1
        path = self._write(issued.config)
        expires = expiry_of(issued.expiration)
        self._entry = None if expires is None else _Entry(path, expires)
        return str(path)

    def _write(self, text: str) -> Path:
        # Owner-only, written whole then renamed: a concurrent invocation on the same instance
        # reads the old file or the new one, never half of one.
        fd, tmp = tempfile.mkstemp(prefix="kubeconfig-", dir=self._directory)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        target = Path(tmp).with_name("ray-ack-scaler-kubeconfig")
        os.replace(tmp, target)
        return target
