"""Fixtures every test folder shares; the helpers behind them live in tests.support."""

from __future__ import annotations

import pytest

from tests.support.cluster import use_test_keys
from tests.support.network import clear_proxies


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy variable may route the tests' 127.0.0.1 traffic (SDKs, aiohttp, subprocesses)."""
    clear_proxies(monkeypatch)


@pytest.fixture
def access_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """credentials=access-key reads the emulators' static test keys from the environment."""
    use_test_keys(monkeypatch)
