"""scale-in/v1 validation: each refusal names the JSON path, with the decide/v1 error types."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from functions.errors import InvalidRequest, RequestTooLarge
from functions.scalein.decision import scale_in
from tests.support.scale_in_requests import node, pod, pool, request


def _valid() -> dict[str, Any]:
    return request([node("a", pod("p")), node("k", pool=None)])


def _refusal(mutate: Any) -> InvalidRequest:
    body = _valid()
    mutate(body)
    with pytest.raises(InvalidRequest) as caught:
        scale_in(body)
    return caught.value


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda r: r.update(schema="decide/v1"), "schema"),
        (lambda r: r.pop("now"), "now"),
        (lambda r: r.update(now="yesterday"), "now"),
        (lambda r: r.pop("nodes"), "nodes"),
        (lambda r: r.update(pools={}), "pools"),
        (lambda r: r.update(cluster=[]), "cluster"),
        (lambda r: r["pools"][0].pop("id"), "pools[0].id"),
        (lambda r: r["pools"].append(pool()), "pools[1].id"),
        (lambda r: r["pools"][0]["size"].pop("desired"), "pools[0].size.desired"),
        (lambda r: r["pools"][0]["size"].update(min=5), "pools[0].size.desired"),
        (lambda r: r["pools"][0]["size"].update(min=-1), "pools[0].size.min"),
        (lambda r: r["pools"][0].update(pricePerHour="cheap"), "pools[0].pricePerHour"),
        (lambda r: r["pools"][0].update(lastScaleUpAt=5), "pools[0].lastScaleUpAt"),
        (lambda r: r["pools"][0].update(allocatable={"cpu": "lots"}), "pools[0].allocatable.cpu"),
        (lambda r: r["nodes"][0].pop("name"), "nodes[0].name"),
        (lambda r: r["nodes"][1].update(name="a"), "nodes[1].name"),
        (lambda r: r["nodes"][0].update(poolId="np-typo"), "nodes[0].poolId"),
        (lambda r: r["nodes"][0].update(instanceId=None), "nodes[0].instanceId"),
        (lambda r: r["nodes"][0].update(ready="yes"), "nodes[0].ready"),
        (lambda r: r["nodes"][0].update(everReady=1), "nodes[0].everReady"),
        (lambda r: r["nodes"][0].pop("createdAt"), "nodes[0].createdAt"),
        (lambda r: r["nodes"][0].update(unschedulable="no"), "nodes[0].unschedulable"),
        (lambda r: r["nodes"][1].pop("allocatable"), "nodes[1].allocatable"),
        (
            lambda r: r["nodes"][0]["allocatable"].update(memory="-1Gi"),
            "nodes[0].allocatable.memory",
        ),
        (lambda r: r["nodes"][0].update(labels={"zone": 1}), "nodes[0].labels.zone"),
        (
            lambda r: r["nodes"][0].update(taints=[{"key": "k", "effect": "Sometimes"}]),
            "nodes[0].taints[0].effect",
        ),
        (lambda r: r["nodes"][0].update(emptySince="2026-13-01T00:00:00Z"), "nodes[0].emptySince"),
        (lambda r: r["nodes"][0].update(underutilizedSince=0), "nodes[0].underutilizedSince"),
        (lambda r: r["nodes"][0].update(pods={}), "nodes[0].pods"),
        (lambda r: r["nodes"][0]["pods"].append("p"), "nodes[0].pods[1]"),
        (lambda r: r["nodes"][0]["pods"][0].pop("uid"), "nodes[0].pods[0].uid"),
        (lambda r: r["nodes"][1]["pods"].append(pod("p")), "nodes[1].pods[0].uid"),
        (lambda r: r["nodes"][0]["pods"][0].update(namespace=7), "nodes[0].pods[0].namespace"),
        (lambda r: r["nodes"][0]["pods"][0].pop("ownerKind"), "nodes[0].pods[0].ownerKind"),
        (
            lambda r: r["nodes"][0]["pods"][0].update(ownerKind="Deployment"),
            "nodes[0].pods[0].ownerKind",
        ),
        (
            lambda r: r["nodes"][0]["pods"][0].update(rayNodeType="driver"),
            "nodes[0].pods[0].rayNodeType",
        ),
        (
            lambda r: r["nodes"][0]["pods"][0].update(pdbBlocked="maybe"),
            "nodes[0].pods[0].pdbBlocked",
        ),
        (lambda r: r["nodes"][0]["pods"][0].update(phase="Sleeping"), "nodes[0].pods[0].phase"),
        (
            lambda r: r["nodes"][0]["pods"][0]["requests"].update(cpu="1x"),
            "nodes[0].pods[0].requests.cpu",
        ),
        (
            lambda r: r["nodes"][0]["pods"][0].update(nodeSelector={"a": None}),
            "nodes[0].pods[0].nodeSelector.a",
        ),
        (
            lambda r: r["nodes"][0]["pods"][0].update(
                affinity={
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {"matchExpressions": [{"key": "z", "operator": "Near"}]}
                            ]
                        }
                    }
                }
            ),
            "nodes[0].pods[0].affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
            ".nodeSelectorTerms[0].matchExpressions[0].operator",
        ),
        (
            lambda r: r["nodes"][0]["pods"][0].update(tolerations=[{"operator": "Maybe"}]),
            "nodes[0].pods[0].tolerations[0].operator",
        ),
        (
            lambda r: r.update(policy={"scaleDownUnneededSeconds": -1}),
            "policy.scaleDownUnneededSeconds",
        ),
        (
            lambda r: r.update(policy={"scaleDownUtilizationThreshold": 1.5}),
            "policy.scaleDownUtilizationThreshold",
        ),
        (
            lambda r: r.update(policy={"scaleDownDelayAfterAddSeconds": "2m"}),
            "policy.scaleDownDelayAfterAddSeconds",
        ),
        (lambda r: r.update(policy={"maxNodesPerDecision": 2.5}), "policy.maxNodesPerDecision"),
        (lambda r: r.update(policy={"drainNonEmpty": "true"}), "policy.drainNonEmpty"),
        (lambda r: r.update(policy={"maxProvisionSeconds": True}), "policy.maxProvisionSeconds"),
    ],
)
def test_refusal_names_the_path(mutate: Any, path: str) -> None:
    """A malformed field is refused with InvalidRequest at its JSON path."""
    assert _refusal(mutate).path == path


def test_not_an_object() -> None:
    """A list or a string is not a request."""
    with pytest.raises(InvalidRequest) as caught:
        scale_in([])  # type: ignore[arg-type]
    assert caught.value.path == ""


def test_error_object_shape() -> None:
    """to_json() gives the contract's error object."""
    error = _refusal(lambda r: r["nodes"][0]["pods"][0]["requests"].update(cpu="1x"))
    assert error.to_json()["error"]["code"] == "InvalidRequest"
    assert error.to_json()["error"]["path"] == "nodes[0].pods[0].requests.cpu"


