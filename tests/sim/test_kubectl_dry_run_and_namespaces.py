"""kubectl, as a user types it, against a whole simulated cluster (scheduler and kubelet):
every server-side dry-run form (run, create, label, delete, delete -l, diff) changes nothing;
`get all`, `delete pods -l`, `get --raw /version/` work; `delete ns` shows Terminating until the
namespace's pods are gone; `apply --server-side` fails with the server's clear 415 message."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.sim.cli import demo_node
from tests.support.processes import outcome
from tests.support.waiting import store_until

POD_YAML = """apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: x}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
"""
HELD_LEASE = """apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: held
  finalizers: [example.com/hold]
spec: {}
"""


@pytest.fixture
def run(kubectl):
    """`await run(*args)` → (exit code, stdout, stderr), bounded in time."""

    async def call(*args: str) -> tuple[int, str, str]:
        return await outcome(await kubectl(*args))

    return call


@pytest.fixture
def node(sim_cluster) -> None:
    """`sim serve`'s Ready demo node, for the pods to run on."""
    sim_cluster.store.create("nodes", demo_node())


@pytest.fixture
async def web(sim_cluster, node, run, tmp_path) -> tuple[Path, str]:
    """Pod `web` (app=x) created from a file and Running; returns (file, its resourceVersion)."""
    manifest = tmp_path / "web.yaml"
    manifest.write_text(POD_YAML)
    assert (await run("create", "-f", str(manifest)))[0] == 0
    store = sim_cluster.store

    def running() -> bool:
        pod = store.get("pods", "web", namespace="default")
        return (pod.get("status") or {}).get("phase") == "Running"

    await store_until(store, running)
    return manifest, store.get("pods", "web", namespace="default")["metadata"]["resourceVersion"]


def _version(sim_cluster) -> str:
    pod = sim_cluster.store.get("pods", "web", namespace="default")
    return str(pod["metadata"]["resourceVersion"])


async def test_server_dry_runs_change_nothing(sim_cluster, run, web, tmp_path):
    """run/create/label/delete/delete -l --dry-run=server and diff answer, and leave the pod
    and the pod list exactly as they were."""
    manifest, version = web
    code, out, _ = await run("run", "x", "--image=busybox", "--dry-run=server", "-o", "yaml")
    assert code == 0
    assert "name: x" in out and "uid:" in out and "resourceVersion" not in out
    code, out, _ = await run("create", "-f", str(manifest), "--dry-run=server")
    assert code == 1  # a dry run still meets AlreadyExists
    code, out, _ = await run("label", "pod", "web", "a=b", "--dry-run=server")
    assert (code, out.strip()) == (0, "pod/web labeled (server dry run)")
    code, out, _ = await run("delete", "pod", "web", "--dry-run=server")
    assert (code, out.strip()) == (0, 'pod "web" deleted (server dry run)')
    code, out, _ = await run("delete", "pods", "-l", "app=x", "--dry-run=server")
    assert (code, out.strip()) == (0, 'pod "web" deleted (server dry run)')
    changed = tmp_path / "changed.yaml"
    changed.write_text(POD_YAML.replace("{app: x}", "{app: x, tier: web}"))
    code, out, _ = await run("diff", "-f", str(changed))
    assert code == 1  # a difference found
    assert "+    tier: web" in out
    pod = sim_cluster.store.get("pods", "web", namespace="default")
    assert pod["metadata"]["labels"] == {"app": "x"}
    assert "deletionTimestamp" not in pod["metadata"]
    assert _version(sim_cluster) == version
    assert [p["metadata"]["name"] for p in sim_cluster.store.list("pods")[0]] == ["web"]


async def test_get_all_delete_by_label_and_version_path(sim_cluster, run, web):
    """`get all` lists pods (the "all" category); `delete pods -l app=x` deletes them;
    `get --raw /version/` answers."""
    code, out, _ = await run("get", "all")
    assert code == 0 and "web" in out
    code, out, _ = await run("get", "--raw", "/version/")
    assert code == 0 and '"gitVersion"' in out
    code, out, _ = await run("delete", "pods", "-l", "app=x")
    assert (code, out.strip()) == (0, 'pod "web" deleted')
    assert sim_cluster.store.list("pods")[0] == []


async def test_delete_namespace_shows_terminating_until_empty(sim_cluster, node, run, tmp_path):
    """`delete ns --wait=false` returns at once; `get ns` says Terminating while something is
    left (here a Lease a finalizer holds); new pods are refused; its pod goes; once the
    finalizer is dropped the namespace is gone."""
    store = sim_cluster.store
    assert (await run("create", "ns", "doomed"))[0] == 0
    assert (await run("run", "a", "-n", "doomed", "--image=busybox"))[0] == 0
    lease = tmp_path / "lease.yaml"
    lease.write_text(HELD_LEASE)
    assert (await run("create", "-n", "doomed", "-f", str(lease)))[0] == 0
    assert (await run("delete", "ns", "doomed", "--wait=false"))[0] == 0
    code, out, _ = await run("get", "ns", "doomed", "--no-headers")
    assert code == 0 and out.split()[1] == "Terminating"
    code, _, err = await run("run", "b", "-n", "doomed", "--image=busybox")
    assert code == 1
    assert "unable to create new content in namespace doomed because it is being terminated" in err
    await store_until(store, lambda: not store.list("pods", namespace="doomed")[0])
    path = "{.status.conditions[?(@.type=='NamespaceFinalizersRemaining')].message}"
    code, out, _ = await run("get", "ns", "doomed", "-o", f"jsonpath={path}")
    assert code == 0
    assert out == "Some finalizers are remaining: example.com/hold in 1 resource instances"
    unhold = '{"metadata":{"finalizers":null}}'
    code, _, _ = await run("patch", "lease", "held", "-n", "doomed", "--type=merge", "-p", unhold)
    assert code == 0
    code, _, _ = await run("wait", "--for=delete", "ns/doomed", "--timeout=20s")
    assert code == 0


async def test_server_side_apply_is_a_clear_refusal(sim_cluster, run, tmp_path):
    """kubectl reports the server's 415: not served here, use client-side apply."""
    manifest = tmp_path / "web.yaml"
    manifest.write_text(POD_YAML)
    code, _, err = await run("apply", "--server-side", "-f", str(manifest))
    assert code == 1
    assert "server-side apply (application/apply-patch+yaml) is not served" in err
    assert "client-side apply" in err
    assert sim_cluster.store.list("pods")[0] == []
    assert (await run("apply", "-f", str(manifest)))[0] == 0
