"""Keep proxies away from test traffic on 127.0.0.1: the Tea/Darabonba transports, aiohttp (which
kubernetes-asyncio uses) and subprocesses all read proxy variables from the environment."""

from __future__ import annotations

import os

import pytest

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
LOOPBACK = "127.0.0.1,localhost"


def clear_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset every proxy variable for this test and exempt loopback from any that remain."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", LOOPBACK)
    monkeypatch.setenv("no_proxy", LOOPBACK)


def client_environment(**extra: str) -> dict[str, str]:
    """The environment for a client subprocess: ours without any proxy variable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["NO_PROXY"] = env["no_proxy"] = LOOPBACK
    env.update(extra)
    return env
