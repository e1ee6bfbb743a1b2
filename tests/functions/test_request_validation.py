"""Bad requests are refused with the JSON path that names the problem; oversize is its own error."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from functions import InvalidRequest, RequestTooLarge, decide
from tests.support.decide_requests import eci, pod, pool, request

Edit = Callable[[dict[str, Any]], None]


def _base() -> dict[str, Any]:
    return request(
        [pod(f"u-{i}") for i in range(5)], [pool("np-a"), pool("np-b")], eci_config=eci()
    )


def _set(path: list[Any], value: Any) -> Edit:
    def edit(body: dict[str, Any]) -> None:
        target = body
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return edit


def required_affinity(expression: dict[str, Any]) -> dict[str, Any]:
    """A pod affinity requiring one node selector term with one match expression."""
    term = {"matchExpressions": [expression]}
    required = {"nodeSelectorTerms": [term]}
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}


def _drop(path: list[Any]) -> Edit:
    def edit(body: dict[str, Any]) -> None:
        target = body
        for step in path[:-1]:
            target = target[step]
        del target[path[-1]]

    return edit


@pytest.mark.parametrize(
    ("edit", "path"),
    [
        (_set(["schema"], "decide/v2"), "schema"),
        (_drop(["schema"]), "schema"),
        (_drop(["now"]), "now"),
        (_set(["now"], "yesterday"), "now"),
        (_set(["now"], "2026-13-01T00:00:00Z"), "now"),
        (_set(["pods"], {}), "pods"),
        (_drop(["pools"]), "pools"),
        (_set(["pods", 3], "u-3"), "pods[3]"),
        (_set(["pods", 3, "uid"], ""), "pods[3].uid"),
        (_set(["pods", 3, "uid"], "u-1"), "pods[3].uid"),
        (_drop(["pods", 2, "uid"]), "pods[2].uid"),
        (_set(["pods", 3, "requests", "memory"], "1Gb"), "pods[3].requests.memory"),
        (_set(["pods", 3, "requests", "memory"], "-1"), "pods[3].requests.memory"),
        (_set(["pods", 3, "requests", "cpu"], True), "pods[3].requests.cpu"),
        (_set(["pods", 3, "requests"], ["cpu"]), "pods[3].requests"),
        (_set(["pods", 1, "nodeSelector"], {"gpu": 1}), "pods[1].nodeSelector.gpu"),
        (_set(["pods", 1, "hostNetwork"], "no"), "pods[1].hostNetwork"),
        (_set(["pods", 1, "hostNetwork"], 0), "pods[1].hostNetwork"),
        (_set(["pods", 1, "privileged"], 1), "pods[1].privileged"),
        (_set(["pods", 1, "volumeTypes"], "hostPath"), "pods[1].volumeTypes"),
        (_set(["pods", 1, "tolerations"], {}), "pods[1].tolerations"),
        (
            _set(["pods", 1, "tolerations"], [{"key": "a", "operator": "Maybe"}]),
            "pods[1].tolerations[0].operator",
        ),
        (_set(["pods", 1, "labels"], {"a": 1}), "pods[1].labels.a"),
        (_set(["pods", 1, "annotations"], []), "pods[1].annotations"),
        (_set(["pods", 1, "name"], 7), "pods[1].name"),
        (
            _set(
                ["pods", 4, "affinity"],
                required_affinity({"key": "a", "operator": "Near", "values": []}),
            ),
            "pods[4].affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
            ".nodeSelectorTerms[0].matchExpressions[0].operator",
        ),
        (
            _set(
                ["pods", 4, "affinity"],
                required_affinity({"key": "a", "operator": "Gt", "values": ["x"]}),
            ),
            "pods[4].affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
            ".nodeSelectorTerms[0].matchExpressions[0].values",
        ),
        (_set(["pools", 1, "id"], "np-a"), "pools[1].id"),
        (_set(["pools", 0, "size", "max"], -1), "pools[0].size.max"),
        (_drop(["pools", 0, "size", "max"]), "pools[0].size.max"),
        (_set(["pools", 0, "size", "max"], 2.5), "pools[0].size.max"),
        (_set(["pools", 0, "size", "desired"], 11), "pools[0].size.desired"),
        (_set(["pools", 0, "size", "min"], 11), "pools[0].size.min"),
        (_set(["pools", 0, "allocatable", "cpu"], "lots"), "pools[0].allocatable.cpu"),
        (_drop(["pools", 0, "allocatable"]), "pools[0].allocatable"),
        (_set(["pools", 0, "pricePerHour"], -0.1), "pools[0].pricePerHour"),
        (_drop(["pools", 0, "pricePerHour"]), "pools[0].pricePerHour"),
        (_set(["pools", 0, "bootSeconds"], float("nan")), "pools[0].bootSeconds"),
        (
            _set(["pools", 0, "taints"], [{"key": "a", "effect": "Sometimes"}]),
            "pools[0].taints[0].effect",
        ),
        (_set(["pools", 0, "scalingSince"], "soon"), "pools[0].scalingSince"),
        (_set(["pools", 0, "priority"], "high"), "pools[0].priority"),
        (_set(["eci", "pricePerVcpuSecond"], -1), "eci.pricePerVcpuSecond"),
        (_set(["eci", "maxPodCpu"], "a lot"), "eci.maxPodCpu"),
        (_set(["eci", "enabled"], "yes"), "eci.enabled"),
        (_set(["policy", "strategy"], "cheapest"), "policy.strategy"),
        (_set(["policy", "maxNewNodesPerDecision"], -5), "policy.maxNewNodesPerDecision"),
        (_set(["policy", "expectedRunSeconds"], "600"), "policy.expectedRunSeconds"),
        (_set(["policy"], []), "policy"),
    ],
)
def test_refusal_names_the_path(edit: Edit, path: str) -> None:
    """Each broken field is an InvalidRequest whose path points at it."""
    body = _base()
    edit(body)
    with pytest.raises(InvalidRequest) as caught:
        decide(body)
    assert caught.value.path == path
    error = caught.value.to_json()["error"]
    assert error["code"] == "InvalidRequest" and error["path"] == path and error["message"]


@pytest.mark.parametrize("raw", [None, [], "decide/v1", 3])
def test_request_must_be_an_object(raw: object) -> None:
    """A non-object request is refused at the root path."""
    with pytest.raises(InvalidRequest) as caught:
        decide(raw)  # type: ignore[arg-type]
    assert caught.value.path == ""


def test_first_bad_pod_in_request_order_is_reported() -> None:
    """When several pods share a broken shape, the error names the first of them."""
    body = _base()
    for i in (2, 4):
        body["pods"][i]["requests"] = {"cpu": "one"}
    with pytest.raises(InvalidRequest) as caught:
        decide(body)
    assert caught.value.path == "pods[2].requests.cpu"


def test_too_many_pods_is_request_too_large() -> None:
    """More than 200,000 pods is refused before any per-pod work."""
    body = _base()
    body["pods"] = [body["pods"][0]] * 200_001
    with pytest.raises(RequestTooLarge) as caught:
        decide(body)
    assert caught.value.path == "pods"
    assert caught.value.to_json()["error"]["code"] == "RequestTooLarge"


def test_too_many_pools_is_request_too_large() -> None:
    """More than 1,000 pools is refused."""
    body = _base()
    body["pools"] = [pool(f"np-{i}") for i in range(1001)]
    with pytest.raises(RequestTooLarge) as caught:
        decide(body)
    assert caught.value.path == "pools"


def test_optional_fields_take_their_defaults() -> None:
    """A minimal request (no eci, no policy, bare pods and pools) is decided."""
    body = {
        "schema": "decide/v1",
        "now": "2026-11-29T05:00:00+08:00",
        "pods": [{"uid": "u-1", "requests": {"cpu": "1"}}],
        "pools": [
            {
                "id": "np",
                "allocatable": {"cpu": "2", "memory": "4Gi"},
                "size": {"max": 3},
                "pricePerHour": 0.5,
            }
        ],
    }
    reply = decide(body)
    assert reply["actions"] == [
        {
            "kind": "scale-pool",
            "poolId": "np",
            "fromDesired": 0,
            "toDesired": 1,
            "pods": ["u-1"],
            "reason": "cost: np 0.083/pod·run, the only option that fits",
        }
    ]


def test_unknown_fields_are_ignored() -> None:
    """The contract may add fields: unknown ones change nothing."""
    body = _base()
    extended = copy.deepcopy(body)
    extended["future"] = {"x": 1}
    extended["pods"][0]["qosClass"] = "Burstable"
    extended["pools"][0]["zone"] = "cn-hangzhou-k"
    assert decide(extended)["actions"] == decide(body)["actions"]


def test_too_many_distinct_pod_shapes_is_request_too_large() -> None:
    """Planning cost follows distinct shapes, so a flood of unique shapes is refused, not slow."""
    body = _base()
    body["pods"] = [pod(f"u-{i}", cpu=f"{100 + i}m") for i in range(2001)]
    with pytest.raises(RequestTooLarge) as caught:
        decide(body)
    assert caught.value.path == "pods"
    assert "2001 distinct pod shapes" in caught.value.message


@pytest.mark.parametrize("value", [float("nan"), {1, 2}, object()])
def test_cluster_must_be_plain_json(value: object) -> None:
    """decide() called in-process with non-JSON values in `cluster` refuses them cleanly."""
    body = _base()
    body["cluster"] = {"id": value}
    with pytest.raises(InvalidRequest) as caught:
        decide(body)
    assert caught.value.path == "cluster"


def test_absurdly_nested_values_are_refused() -> None:
    """A structure nested past the interpreter's recursion limit is an InvalidRequest."""
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    body = _base()
    body["pods"][0]["tolerations"] = deep
    body["cluster"] = {"x": deep}
    with pytest.raises(InvalidRequest):
        decide(body)
