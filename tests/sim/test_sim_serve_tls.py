"""`sim serve --tls`: the Kubernetes API over HTTPS with credentials made at start, as kubectl and
the official `kubernetes` client meet it: the kubeconfig's CA and token let them in; a wrong
token is refused 401, no credentials 403 (anonymous, outside the public-info paths), an
untrusted server fails the handshake, and the client certificate is a way in of its own."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config, watch

from tests.peer.serving import Served, sim_serve
from tests.support.network import client_environment
from tests.support.processes import agent_run_until_scaled
from tests.support.processes import sim_serve as sim_serve_async

DEMO_NODE = "cn-hangzhou.172.16.0.10"  # the bare server's one node (agent/sim/cli.py)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with sim_serve(tmp_path_factory.mktemp("tls"), "--tls", "--speed", "50") as running:
        yield running


def kubectl(*args: str, kubeconfig: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), *args],
        capture_output=True, text=True, env=client_environment(), timeout=30, check=False,
    )  # fmt: skip


def variant(served: Served, tmp_path: Path, *, cluster: Any = None, user: Any = None) -> Path:
    """The served kubeconfig with its cluster and/or user entry replaced."""
    document = yaml.safe_load(served.kubeconfig.read_text())
    if cluster is not None:
        document["clusters"][0]["cluster"] = cluster
    if user is not None:
        document["users"][0]["user"] = user
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_the_kubeconfig_and_info_name_https_the_ca_and_the_token(served: Served):
    tls = served.info["kubernetes"]["tls"]
    document = yaml.safe_load(served.kubeconfig.read_text())
    cluster = document["clusters"][0]["cluster"]
    assert served.url.startswith("https://127.0.0.1:")
    assert cluster["server"] == served.url
    assert base64.b64decode(cluster["certificate-authority-data"]) == Path(tls["ca"]).read_bytes()
    assert document["users"][0]["user"] == {"token": Path(tls["token"]).read_text()}
    assert {Path(path).parent for path in tls.values()} == {
        served.kubeconfig.parent / "kubeconfig-tls"
    }
    for path in tls.values():
        assert Path(path).stat().st_mode & 0o077 == 0, path
    env = served.info["kubernetes"]["rayKubeRayProvider"]["env"]
    assert f"https://{env['KUBERNETES_SERVICE_HOST']}:{env['KUBERNETES_SERVICE_PORT_HTTPS']}" == (
        served.url
    )
    assert env["RAY_KUBERAY_CA_CERT_PATH"] == tls["ca"]
    assert (env["RAY_KUBERAY_CLIENT_CERT_PATH"], env["RAY_KUBERAY_CLIENT_KEY_PATH"]) == (
        tls["clientCert"],
        tls["clientKey"],
    )


def test_kubectl_gets_pods_and_nodes_over_https_with_the_kubeconfig(served: Served, tmp_path):
    created = kubectl("run", "tls-probe", "--image=busybox", "--restart=Never",
                      kubeconfig=served.kubeconfig)  # fmt: skip
    assert created.returncode == 0, created.stderr
    pods = kubectl("get", "pods", "--no-headers", kubeconfig=served.kubeconfig)
    assert pods.returncode == 0, pods.stderr
    assert [row.split()[0] for row in pods.stdout.splitlines()] == ["tls-probe"]
    nodes = kubectl("get", "nodes", "--no-headers", kubeconfig=served.kubeconfig)
    assert nodes.returncode == 0, nodes.stderr
    assert nodes.stdout.split()[:2] == [DEMO_NODE, "Ready"]


def test_kubectl_with_a_wrong_token_is_unauthorized(served: Served, tmp_path):
    wrong = variant(served, tmp_path, user={"token": "not-the-token"})
    result = kubectl("get", "pods", kubeconfig=wrong)
    assert result.returncode == 1
    assert "You must be logged in to the server (Unauthorized)" in result.stderr


def anonymous_get(served: Served, path: str) -> tuple[int, dict[str, Any]]:
    """GET with the CA trusted and no credentials (kubectl would prompt for a password)."""
    context = ssl.create_default_context(cafile=served.info["kubernetes"]["tls"]["ca"])
    try:
        with urllib.request.urlopen(served.url + path, context=context, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_anonymous_requests_read_version_but_not_pods(served: Served):
    """No credentials: system:anonymous, which system:public-info-viewer lets read /version and
    nothing else."""
    code, version = anonymous_get(served, "/version")
    assert code == 200
    assert version["gitVersion"].startswith("v1.")
    code, status = anonymous_get(served, "/api/v1/namespaces/default/pods")
    assert (code, status["reason"]) == (403, "Forbidden")
    assert 'User "system:anonymous" cannot' in status["message"]


def test_kubectl_refuses_the_server_without_its_ca(served: Served, tmp_path):
    untrusted = variant(served, tmp_path, cluster={"server": served.url})
    result = kubectl("get", "pods", kubeconfig=untrusted)
    assert result.returncode == 1
    assert "x509: certificate signed by unknown authority" in result.stderr


def test_kubectl_gets_in_with_the_client_certificate_alone(served: Served, tmp_path):
    tls = served.info["kubernetes"]["tls"]
    certified = variant(
        served,
        tmp_path,
        user={"client-certificate": tls["clientCert"], "client-key": tls["clientKey"]},
    )
    result = kubectl("get", "nodes", "-o", "name", kubeconfig=certified)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [f"node/{DEMO_NODE}"]


def test_the_official_client_lists_creates_and_watches_over_https(served: Served):
    """kubernetes.config reads certificate-authority-data (into a temp CA file for urllib3) and
    the token from the kubeconfig, as a user's program would."""
    with config.new_client_from_config(config_file=str(served.kubeconfig)) as api:
        core = client.CoreV1Api(api)
        assert api.configuration.host == served.url
        assert [n.metadata.name for n in core.list_node().items] == [DEMO_NODE]
        body = client.V1Pod(
            metadata=client.V1ObjectMeta(name="client-probe", labels={"probe": "tls"}),
            spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]),
        )
        core.create_namespaced_pod("default", body)
        stream = watch.Watch().stream(
            core.list_namespaced_pod, "default", label_selector="probe=tls", timeout_seconds=5
        )
        first = next(iter(stream))
        assert (first["type"], first["object"].metadata.name) == ("ADDED", "client-probe")


