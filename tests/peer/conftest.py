"""Fixtures of the peer suite: one `sim serve` per test module, and the official `kubernetes`
client built from the kubeconfig it wrote, as a user of that package would build it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client, config

from tests.peer.serving import Served, sim_serve

# simulated seconds per real second: a pod's default 30 s grace period passes in 0.6 s
SPEED = "50"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A bare `sim serve` (API server, scheduler, kubelet, one Ready 4-vCPU demo node)."""
    with sim_serve(tmp_path_factory.mktemp("serve"), "--speed", SPEED) as running:
        yield running


@pytest.fixture
def api_client(served: Served) -> Iterator[client.ApiClient]:
    """An ApiClient from the served kubeconfig (built per test, after the proxy variables are
    cleared: the client's Configuration reads them when it is made)."""
    with config.new_client_from_config(config_file=str(served.kubeconfig)) as api:
        yield api


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def namespace(core: client.CoreV1Api) -> str:
    """A fresh namespace for one test, so tests sharing a server never see each other's pods."""
    name = f"peer-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name
