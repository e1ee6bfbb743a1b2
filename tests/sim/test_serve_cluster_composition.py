"""SimCluster's composition: namespaces, plugged-in components started in order, stopped in reverse."""

from __future__ import annotations

import aiohttp
import pytest

from agent.sim.cluster import SimCluster


class Recorder:
    """A component that notes when it starts and stops, and what it could see at start."""

    def __init__(self, name: str, journal: list[str], cluster: SimCluster) -> None:
        self.name = name
        self.journal = journal
        self.cluster = cluster

    async def start(self) -> None:
        self.journal.append(
            f"start {self.name} url={self.cluster.url.startswith('http://127.0.0.1:')}"
        )

    async def stop(self) -> None:
        self.journal.append(f"stop {self.name}")


class Broken(Recorder):
    async def start(self) -> None:
        raise RuntimeError("cannot start")


async def test_components_start_in_order_and_stop_in_reverse():
    """Added parts start after the API is up, in order; they stop in reverse before the server."""
    journal: list[str] = []
    cluster = SimCluster(speed=10, namespaces=["ray"])
    cluster.add(Recorder("pools", journal, cluster))
    cluster.add(Recorder("ray", journal, cluster))
    async with cluster:
        assert journal == ["start pools url=True", "start ray url=True"]
        session = aiohttp.ClientSession(trust_env=False)
        async with session, session.get(f"{cluster.url}/api/v1/namespaces") as response:
            names = {item["metadata"]["name"] for item in (await response.json())["items"]}
        assert {"default", "kube-system", "kube-public", "ray"} <= names
        with pytest.raises(RuntimeError):
            cluster.add(Recorder("late", journal, cluster))
    assert journal[2:] == ["stop ray", "stop pools"]
    with pytest.raises(RuntimeError):
        _ = cluster.url


async def test_a_failed_start_stops_what_had_started():
    """If a part fails to start, the parts before it are stopped and the error surfaces."""
    journal: list[str] = []
    cluster = SimCluster(speed=10)
    cluster.add(Recorder("pools", journal, cluster))
    cluster.add(Broken("eci", journal, cluster))
    with pytest.raises(RuntimeError, match="cannot start"):
        await cluster.start()
    assert journal == ["start pools url=True", "stop pools"]
