"""Fixtures of the agent tests: `world`, the simulator and CS emulator the main loop runs on;
`kube` and `pools`, the agent's Kubernetes and CS clients on a module's own `ack` (EmbeddedAck)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agent.clients.cs import NodePoolClient
from agent.clients.kube import KubeClient
from agent.sim.embedded import EmbeddedAck
from tests.support.agent_world import World, open_world
from tests.support.cluster import pool_client


@pytest.fixture
def with_eci() -> bool:
    """Whether `world` has the ECI virtual node; parametrize it to turn it on."""
    return False


@pytest.fixture
async def world(with_eci: bool) -> AsyncIterator[World]:
    """A SimCluster with pool np-cpu behind the CS emulator, and the agent's clients for both."""
    async with open_world(eci=with_eci) as opened:
        yield opened


@pytest.fixture
async def kube(ack: EmbeddedAck) -> AsyncIterator[KubeClient]:
    """The agent's Kubernetes client on the module's `ack`."""
    client = await KubeClient.connect(api_url=ack.kubernetes_url)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def pools(ack: EmbeddedAck) -> NodePoolClient:
    """The agent's CS client on the module's `ack`."""
    return pool_client(ack)