async def test_temporary_credentials_go_when_the_server_stops(clean_env):
    """Without --kubeconfig-out the kubeconfig is a temp file, and the credential directory
    beside it goes with it on SIGTERM."""
    async with sim_serve_async("--tls", env=clean_env, banner_timeout=20) as (process, banner):
        [line] = [line for line in banner if line.startswith("TLS credentials:  ")]
        directory = Path(line.removeprefix("TLS credentials:  ").split(" (")[0])
        assert directory.parent == Path(tempfile.gettempdir())
        listed = await asyncio.to_thread(lambda: sorted(p.name for p in directory.iterdir()))
        assert listed == [
            "ca.crt", "client.crt", "client.key", "token"
        ]  # fmt: skip
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 20) == 0
    assert not await asyncio.to_thread(directory.exists)


async def test_the_agent_scales_a_scenario_served_over_https(tmp_path, clean_env):
    """`sim serve --scenario seed --tls`, then `agent run --sim-info`: the agent's
    kubernetes-asyncio client takes the CA and token from the kubeconfig, watches the pending
    pods over HTTPS and a decision round scales the pool."""
    info_path = tmp_path / "info.json"
    async with sim_serve_async(
        "--scenario", "seed", "--tls", "--speed", "20", "--info-out", str(info_path),
        "--kubeconfig-out", str(tmp_path / "kubeconfig"), env=clean_env, banner_timeout=30,
    ) as (serve, banner):  # fmt: skip
        assert any(line.startswith("Simulated ACK cluster at https://") for line in banner)
        seen = await agent_run_until_scaled(info_path, env=clean_env, timeout=40)
        serve.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(serve.wait(), 30) == 0
    assert not any("[warning" in line or "[error" in line for line in seen), "".join(seen)