def test_more_than_20000_nodes_is_too_large() -> None:
    """20,001 nodes is RequestTooLarge at `nodes`, before any node is read."""
    body = _valid()
    body["nodes"] = [{}] * 20_001
    with pytest.raises(RequestTooLarge) as caught:
        scale_in(body)
    assert caught.value.path == "nodes"


def test_defaults_fill_what_is_absent() -> None:
    """Minimal node and pod fields are enough; node allocatable defaults to the pool's."""
    body = {
        "schema": "scale-in/v1",
        "now": "2026-11-29T05:00:00Z",
        "pools": [
            {
                "id": "np",
                "size": {"desired": 1},
                "pricePerHour": 1,
                "allocatable": {"cpu": "4", "memory": "16Gi"},
            }
        ],
        "nodes": [
            {
                "name": "n",
                "poolId": "np",
                "instanceId": "i-n",
                "ready": True,
                "createdAt": "2026-11-29T04:00:00Z",
                "emptySince": "2026-11-29T04:00:00Z",
                "pods": [{"uid": "d", "ownerKind": "DaemonSet"}],
            }
        ],
    }
    reply = scale_in(copy.deepcopy(body))
    assert [entry["node"] for entry in reply["remove"]] == ["n"]


def test_unknown_fields_are_ignored() -> None:
    """Fields the contract may add later do not break today's decision."""
    body = _valid()
    body["future"] = {"x": 1}
    body["nodes"][0]["zone"] = "cn-hangzhou-k"
    body["nodes"][0]["pods"][0]["priority"] = 5
    assert scale_in(body)["schema"] == "scale-in/v1"
