"""kubectl against the API server alone: server-side Tables for get (-A, nodes, -o wide), plain
JSON for -o json, create/apply from a file, delete, and errors printed from Status bodies."""

from __future__ import annotations

import asyncio
import json

import pytest

from agent.sim.kube.kubeconfig import write_kubeconfig
from tests.support.processes import outcome

NODE = "cn-hangzhou.172.16.0.17"


@pytest.fixture
def run_kubectl(api_server, tmp_path, clean_env):
    """`await run_kubectl(*args)` → (exit code, stdout, stderr), bounded in time."""
    kubeconfig = write_kubeconfig(api_server.url, tmp_path / "kubeconfig")

    async def run(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            "kubectl", "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path / "cache"), *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=clean_env,
        )  # fmt: skip
        return await outcome(process)

    return run


@pytest.fixture
def world(api_server):
    """A Ready node, a Running pod on it, and a Pending pod in another namespace."""
    store = api_server.store
    store.create(
        "nodes",
        {
            "metadata": {"name": NODE, "labels": {"node-role.kubernetes.io/worker": ""}},
            "spec": {},
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}],
                "nodeInfo": {
                    "kubeletVersion": "v1.31.1-aliyun.1",
                    "osImage": "Alibaba Cloud Linux 3",
                },
                "addresses": [{"type": "InternalIP", "address": "172.16.0.17"}],
            },
        },
    )
    store.create(
        "pods",
        {
            "metadata": {"name": "head"},
            "spec": {
                "containers": [{"name": "ray-head", "image": "rayproject/ray"}],
                "nodeName": NODE,
            },
            "status": {
                "phase": "Running",
                "podIP": "10.0.0.5",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {"name": "ray-head", "ready": True, "restartCount": 1, "state": {"running": {}}}
                ],
            },
        },
        namespace="default",
    )
    store.create("namespaces", {"metadata": {"name": "ray"}})
    store.create(
        "pods",
        {
            "metadata": {"name": "worker"},
            "spec": {"containers": [{"name": "w", "image": "rayproject/ray"}]},
        },
        namespace="ray",
    )
    return store


def rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


async def test_get_pods_all_namespaces(world, run_kubectl):
    """`get pods -A` prints a NAMESPACE column and READY/STATUS/RESTARTS from pod status."""
    code, out, err = await run_kubectl("get", "pods", "-A")
    assert code == 0, err
    table = rows(out)
    assert table[0] == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert [r[:5] for r in table[1:]] == [
        ["default", "head", "1/1", "Running", "1"],
        ["ray", "worker", "0/1", "Pending", "0"],
    ]


async def test_get_nodes(world, run_kubectl):
    """`get nodes` prints STATUS Ready, ROLES from node-role labels and the kubelet version."""
    code, out, err = await run_kubectl("get", "nodes")
    assert code == 0, err
    table = rows(out)
    assert table[0] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert table[1][:3] == [NODE, "Ready", "worker"] and table[1][4] == "v1.31.1-aliyun.1"


async def test_get_pod_wide(world, run_kubectl):
    """`get pod -o wide` adds IP, NODE, NOMINATED NODE and READINESS GATES."""
    code, out, err = await run_kubectl("get", "pod", "-o", "wide")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].split() == [
        "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE", "READINESS", "GATES",
    ]  # fmt: skip
    assert lines[1].split()[5:] == ["10.0.0.5", NODE, "<none>", "<none>"]


async def test_get_pod_json(world, run_kubectl):
    """`get pod NAME -o json` prints the stored pod."""
    code, out, err = await run_kubectl("get", "pod", "head", "-o", "json")
    assert code == 0, err
    pod = json.loads(out)
    assert (pod["kind"], pod["metadata"]["name"], pod["spec"]["nodeName"]) == ("Pod", "head", NODE)


async def test_create_apply_and_delete_from_file(api_server, run_kubectl, tmp_path):
    """`create -f`, then `apply -f` on the same manifest, then `delete pod` removes the unbound pod."""
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: fromfile\n  labels: {app: demo}\n"
        "spec:\n  containers:\n  - name: c\n    image: busybox\n"
    )
    code, out, err = await run_kubectl("create", "-f", str(manifest))
    assert (code, out.strip()) == (0, "pod/fromfile created"), err
    manifest.write_text(manifest.read_text().replace("app: demo", "app: demo2"))
    code, out, err = await run_kubectl("apply", "-f", str(manifest))
    assert code == 0, err
    assert api_server.store.get("pods", "fromfile", namespace="default")["metadata"]["labels"] == {
        "app": "demo2"
    }
    code, out, err = await run_kubectl("delete", "pod", "fromfile")
    assert (code, out.strip()) == (0, 'pod "fromfile" deleted'), err
    assert api_server.store.list("pods")[0] == []


async def test_errors_come_from_status_bodies(world, run_kubectl):
    """kubectl prints the Status message: NotFound, and the field selector error."""
    code, _, err = await run_kubectl("get", "pod", "ghost")
    assert code != 0
    assert 'Error from server (NotFound): pods "ghost" not found' in err
    code, _, err = await run_kubectl("get", "pods", "--field-selector", "spec.bogus=1")
    assert code != 0
    assert "field label not supported: spec.bogus" in err


async def test_get_events_columns(api_server, run_kubectl):
    """`get events` prints LAST SEEN, TYPE, REASON, OBJECT and MESSAGE as kubectl does on ACK."""
    api_server.store.create(
        "events",
        {
            "metadata": {"name": "worker.1"},
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "worker"},
            "reason": "TriggeredScaleUp",
            "message": "pod triggered scale-up: [{np-1 0->1 (max: 10)}]",
            "type": "Normal",
            "count": 1,
            "source": {"component": "ray-ack-scaler"},
        },
        namespace="default",
    )
    code, out, err = await run_kubectl("get", "events")
    assert code == 0, err
    header, row = out.strip().splitlines()
    assert header.split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert row.split()[1:5] == ["Normal", "TriggeredScaleUp", "pod/worker", "pod"]
