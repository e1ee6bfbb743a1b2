"""OpenAPI v2 and v3 documents generated from the field tables: `kubectl explain`, kubectl's
client-side validation of a List (read from /openapi/v2 as protobuf), the round trip
`kubectl get -o yaml | kubectl apply -f -`, and content negotiation."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from agent.sim.kube.api_fields import CORE, TYPES
from agent.sim.kube.kubeconfig import write_kubeconfig
from agent.sim.kube.openapi import openapi_v2, openapi_v3
from agent.sim.kube.openapi_proto import document_message
from agent.sim.world.nodes import ready_node
from tests.support.waiting import store_until


@pytest.fixture
def run_kubectl(sim_cluster, tmp_path, clean_env):
    """`await run_kubectl(*args, stdin=...)` → (exit code, stdout, stderr)."""
    kubeconfig = write_kubeconfig(sim_cluster.url, tmp_path / "kubeconfig")

    async def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            "kubectl", "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path / "cache"), *args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=clean_env,
        )  # fmt: skip
        out, err = await asyncio.wait_for(
            process.communicate(stdin.encode() if stdin is not None else None), 30
        )
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    return run


async def test_kubectl_explain_pod_spec_tolerations(run_kubectl):
    """The Toleration fields with their types and descriptions, from the v3 document."""
    code, out, err = await run_kubectl("explain", "pod.spec.tolerations")
    assert code == 0, err
    assert "FIELD: tolerations <[]Toleration>" in out
    for field, kind in (("effect", "string"), ("key", "string"), ("operator", "string"),
                        ("tolerationSeconds", "integer"), ("value", "string")):  # fmt: skip
        assert f"{field}\t<{kind}>" in out
        assert TYPES[CORE + "Toleration"].field(field).description.split()[0] in out


async def test_get_pods_yaml_applies_back_with_validation(sim_cluster, run_kubectl):
    """`kubectl get pods -o yaml | kubectl apply -f -` validates the List against /openapi/v2
    and applies it, without --validate=false."""
    store = sim_cluster.store
    store.create("nodes", ready_node("n1"))
    for name in ("a", "b"):
        store.create(
            "pods",
            {"metadata": {"name": name, "labels": {"app": "x"}},
             "spec": {"containers": [{"name": "c", "image": "busybox", "args": ["sleep", "1"],
                                      "resources": {"requests": {"cpu": "100m"}}}]}},
        )  # fmt: skip
    await store_until(
        store,
        lambda: all(
            store.get("pods", n, namespace="default")["status"]["phase"] == "Running"
            for n in ("a", "b")
        ),
    )
    code, listed, err = await run_kubectl("get", "pods", "-o", "yaml")
    assert code == 0, err
    code, out, err = await run_kubectl("apply", "-f", "-", stdin=listed)
    assert code == 0, err
    assert "pod/a configured" in out and "pod/b configured" in out
    assert "error validating" not in err


async def test_client_side_validation_names_unknown_fields_and_wrong_types(run_kubectl):
    """A List whose pod has a field the tables do not know, and a string where an integer
    belongs: kubectl refuses it before sending, naming both."""
    bad = """apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: bad}
  spec:
    containers: [{name: c, image: busybox, bogus: 1}]
    tolerations: [{key: k, operator: Exists, tolerationSeconds: "soon"}]
"""
    code, _, err = await run_kubectl("apply", "-f", "-", stdin=bad)
    assert code != 0
    assert 'unknown field "bogus" in io.k8s.api.core.v1.Container' in err
    assert 'Toleration.tolerationSeconds: got "string", expected "integer"' in err


async def test_openapi_v2_content_negotiation(sim_cluster):
    """JSON for JSON clients, the protobuf kubectl asks for, 406 for anything else."""
    async with aiohttp.ClientSession() as session:
        async with session.get(sim_cluster.url + "/openapi/v2") as response:
            assert response.status == 200
            document = await response.json()
        assert document["swagger"] == "2.0"
        assert document["definitions"][CORE + "Pod"]["x-kubernetes-group-version-kind"] == [
            {"group": "", "kind": "Pod", "version": "v1"}
        ]
        protobuf = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
        async with session.get(
            sim_cluster.url + "/openapi/v2", headers={"Accept": protobuf}
        ) as response:
            assert response.status == 200
            assert response.content_type.endswith("+protobuf")
            assert await response.read() == document_message(openapi_v2())
        async with session.get(
            sim_cluster.url + "/openapi/v2", headers={"Accept": "application/xml"}
        ) as response:
            assert response.status == 406
            assert (await response.json())["reason"] == "NotAcceptable"


def test_every_table_field_is_in_the_documents():
    """The documents are the tables: each field of each reachable type is a property, and a
    required field is listed as required."""
    schemas = openapi_v3("api/v1")["components"]["schemas"]
    definitions = openapi_v2()["definitions"]
    for name in (
        CORE + "Pod",
        CORE + "PodSpec",
        CORE + "Container",
        CORE + "Toleration",
        CORE + "Node",
    ):
        typedef = TYPES[name]
        for document in (schemas, definitions):
            assert set(document[name]["properties"]) == {f.name for f in typedef.fields}
            assert document[name].get("required", []) == list(typedef.required)
    assert schemas[CORE + "PodSpec"]["required"] == ["containers"]
    assert openapi_v3("apis/nope/v1") is None
