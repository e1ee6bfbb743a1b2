"""`ray.autoscaler: external` (`sim serve --ray-autoscaler external`): the scenario's RayCluster is
installed and the KubeRay operator stand-in reconciles it, but the simulated Ray autoscaler and
job never patch it, so an autoscaler outside the simulator (Ray's own provider, in
tests/peer/test_ray_kuberay_provider.py) is alone in writing it. The default stays `simulated`."""

from __future__ import annotations

import dataclasses

import pytest

from agent.cli import main
from agent.sim.embedded import EmbeddedAck
from agent.sim.scenario import SCENARIO_DIR, ScenarioError, load_scenario, parse_scenario
from tests.support.waiting import store_until

SEED_RAY = "ray:\n  name: myfirst-ray-cluster\n"


def seed_with(line: str):
    text = (SCENARIO_DIR / "seed.yaml").read_text()
    assert SEED_RAY in text
    return parse_scenario(text.replace(SEED_RAY, SEED_RAY + line, 1), name="external")


def test_the_field_defaults_to_simulated_and_takes_external_only():
    assert load_scenario("seed").ray.autoscaler == "simulated"
    assert seed_with("  autoscaler: external\n").ray.autoscaler == "external"
    with pytest.raises(ScenarioError, match=r"ray\.autoscaler must be one of simulated, external"):
        seed_with("  autoscaler: ray\n")


def test_the_serve_option_needs_a_scenario(capsys):
    assert main(["sim", "serve", "--ray-autoscaler", "external"]) == 2
    assert "--ray-autoscaler need --scenario" in capsys.readouterr().err


async def test_the_raycluster_is_installed_and_reconciled_but_not_scaled():
    """The seed's 15 queued tasks would make the stand-in ask for workers at its first period;
    with the autoscaler external nothing does, over several periods. Replicas set from outside
    still become pods, which the driver follows for its report."""
    seed = load_scenario("seed")
    external = dataclasses.replace(seed, ray=dataclasses.replace(seed.ray, autoscaler="external"))
    async with EmbeddedAck(external, speed=200) as ack:
        store, clock, ray = ack.cluster.store, ack.cluster.clock, ack.world.ray
        namespace, name = seed.ray.namespace, seed.ray.name

        def pods(node_type: str) -> list[str]:
            listed, _ = store.list("pods", namespace=namespace)
            return [
                p["metadata"]["name"]
                for p in listed
                if p["metadata"]["labels"].get("ray.io/node-type") == node_type
            ]

        await store_until(store, lambda: pods("head"))
        started = clock.now()
        await clock.sleep(4 * seed.ray.autoscaler_period_seconds)
        assert clock.now() - started >= 4 * seed.ray.autoscaler_period_seconds
        [group] = store.get("rayclusters", name, namespace=namespace)["spec"]["workerGroupSpecs"]
        assert group["replicas"] == 0
        assert pods("worker") == []
        assert (ray.scale_patches, ray.summary().tasks) == (0, 0)

        def two(cluster: dict) -> None:
            cluster["spec"]["workerGroupSpecs"][0]["replicas"] = 2

        store.mutate("rayclusters", name, two, namespace=namespace)
        await store_until(store, lambda: len(pods("worker")) == 2)
        await store_until(store, lambda: ray.summary().pods_created == 2)
        assert ray.scale_patches == 0
