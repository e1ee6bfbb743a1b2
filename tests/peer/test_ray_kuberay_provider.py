"""Ray's own KubeRay node provider (the `ray` package, pinned in pyproject's `ray` extra) against
`sim serve --tls`, pointed at it only through the environment the info JSON gives: it reads the
RayCluster, scales a worker group up (json-patch of `replicas`, capped at `maxReplicas`) and down
by name (`replicas` with `scaleStrategy.workersToDelete`), waits while named workers still run,
then clears `workersToDelete`. Autoscaler v2's cloud provider does the same through launch and
terminate, and applies idle termination: `spec.idleSuspend` by merge patch (policy Suspend), or a
resourceVersion-tested json-patch adding its finalizer, then DELETE (policy Delete). Every
outcome is asserted on the CR as the API server has it.

No KubeRay operator runs here: the test plays it, creating and deleting the worker pods the way
the operator would (labels and ownerReference below), so the provider's pod list follows the CR.

Run it with `ray` installed (`.ci/run` installs `.[dev,ray]`):
    python -m pytest tests/peer/test_ray_kuberay_provider.py
or with another interpreter that has `ray`: RAY_PYTHON=/path/to/python. Without `ray` the tests
fail and say so; RAY_ACK_SCALER_SKIP_RAY=1 skips them instead, for a machine that does not
want `ray`.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from tests.peer.serving import Served, sim_serve
from tests.support.builders import build_test_raycluster
from tests.support.network import client_environment

DRIVER = Path(__file__).with_name("kuberay_provider_driver.py")
GROUP = "cpu-workers"
ANSWER_SECONDS = 60.0
SKIP_VARIABLE = "RAY_ACK_SCALER_SKIP_RAY"


@pytest.fixture(scope="module")
def ray_python() -> str:
    """An interpreter that imports Ray's KubeRay node provider: $RAY_PYTHON, or this one."""
    python = os.environ.get("RAY_PYTHON") or sys.executable
    probe = subprocess.run(
        [python, "-c", "import ray.autoscaler._private.kuberay.node_provider"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if probe.returncode != 0:
        if os.environ.get(SKIP_VARIABLE) == "1":
            pytest.skip(f"{SKIP_VARIABLE}=1: Ray's KubeRay provider is not tested")
        pytest.fail(
            f"{python} cannot import Ray's KubeRay node provider: install the `ray` extra "
            f"(pip install -e '.[dev,ray]'), or set RAY_PYTHON to a Python with ray, or "
            f"{SKIP_VARIABLE}=1 to skip.\n{probe.stderr[-2000:]}"
        )
    return python


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # speed 50: a deleted pod's 30 s grace period passes in 0.6 s
    with sim_serve(tmp_path_factory.mktemp("ray-tls"), "--tls", "--speed", "50") as running:
        yield running


@pytest.fixture
def api(served: Served) -> Iterator[client.ApiClient]:
    with config.new_client_from_config(config_file=str(served.kubeconfig)) as api_client:
        yield api_client


@pytest.fixture
def namespace(api: client.ApiClient) -> str:
    name = f"ray-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(api).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
    )
    return name


class Provider:
    """The driver subprocess: one autoscaler step per `ask`, answered on one line."""

    def __init__(
        self, python: str, env: dict[str, str], namespace: str, cluster: str, *version: str
    ) -> None:
        self.process = subprocess.Popen(
            [python, str(DRIVER), namespace, cluster, *version],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=client_environment(**env),
        )  # fmt: skip
        self.first = self._answer()

    def ask(self, **command: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self._answer()

    def ok(self, **command: Any) -> dict[str, Any]:
        answer = self.ask(**command)
        assert "error" not in answer, answer
        return answer

    def _answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], ANSWER_SECONDS)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            self.close()
            assert self.process.stderr is not None
            raise AssertionError(f"no answer from the provider: {self.process.stderr.read()}")
        return dict(json.loads(line))

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def start_provider(ray_python: str, served: Served) -> Iterator[Any]:
    started: list[Provider] = []

    def start(
        namespace: str,
        cluster: str,
        env: dict[str, str] | None = None,
        *,
        v2: bool = False,
        **extra: str,
    ) -> Provider:
        chosen = served.info["kubernetes"]["rayKubeRayProvider"]["env"] if env is None else env
        version = ("v2",) if v2 else ()
        started.append(Provider(ray_python, {**chosen, **extra}, namespace, cluster, *version))
        return started[-1]

    yield start
    for provider in started:
        provider.close()


