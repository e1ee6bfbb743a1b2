"""Fixtures of the agent tests: `world`, the simulator and CS emulator the main loop runs on."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.agent_world import World, open_world


@pytest.fixture
def with_eci() -> bool:
    """Whether `world` has the ECI virtual node; parametrize it to turn it on."""
    return False


@pytest.fixture
async def world(with_eci: bool) -> AsyncIterator[World]:
    """A SimCluster with pool np-cpu behind the CS emulator, and the agent's clients for both."""
    async with open_world(eci=with_eci) as opened:
        yield opened
