"""Cluster in a box: the agent wired from an EmbeddedAck's `info()` exactly as an operator would
(Kubernetes API, CS and FC emulators, the static test keys), run in the background until the
test stops it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent.app.loop import Agent
from agent.app.settings import AgentConfig, parse_managed_pools
from agent.clients.cs import NodePoolClient
from agent.clients.cs import build_sdk_client as build_cs
from agent.sim.cloud.credentials import TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET
from agent.sim.embedded import EmbeddedAck
from agent.sim.world.nodepools import POOL_LABEL


def use_test_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """credentials=access-key reads the emulators' static test keys from the environment."""
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", TEST_ACCESS_KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", TEST_ACCESS_KEY_SECRET)


def agent_config(ack: EmbeddedAck, *, speed: float | None = None, **overrides: Any) -> AgentConfig:
    """What an operator would configure from `ack.info()` (the emulators speak plain HTTP). With
    `speed`, the 10 s scale-in interval and 60 s pool refresh are simulated seconds."""
    info = ack.info()
    cs, fc = info["cs"], info["fc"]
    values: dict[str, Any] = dict(
        api_url=info["kubernetes"]["url"],
        cluster_id=cs["clusterId"],
        region=cs["regionId"],
        cs_endpoint=f"http://{cs['endpoint']}",
        credentials="access-key",
        decider="local",
        fc_endpoint=f"http://{fc['endpoint']}",
        fc_service=fc["service"],
        fc_function=fc["function"],
        batch_idle_seconds=0.05,
        batch_max_seconds=0.5,
        managed_pools=parse_managed_pools(cs["managedPools"]),
    )
    if speed is not None:
        values.update(scale_in_interval_seconds=10.0 / speed, pool_refresh_seconds=60.0 / speed)
    values.update(overrides)
    return AgentConfig(**values)


@contextlib.asynccontextmanager
async def running(agent: Agent) -> AsyncIterator[Agent]:
    """`agent.run` in the background for the block, which must not end it; then stopped the way
    SIGTERM stops it, within 10 s."""
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        yield agent
        assert not task.done() or stop.is_set(), "the agent stopped by itself"
    finally:
        stop.set()
        done, _ = await asyncio.wait({task}, timeout=10)
        if not done:
            raise AssertionError(f"the agent did not stop within 10 s:\n{_stacks()}")
        task.result()


def _stacks() -> str:
    """Where every other task of the loop waits: what a stop that hangs is stuck on."""
    lines: list[str] = []
    for other in asyncio.all_tasks():
        if other is asyncio.current_task():
            continue
        frames = other.get_stack(limit=3)
        where = " <- ".join(f"{f.f_code.co_name}:{f.f_lineno}" for f in reversed(frames))
        lines.append(f"  {other.get_name()}: {where}")
    return "\n".join(sorted(lines))


def pool_nodes(ack: EmbeddedAck, pool_id: str | None = None) -> list[dict[str, Any]]:
    """The nodes ACK's pools booted (all pools, or `pool_id`'s)."""
    nodes, _ = ack.cluster.store.list("nodes")
    labels = [n["metadata"]["labels"] for n in nodes]
    return [
        n
        for n, label in zip(nodes, labels, strict=True)
        if (POOL_LABEL in label if pool_id is None else label.get(POOL_LABEL) == pool_id)
    ]


def pool_client(ack: EmbeddedAck) -> NodePoolClient:
    """The agent's CS client (the official SDK, plain HTTP, the test keys) on `ack`'s emulator,
    with the pool bounds `agent_config(ack)` gives."""
    sdk = build_cs(
        region_id=ack.region_id,
        endpoint=ack.cs_endpoint,
        protocol="http",
        access_key_id=TEST_ACCESS_KEY_ID,
        access_key_secret=TEST_ACCESS_KEY_SECRET,
    )
    return NodePoolClient(sdk, ack.cluster_id, bounds=agent_config(ack).pool_bounds)
