"""kubectl on `ray.io/v1` RayCluster: create, the CRD's printer columns in `get` (and `get all`,
the CRD's category), `-o yaml`, `patch --type=json` / `--type=merge` / `--subresource=status`,
the strategic-merge refusal, a malformed spec's 422 and a finalizer holding a delete."""

from __future__ import annotations

import asyncio
import json

import pytest

from agent.sim.kube.kubeconfig import write_kubeconfig
from tests.support.builders import build_test_raycluster

NAME = "raycluster-kuberay"


@pytest.fixture
def kubectl(api_server, tmp_path, clean_env):
    """`await kubectl(*args)` → (exit code, stdout + stderr), bounded in time."""
    kubeconfig = write_kubeconfig(api_server.url, tmp_path / "kubeconfig")

    async def run(*args: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            "kubectl", "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path / "cache"), *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=clean_env,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode is not None
        return process.returncode, out.decode()

    return run


@pytest.fixture
async def created(kubectl, tmp_path):
    """The Helm chart's RayCluster, created with `kubectl create -f`."""
    manifest = tmp_path / "raycluster.json"
    manifest.write_text(json.dumps(build_test_raycluster(NAME, replicas=1)))
    code, out = await kubectl("create", "-f", str(manifest))
    assert (code, out.strip()) == (0, f"raycluster.ray.io/{NAME} created")
    return manifest


def rows(out: str) -> list[list[str]]:
    return [line.split() for line in out.strip().splitlines()]


async def test_get_shows_the_crd_columns(kubectl, created):
    code, out = await kubectl("get", "rayclusters")
    assert code == 0
    header, row = rows(out)
    assert " ".join(header) == (
        "NAME DESIRED WORKERS AVAILABLE WORKERS CPUS MEMORY GPUS STATUS AGE"
    )
    assert row[0] == NAME and len(row) == 2  # no status yet: the status columns are blank
    status = (
        '{"status":{"state":"ready","desiredWorkerReplicas":3,"availableWorkerReplicas":2,'
        '"desiredCPU":"4","desiredMemory":"8Gi","desiredGPU":"0"}}'
    )
    code, out = await kubectl(
        "patch", "raycluster", NAME, "--subresource=status", "--type=merge", "-p", status
    )
    assert code == 0, out
    code, out = await kubectl("get", "rayclusters")
    assert rows(out)[1][:7] == [NAME, "3", "2", "4", "8Gi", "0", "ready"]
    code, out = await kubectl("get", "all")
    assert rows(out)[1][:2] == [f"raycluster.ray.io/{NAME}", "3"]


async def test_get_yaml_has_the_defaults(kubectl, created):
    code, out = await kubectl("get", "raycluster", NAME, "-o", "yaml")
    assert code == 0
    assert "apiVersion: ray.io/v1\nkind: RayCluster\n" in out
    assert "  generation: 1\n" in out
    assert "    numOfHosts: 1\n" in out
    assert "status:" not in out


async def test_patch_json_and_merge(kubectl, created):
    replace = '[{"op":"replace","path":"/spec/workerGroupSpecs/0/replicas","value":3}]'
    code, out = await kubectl("patch", "raycluster", NAME, "--type=json", "-p", replace)
    assert (code, out.strip()) == (0, f"raycluster.ray.io/{NAME} patched")
    code, out = await kubectl(
        "patch", "raycluster", NAME, "--type=merge", "-p", '{"spec":{"suspend":true}}'
    )
    assert code == 0, out
    code, out = await kubectl("get", "raycluster", NAME, "-o", "json")
    cluster = json.loads(out)
    assert cluster["spec"]["workerGroupSpecs"][0]["replicas"] == 3
    assert cluster["spec"]["suspend"] is True
    assert cluster["metadata"]["generation"] == 3
    # kubectl's default patch type is strategic merge, which no custom resource takes
    code, out = await kubectl("patch", "raycluster", NAME, "-p", '{"spec":{"suspend":false}}')
    assert code == 1
    assert "application/strategic-merge-patch+json is not supported by ray.io/v1" in out


async def test_apply_again_changes_no_generation(kubectl, created):
    """kubectl apply of a CR is a merge patch replacing the worker group list; the server's
    defaults make it the same spec, so no new generation."""
    code, out = await kubectl("apply", "-f", str(created))
    assert code == 0, out
    code, out = await kubectl("get", "raycluster", NAME, "-o", "jsonpath={.metadata.generation}")
    assert out == "1"


async def test_malformed_spec_is_refused(kubectl, tmp_path):
    body = build_test_raycluster("bad")
    body["spec"]["workerGroupSpecs"][0]["replicas"] = "3"
    del body["spec"]["headGroupSpec"]["template"]
    manifest = tmp_path / "bad.json"
    manifest.write_text(json.dumps(body))
    code, out = await kubectl("create", "-f", str(manifest))
    assert code == 1
    assert out.splitlines() == [
        'The RayCluster "bad" is invalid: ',
        "* spec.headGroupSpec.template: Required value",
        '* spec.workerGroupSpecs[0].replicas: Invalid value: "string": '
        'spec.workerGroupSpecs[0].replicas in body must be of type integer: "string"',
    ]


async def test_finalizer_holds_the_delete(kubectl, created):
    add = '[{"op":"add","path":"/metadata/finalizers","value":["ray.io/gcs-ft-redis-cleanup"]}]'
    code, out = await kubectl("patch", "raycluster", NAME, "--type=json", "-p", add)
    assert code == 0, out
    code, out = await kubectl("delete", "raycluster", NAME, "--wait=false")
    assert code == 0, out
    code, out = await kubectl(
        "get", "raycluster", NAME, "-o", "jsonpath={.metadata.deletionTimestamp}"
    )
    assert code == 0 and out  # still there, marked
    remove = '[{"op":"remove","path":"/metadata/finalizers"}]'
    code, out = await kubectl("patch", "raycluster", NAME, "--type=json", "-p", remove)
    assert code == 0, out
    code, out = await kubectl("get", "rayclusters")
    assert out.strip() == "No resources found in default namespace."


async def test_explain_reads_the_generated_schema(kubectl):
    code, out = await kubectl("explain", "raycluster.spec.workerGroupSpecs")
    assert code == 0, out
    assert "GROUP:      ray.io\nKIND:       RayCluster\nVERSION:    v1\n" in out
    assert "groupName\t<string> -required-" in out
    assert "replicas\t<integer>\n" in out