class Operator:
    """What the KubeRay operator does for these tests, by hand: Ray pods carrying its labels
    (ray.io/cluster, ray.io/group, ray.io/node-type, ray.io/is-ray-node) and a controller
    ownerReference to the RayCluster (kuberay ray-operator/controllers/ray/common/pod.go),
    spec from the group's template; named like its pods (`<cluster>-head-xxxxx`,
    `<cluster>-<group>-worker-xxxxx`)."""

    def __init__(self, api: client.ApiClient, namespace: str, name: str) -> None:
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.namespace, self.name = namespace, name

    def cluster(self) -> dict[str, Any]:
        return dict(
            self.custom.get_namespaced_custom_object(
                "ray.io", "v1", self.namespace, "rayclusters", self.name
            )
        )

    def group(self) -> dict[str, Any]:
        [group] = self.cluster()["spec"]["workerGroupSpecs"]
        return dict(group)

    def create_pod(self, kind: str) -> str:
        cluster = self.cluster()
        if kind == "head":
            group, template = "headgroup", cluster["spec"]["headGroupSpec"]["template"]
            name = f"{self.name}-head-{uuid.uuid4().hex[:5]}"
        else:
            group, template = GROUP, self.group()["template"]
            name = f"{self.name}-{GROUP}-worker-{uuid.uuid4().hex[:5]}"
        labels = {
            "ray.io/cluster": self.name,
            "ray.io/group": group,
            "ray.io/node-type": kind,
            "ray.io/is-ray-node": "yes",
            "app.kubernetes.io/created-by": "kuberay-operator",
        }
        owner = {
            "apiVersion": "ray.io/v1",
            "kind": "RayCluster",
            "name": self.name,
            "uid": cluster["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": labels, "ownerReferences": [owner]},
            "spec": template["spec"],
        }
        self.core.create_namespaced_pod(self.namespace, body)
        return name

    def delete_pods(self, names: list[str]) -> None:
        for name in names:
            self.core.delete_namespaced_pod(name, self.namespace)


def create_raycluster(
    api: client.ApiClient, namespace: str, name: str, spec: Any = None, **fields: Any
) -> None:
    body = build_test_raycluster(name, **fields)
    body["spec"].update(spec or {})
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        "ray.io", "v1", namespace, "rayclusters", body
    )


def workers(answer: dict[str, Any]) -> list[str]:
    return sorted(
        node for node, tags in answer["nodes"].items() if tags["ray-node-type"] == "worker"
    )


def test_the_provider_scales_a_worker_group_up_and_deletes_named_workers(
    api, namespace, start_provider
):
    name = "raycluster-tls"
    create_raycluster(api, namespace, name, replicas=1, max_replicas=10)
    operator = Operator(api, namespace, name)
    head = operator.create_pod("head")
    first = operator.create_pod("worker")

    # as in KubeRay's autoscaler container (ray-operator/controllers/ray/common/pod.go): the head
    # pod's name (the provider then lists pods at resourceVersionMatch=NotOlderThan its version)
    # and the CRD version
    provider = start_provider(namespace, name, RAY_HEAD_POD_NAME=head, KUBERAY_CRD_VER="v1")
    assert provider.first == {"ready": True}
    seen = provider.ok(op="nodes")
    assert seen["nodes"][head]["ray-node-type"] == "head"
    assert seen["nodes"][first]["ray-user-node-type"] == GROUP
    assert workers(seen) == [first]

    # up: one worker exists, two more asked for → replicas 3 (a json-patch replace)
    provider.ok(op="create", group=GROUP, count=2)
    assert operator.group()["replicas"] == 3
    more = [operator.create_pod("worker") for _ in range(2)]
    assert workers(provider.ok(op="nodes")) == sorted([first, *more])

    # down by name: replicas 1 and the two named in workersToDelete, in one patch
    provider.ok(op="terminate", nodes=more)
    group = operator.group()
    assert group["replicas"] == 1
    assert sorted(group["scaleStrategy"]["workersToDelete"]) == sorted(more)

    # the named workers still run: the provider holds off, the list stays
    assert provider.ok(op="safe_to_scale") == {"safe": False}
    assert sorted(operator.group()["scaleStrategy"]["workersToDelete"]) == sorted(more)

    # the operator deletes them (terminating pods no longer count): the provider clears the list
    operator.delete_pods(more)
    assert provider.ok(op="safe_to_scale") == {"safe": True}
    group = operator.group()
    assert (group["replicas"], group["scaleStrategy"]["workersToDelete"]) == (1, [])
    assert workers(provider.ok(op="nodes")) == [first]


def test_the_provider_caps_replicas_at_max_replicas(api, namespace, start_provider):
    name = "raycluster-capped"
    create_raycluster(api, namespace, name, replicas=0, max_replicas=4)
    operator = Operator(api, namespace, name)
    operator.create_pod("head")
    provider = start_provider(namespace, name)
    provider.ok(op="create", group=GROUP, count=20)
    assert operator.group()["replicas"] == 4


def test_a_missing_raycluster_is_the_api_servers_404(namespace, start_provider):
    provider = start_provider(namespace, "no-such-cluster")
    answer = provider.ask(op="nodes")
    assert answer["status"] == 404, answer


