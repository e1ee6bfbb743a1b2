"""Ray's own KubeRay node provider (the `ray` package, pinned in pyproject's `ray` extra) against
`sim serve --tls`, pointed at it only through the environment the info JSON gives.

End to end (the first test): `sim serve --scenario seed --tls --ray-autoscaler external`, so the
seed's RayCluster is installed and the KubeRay operator stand-in reconciles it, but nothing in
the simulator patches it. Ray's v1 provider is the only autoscaler: it scales the worker group up
(json-patch of `replicas`); the operator stand-in creates the worker pods (its labels, a
controller ownerReference to the CR's uid); they go Pending, Unschedulable on the full system
node; `python -m agent run --sim-info` raises the node pool and they end Running on its new
nodes. Then the provider scales down by name (`replicas` with `scaleStrategy.workersToDelete`),
the operator deletes exactly those pods, and the provider clears `workersToDelete`.

The other tests run against a bare `sim serve --tls`, where no operator runs and the test plays
it (creating and deleting the Ray pods by hand), for what the operator-backed test cannot show:
that the provider holds off while a named worker still runs (the stand-in deletes it within
`ray.operatorDelaySeconds`, too soon to observe), the cap at `maxReplicas`, a missing CR, the
refusals (no client certificate, plain http), and autoscaler v2's `KubeRayProvider`: launch and
terminate through the CR, and idle termination: `spec.idleSuspend` by merge patch (policy
Suspend), or a resourceVersion-tested json-patch adding its finalizer, then DELETE (policy
Delete). Every outcome is asserted on the CR and pods as the API server has them.

Run it with `ray` installed (`.ci/run` installs `.[dev,ray]`):
    python -m pytest tests/peer/test_ray_kuberay_provider.py
or with another interpreter that has `ray`: RAY_PYTHON=/path/to/python. Without `ray` the tests
fail and say so; RAY_ACK_SCALER_SKIP_RAY=1 skips them instead, for a machine that does not
want `ray`.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client, config

from tests.peer.serving import Served, sim_serve
from tests.support.builders import build_test_raycluster
from tests.support.network import client_environment
from tests.support.processes import REPO

DRIVER = Path(__file__).with_name("kuberay_provider_driver.py")
GROUP = "cpu-workers"
ANSWER_SECONDS = 60.0
SKIP_VARIABLE = "RAY_ACK_SCALER_SKIP_RAY"
# the seed scenario's RayCluster (agent/sim/scenarios/seed.yaml)
SEED_NAMESPACE, SEED_CLUSTER, SEED_GROUP = "default", "myfirst-ray-cluster", "workergroup"
# simulated seconds per real second for the seed: its nodes boot in 60-90 s, 2.4-3.6 s here
SEED_SPEED = "25"
WAIT_SECONDS = 60.0  # real time for the world to reach a state the test waits for

T = TypeVar("T")


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
def providers(ray_python: str) -> Iterator[Callable[..., Provider]]:
    """Starts driver subprocesses (closed after the test) in the `env` given."""
    started: list[Provider] = []

    def start(
        env: dict[str, str], namespace: str, cluster: str, *, v2: bool = False, **extra: str
    ) -> Provider:
        version = ("v2",) if v2 else ()
        started.append(Provider(ray_python, {**env, **extra}, namespace, cluster, *version))
        return started[-1]

    yield start
    for provider in started:
        provider.close()


@pytest.fixture
def start_provider(providers: Callable[..., Provider], served: Served) -> Callable[..., Provider]:
    """A provider pointed at the bare server (`env` replaces the info file's)."""

    def start(
        namespace: str,
        cluster: str,
        env: dict[str, str] | None = None,
        *,
        v2: bool = False,
        **extra: str,
    ) -> Provider:
        chosen = served.info["kubernetes"]["rayKubeRayProvider"]["env"] if env is None else env
        return providers(chosen, namespace, cluster, v2=v2, **extra)

    return start


def eventually(probe: Callable[[], T | None], what: str, seconds: float = WAIT_SECONDS) -> T:
    """`probe()`'s first truthy answer, polled in real time; fails after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        answer = probe()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:g} s: {what}")
        time.sleep(0.05)


class Agent:
    """`python -m agent run --sim-info FILE` in a subprocess, its log in a file."""

    def __init__(self, info_file: Path, log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "agent", "run", "--sim-info", str(info_file),
                 "--ops-address", "127.0.0.1:0"],
                stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=client_environment(),
            )  # fmt: skip

    def lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def stop(self) -> int:
        """SIGINT, as Ctrl-C; its exit code."""
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise


@pytest.fixture
def seed_served(tmp_path: Path) -> Iterator[Served]:
    """The seed scenario over TLS with Ray's autoscaler left outside the simulator."""
    with sim_serve(
        tmp_path / "seed", "--scenario", "seed", "--tls", "--ray-autoscaler", "external",
        "--speed", SEED_SPEED,
    ) as running:  # fmt: skip
        yield running


class Operator:
    """What the KubeRay operator does for the bare-server tests, by hand: Ray pods carrying its
    labels (ray.io/cluster, ray.io/group, ray.io/node-type, ray.io/is-ray-node) and a controller
    ownerReference to the RayCluster (kuberay ray-operator/controllers/ray/common/pod.go), spec
    from the group's template; named like its pods (`<cluster>-head-xxxxx`,
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


WANTED = 6  # workers asked for: the seed's system node holds 2 beside the head, the pool the rest


def test_the_operator_and_the_agent_follow_rays_own_provider(seed_served, providers, tmp_path):
    """Ray's v1 provider alone scales the seed's RayCluster; the operator stand-in's pods
    follow it, and the agent serves those that cannot be scheduled."""
    with config.new_client_from_config(config_file=str(seed_served.kubeconfig)) as api:
        core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)

        def raycluster() -> dict[str, Any]:
            return dict(
                custom.get_namespaced_custom_object(
                    "ray.io", "v1", SEED_NAMESPACE, "rayclusters", SEED_CLUSTER
                )
            )

        def group() -> dict[str, Any]:
            [only] = raycluster()["spec"]["workerGroupSpecs"]
            return dict(only)

        def pods(node_type: str) -> dict[str, client.V1Pod]:
            selector = f"ray.io/cluster={SEED_CLUSTER},ray.io/node-type={node_type}"
            found = core.list_namespaced_pod(SEED_NAMESPACE, label_selector=selector).items
            return {pod.metadata.name: pod for pod in found}

        def workers_when(
            condition: Callable[[dict[str, client.V1Pod]], bool],
        ) -> Callable[[], dict[str, client.V1Pod] | None]:
            def probe() -> dict[str, client.V1Pod] | None:
                found = pods("worker")
                return found if condition(found) else None

            return probe

        [head] = eventually(
            lambda: [n for n, pod in pods("head").items() if pod.status.phase == "Running"],
            "the operator's head pod Running",
        )
        uid = raycluster()["metadata"]["uid"]
        # Nobody in the simulator scales: the stand-in autoscaler, at its first period (at
        # start), would have asked for workers for the seed's 15 queued tasks by now.
        assert group()["replicas"] == 0
        assert pods("worker") == {}
        nodes_before = {node.metadata.name for node in core.list_node().items}

        agent = Agent(seed_served.info_file, tmp_path / "agent.log")
        try:
            env = seed_served.info["kubernetes"]["rayKubeRayProvider"]["env"]
            provider = providers(
                env, SEED_NAMESPACE, SEED_CLUSTER, RAY_HEAD_POD_NAME=head, KUBERAY_CRD_VER="v1"
            )
            assert provider.first == {"ready": True}
            assert workers(provider.ok(op="nodes")) == []

            # up: the provider's json-patch of replicas, then the operator's pods
            provider.ok(op="create", group=SEED_GROUP, count=WANTED)
            assert group()["replicas"] == WANTED
            made = eventually(
                workers_when(lambda found: len(found) >= WANTED),
                f"{WANTED} worker pods from the operator",
            )
            assert len(made) == WANTED
            for pod in made.values():
                labels = pod.metadata.labels
                assert labels["ray.io/group"] == SEED_GROUP
                assert (labels["ray.io/is-ray-node"], labels["ray.io/node-type"]) == (
                    "yes",
                    "worker",
                )
                [owner] = pod.metadata.owner_references
                assert (owner.kind, owner.name, owner.uid, owner.controller) == (
                    "RayCluster", SEED_CLUSTER, uid, True
                )  # fmt: skip

            # some do not fit beside the head: the scheduler says so, the agent grows the pool
            def unschedulable() -> list[str]:
                return [
                    name
                    for name, pod in pods("worker").items()
                    for condition in pod.status.conditions or ()
                    if (condition.type, condition.status, condition.reason)
                    == ("PodScheduled", "False", "Unschedulable")
                ]

            eventually(unschedulable, "a worker pod Pending, Unschedulable")
            running = eventually(
                workers_when(
                    lambda found: all(p.status.phase == "Running" for p in found.values())
                ),
                "every worker pod Running",
            )
            assert sorted(running) == sorted(made)
            hosts = {pod.spec.node_name for pod in running.values()}
            assert hosts - nodes_before, f"no worker on a new node: {hosts}"
            assert any("outcome=scaled" in line for line in agent.lines()), agent.lines()
        finally:
            code = agent.stop()
        assert code == 0, agent.lines()
        assert not [line for line in agent.lines() if "[warning" in line or "[error" in line]

        # down by name: replicas and workersToDelete in one patch
        names = sorted(made)
        assert workers(provider.ok(op="nodes")) == names
        named, kept = names[:2], names[2:]
        provider.ok(op="terminate", nodes=named)
        asked = group()
        assert asked["replicas"] == WANTED - 2
        assert sorted(asked["scaleStrategy"]["workersToDelete"]) == named

        # the operator deletes exactly those: the rest stay, none is created in their place
        def only_named_deleted() -> dict[str, client.V1Pod] | None:
            found = pods("worker")
            left = {n for n, pod in found.items() if not pod.metadata.deletion_timestamp}
            return found if left == set(kept) else None

        eventually(only_named_deleted, "the named workers deleted, the others left")
        # terminating pods no longer count: the provider clears the list
        eventually(lambda: provider.ok(op="safe_to_scale")["safe"], "the provider safe to scale")
        cleared = group()
        assert (cleared["replicas"], cleared["scaleStrategy"]["workersToDelete"]) == (
            WANTED - 2,
            [],
        )
        assert workers(provider.ok(op="nodes")) == kept
        eventually(lambda: sorted(pods("worker")) == kept, "the named workers gone")


def test_the_provider_holds_off_while_named_workers_still_run(api, namespace, start_provider):
    """While a worker named in workersToDelete is still there (not terminating), safe_to_scale
    is False and the list stays; once it terminates the provider clears it. The operator is
    played by hand: the stand-in deletes named workers too soon to observe the first half."""
    name = "raycluster-tls"
    create_raycluster(api, namespace, name, replicas=2, max_replicas=10)
    operator = Operator(api, namespace, name)
    head = operator.create_pod("head")
    first, second = operator.create_pod("worker"), operator.create_pod("worker")
    provider = start_provider(namespace, name, RAY_HEAD_POD_NAME=head, KUBERAY_CRD_VER="v1")
    assert workers(provider.ok(op="nodes")) == sorted([first, second])

    provider.ok(op="terminate", nodes=[second])
    assert operator.group()["scaleStrategy"]["workersToDelete"] == [second]
    assert provider.ok(op="safe_to_scale") == {"safe": False}
    group = operator.group()
    assert (group["replicas"], group["scaleStrategy"]["workersToDelete"]) == (1, [second])

    operator.delete_pods([second])
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
