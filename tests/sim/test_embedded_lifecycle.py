"""EmbeddedAck as a whole: what it hands out (info, kubeconfig), what a Kubernetes client sees
through them, the scenario overrides, and stopping cleanly — open watches and held FC calls
included — or failing to start without leaving anything behind."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from kubernetes_asyncio import client, config, watch

from agent.clients.fc import build_credential
from agent.clients.fc3 import TriggerSigner
from agent.sim.cloud.credentials import TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET
from agent.sim.embedded import EmbeddedAck
from agent.sim.faults import FaultPlan
from agent.sim.scenario import load_scenario
from tests.support.waiting import store_until

SYSTEM_LABEL = "node-role.ray-ack-scaler.io/system=true"


@pytest.fixture
async def ack() -> AsyncIterator[EmbeddedAck]:
    """The seed scenario's embedded ACK at high speed."""
    async with EmbeddedAck(load_scenario("seed"), speed=200) as running:
        yield running


@contextlib.asynccontextmanager
async def kube_from(kubeconfig: str) -> AsyncIterator[client.CoreV1Api]:
    """CoreV1Api configured from a kubeconfig file, the way a user's tool would be."""
    configuration = client.Configuration()
    await config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    async with client.ApiClient(configuration) as api_client:
        yield client.CoreV1Api(api_client)


def settings(plan: FaultPlan) -> dict[str, object]:
    """A fault plan's settings, without its random generator."""
    return {f.name: getattr(plan, f.name) for f in dataclasses.fields(plan) if f.init}


async def refused(endpoint: str) -> bool:
    """True when nothing listens at "127.0.0.1:PORT" any more."""
    host, _, port = endpoint.rpartition(":")
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 5)
    except OSError:
        return True
    writer.close()
    return False


class TestWhatItHandsOut:
    """What EmbeddedAck hands a client: info with the test keys, a working kubeconfig."""

    async def test_info_has_the_three_sections_with_the_test_keys(self, ack, tmp_path):
        """info() is the issue's JSON: kubernetes, cs and fc on distinct 127.0.0.1 ports, each
        service with its full URL (scheme included) and its bare SDK endpoint; ECI's state."""
        assert ack.info()["kubernetes"]["kubeconfig"] is None
        path = ack.write_kubeconfig(tmp_path / "kube" / "config")
        info = ack.info()
        assert set(info) == {"kubernetes", "cs", "fc", "credentialsUri", "eci"}
        assert info["kubernetes"] == {"url": ack.kubernetes_url, "kubeconfig": str(path)}
        assert info["cs"] == {
            "url": f"http://{ack.cs_endpoint}", "endpoint": ack.cs_endpoint, "regionId": "cn-hangzhou", "clusterId": "c-seed",
            "accessKeyId": TEST_ACCESS_KEY_ID, "accessKeySecret": TEST_ACCESS_KEY_SECRET,
            "managedPools": "np-cpu:0:10",
        }  # fmt: skip
        assert info["fc"] == {
            "url": f"http://{ack.fc_endpoint}", "endpoint": ack.fc_endpoint, "service": "ray-ack-scaler", "function": "decide",
            "accessKeyId": TEST_ACCESS_KEY_ID, "accessKeySecret": TEST_ACCESS_KEY_SECRET,
            "httpTriggerUrl": ack.http_trigger_url,
            "httpTriggerUrlFc2": f"http://{ack.fc_endpoint}/2016-08-15/proxy/ray-ack-scaler/decide/",
        }  # fmt: skip
        # FC 3.0's trigger has a domain of its own on FC: here a port of its own, at its root.
        trigger_host = ack.http_trigger_url.removeprefix("http://").removesuffix("/")
        assert trigger_host.startswith("127.0.0.1:") and trigger_host != ack.fc_endpoint
        ports = {
            ack.kubernetes_url.rpartition(":")[2],
            *(info[s]["endpoint"].rpartition(":")[2] for s in ("cs", "fc")),
        }
        assert len(ports) == 3
        assert all(info[s]["endpoint"].startswith("127.0.0.1:") for s in ("cs", "fc"))
        assert info["credentialsUri"] == ack.credentials_uri
        assert info["eci"] == {"enabled": False, "virtualNode": None}  # seed: ECI off

    async def test_a_kubeconfig_client_sees_the_system_node_and_the_ray_head(self, ack, tmp_path):
        """kubernetes-asyncio, configured from the written kubeconfig, lists the scenario's world."""
        kubeconfig = ack.write_kubeconfig(tmp_path / "config")
        # the KubeRay operator stand-in creates the head a reconcile after the RayCluster
        await store_until(ack.cluster.store, lambda: ack.world.ray.head_name, timeout=10)
        async with kube_from(str(kubeconfig)) as core:
            (node,) = (await core.list_node(label_selector=SYSTEM_LABEL)).items
            assert node.metadata.name.startswith("cn-hangzhou.172.16.")
            heads = (
                await core.list_namespaced_pod("default", label_selector="ray.io/node-type=head")
            ).items
        assert [p.metadata.name for p in heads] == [ack.world.ray.head_name]
        assert heads[0].metadata.labels["ray.io/cluster"] == "myfirst-ray-cluster"