def test_the_provider_is_refused_without_the_client_certificate(served, namespace, start_provider):
    """Without a client certificate, Ray falls back to the in-pod token file, which no test
    process has: it fails before any request is sent."""
    env = dict(served.info["kubernetes"]["rayKubeRayProvider"]["env"])
    del env["RAY_KUBERAY_CLIENT_CERT_PATH"], env["RAY_KUBERAY_CLIENT_KEY_PATH"]
    answer = start_provider(namespace, "raycluster-tls", env).ask(op="nodes")
    assert "/var/run/secrets/kubernetes.io/serviceaccount/token" in answer["error"]


def test_the_provider_refuses_a_plain_http_api_server(served, tmp_path, namespace, start_provider):
    """Ray reaches the API only over HTTPS. node_provider.url_from_resource refuses an http://
    host, but a host from the environment never gets there: build_address (ray._raylet) takes
    `http://HOST`, which has a colon, for an IPv6 literal and brackets it, and requests refuses
    the URL it makes. A bare HOST of plain-http `sim serve` is dialled with TLS, which that
    server does not speak. (CA and client certificate from the TLS server, so that the failure
    is the scheme's alone.)"""
    with sim_serve(tmp_path / "plain", "--speed", "50") as plain:
        host, _, port = plain.url.removeprefix("http://").rpartition(":")
        base = {
            **served.info["kubernetes"]["rayKubeRayProvider"]["env"],
            "KUBERNETES_SERVICE_PORT_HTTPS": port,
        }
        as_http = start_provider(
            namespace, "c", {**base, "KUBERNETES_SERVICE_HOST": f"http://{host}"}
        )
        refused = as_http.ask(op="nodes")["error"]
        assert refused.startswith("InvalidURL:") and "'[http:'" in refused, refused
        dialled = start_provider(namespace, "c", {**base, "KUBERNETES_SERVICE_HOST": host})
        answer = dialled.ask(op="nodes")
        assert answer["status"] is None
        assert "SSLError" in answer["error"], answer


def test_the_v2_provider_launches_and_terminates_through_the_cr(api, namespace, start_provider):
    """Autoscaler v2's KubeRayProvider: launch raises `replicas`, terminate names the worker in
    `workersToDelete` with `replicas` one less."""
    name = "raycluster-v2"
    create_raycluster(api, namespace, name, replicas=1, max_replicas=10)
    operator = Operator(api, namespace, name)
    head = operator.create_pod("head")
    first = operator.create_pod("worker")
    provider = start_provider(namespace, name, v2=True, RAY_HEAD_POD_NAME=head)
    seen = provider.ok(op="instances")
    assert seen["instances"][first][:2] == [GROUP, "worker"]
    assert seen["instances"][head][1] == "head"

    assert provider.ok(op="launch", shape={GROUP: 2}, request="launch-1")["errors"] == []
    assert operator.group()["replicas"] == 3
    second = operator.create_pod("worker")
    operator.create_pod("worker")

    answer = provider.ok(op="terminate", ids=[second], request="terminate-1")
    assert answer["errors"] == []
    group = operator.group()
    assert (group["replicas"], group["scaleStrategy"]["workersToDelete"]) == (2, [second])


def test_the_v2_provider_suspends_an_idle_cluster_with_a_merge_patch(
    api, namespace, start_provider
):
    """idleTerminationOptions policy Suspend, no job running: `{"spec":{"idleSuspend":true}}`
    as a merge patch, which the provider reads back from the answer."""
    name = "raycluster-idle"
    idle = {"idleTerminationOptions": {"timeoutSeconds": 0, "policy": "Suspend"}}
    create_raycluster(api, namespace, name, spec=idle, replicas=0)
    operator = Operator(api, namespace, name)
    operator.create_pod("head")
    assert operator.cluster()["spec"].get("idleSuspend") is None
    start_provider(namespace, name, v2=True).ok(op="instances")
    assert operator.cluster()["spec"]["idleSuspend"] is True


def test_the_v2_provider_deletes_an_idle_cluster_behind_its_finalizer(
    api, namespace, start_provider
):
    """Policy Delete: a json-patch that tests metadata.resourceVersion and adds the cleanup
    finalizer, then DELETE; the finalizer holds the CR, marked for deletion."""
    name = "raycluster-gone"
    idle = {"idleTerminationOptions": {"timeoutSeconds": 0, "policy": "Delete"}}
    create_raycluster(api, namespace, name, spec=idle, replicas=0, finalizers=["example.com/keep"])
    operator = Operator(api, namespace, name)
    operator.create_pod("head")
    start_provider(namespace, name, v2=True).ok(op="instances")
    metadata = operator.cluster()["metadata"]
    assert metadata["finalizers"] == [
        "example.com/keep",
        "ray.io/idle-termination-cleanup-finalizer",
    ]
    assert metadata["deletionTimestamp"]