class TestScenarioOverrides:
    """Constructor arguments override the scenario's faults, speed and seed."""

    def test_faults_off_replaces_the_scenario_plan(self):
        """faults=False gives every part one empty plan; by default it is the scenario's."""
        chaos = load_scenario("chaos")
        assert settings(EmbeddedAck(chaos).faults) == settings(chaos.fault_plan())
        assert chaos.fault_plan().watch_cut_every_events is not None
        quiet = EmbeddedAck(chaos, faults=False)
        assert quiet.faults.watch_cut_every_events is None
        assert quiet.faults.cs_throttle_ratio == quiet.faults.fc_error_ratio == 0
        assert quiet.cluster.faults is quiet.faults

    def test_speed_and_seed_override_the_scenario(self):
        """Explicit speed and seed win over the file's; the fault plan follows the seed."""
        seed = load_scenario("seed")
        ack = EmbeddedAck(seed, speed=7, seed=99)
        assert (ack.speed, ack.cluster.clock.speed) == (7.0, 7.0)
        assert (ack.scenario.seed, ack.faults.seed) == (99, 99)
        assert EmbeddedAck(seed).speed == seed.speed


class TestStopping:
    """Stopping ends every watch, held call and task, also when starting failed."""

    async def test_stop_ends_open_watches_and_held_calls_and_leaves_no_tasks(self):
        """An open pod watch and an FC call held by a timeout fault do not hold up the stop."""
        ack = EmbeddedAck(load_scenario("seed"), speed=200, faults=False)
        await ack.start()
        endpoints = [ack.cs_endpoint, ack.fc_endpoint, ack.kubernetes_url.removeprefix("http://")]
        configuration = client.Configuration(host=ack.kubernetes_url)
        seen = asyncio.Event()

        async def watch_pods() -> None:
            async with client.ApiClient(configuration) as api_client:
                stream = watch.Watch().stream(
                    client.CoreV1Api(api_client).list_pod_for_all_namespaces, _request_timeout=30
                )
                async for _event in stream:
                    seen.set()

        watcher = asyncio.create_task(watch_pods())
        ack.faults.fc_timeout_ratio = 1.0
        session = aiohttp.ClientSession(trust_env=False)
        untouched = ack.faults._rng.getstate()
        # The embedded trigger answers signed requests only (authType function, as deployed).
        signer = TriggerSigner(
            build_credential(
                access_key_id=TEST_ACCESS_KEY_ID, access_key_secret=TEST_ACCESS_KEY_SECRET
            )
        )
        signed = await signer.sign("POST", ack.http_trigger_url, {}, b"{}")
        held = asyncio.create_task(session.post(ack.http_trigger_url, data=b"{}", headers=signed))

        async def call_is_held() -> None:
            # The emulator rolls the timeout fault when the call arrives; from then on it holds it.
            while True:
                if ack.faults._rng.getstate() != untouched:
                    return
                await asyncio.sleep(0.01)

        try:
            await asyncio.wait_for(seen.wait(), 10)
            await asyncio.wait_for(call_is_held(), 10)
            await asyncio.wait_for(ack.stop(), 10)
            reply = await asyncio.wait_for(held, 10)
            assert reply.status == 504  # released by the stop, as FC's own timeout
        finally:
            watcher.cancel()
            with contextlib.suppress(BaseException):
                await watcher
            with contextlib.suppress(BaseException):
                (await held).close()
            await session.close()
        assert [await refused(e) for e in endpoints] == [True, True, True]
        leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert leftovers == []

    async def test_a_port_in_use_fails_the_start_and_stops_what_had_started(self):
        """The FC emulator cannot bind: start raises, and the API server and CS emulator are gone."""
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            ack = EmbeddedAck(load_scenario("seed"), speed=200, fc_port=port)
            with pytest.raises(OSError):
                await ack.start()
        with pytest.raises(RuntimeError):
            _ = ack.kubernetes_url
        with pytest.raises(RuntimeError):
            _ = ack.cs_endpoint
        leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert leftovers == []
