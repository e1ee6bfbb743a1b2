"""Pods are validated once per distinct raw shape: the cache must never let a bad pod pass as a good one."""

from __future__ import annotations

from typing import Any

import pytest

from functions import InvalidRequest, decide
from tests.support.decide_requests import eci, pod, pool, request


def _pods_after_good_ones(bad: dict[str, Any]) -> list[dict[str, Any]]:
    good = [
        pod(
            f"u-{i}",
            requests={"cpu": 1, "memory": "1Gi"},
            nodeSelector={"a": "b"},
            tolerations=[{"key": "k", "operator": "Exists"}],
        )
        for i in range(3)
    ]
    return [*good, pod("u-bad", **bad)]


@pytest.mark.parametrize(
    ("bad", "path"),
    [
        # True == 1 and hash(True) == hash(1): the cached shape with cpu 1 must not take it.
        (
            {
                "requests": {"cpu": True, "memory": "1Gi"},
                "nodeSelector": {"a": "b"},
                "tolerations": [{"key": "k", "operator": "Exists"}],
            },
            "pods[3].requests.cpu",
        ),
        (
            {
                "requests": {"cpu": 1, "memory": "1Gi"},
                "nodeSelector": {"a": "b"},
                "tolerations": [{"key": "k", "operator": 1}],
            },
            "pods[3].tolerations[0].operator",
        ),
        (
            {
                "requests": {"cpu": 1, "memory": "1Gi"},
                "nodeSelector": {"a": "b"},
                "tolerations": ["k"],
            },
            "pods[3].tolerations[0]",
        ),
        (
            {
                "requests": {"cpu": 1, "memory": "1Gi"},
                "nodeSelector": {"a": ["b"]},
                "tolerations": [{"key": "k", "operator": "Exists"}],
            },
            "pods[3].nodeSelector.a",
        ),
        ({"requests": {"cpu": 1, "memory": ["1Gi"]}}, "pods[3].requests.memory"),
        ({"volumeTypes": "emptyDir"}, "pods[3].volumeTypes"),
    ],
)
def test_a_bad_pod_is_refused_after_good_pods_of_a_similar_shape(
    bad: dict[str, Any], path: str
) -> None:
    """Equal-looking raw values of another type, or unhashable ones, are validated afresh."""
    body = request(_pods_after_good_ones(bad), [pool("np-a")], eci_config=eci())
    with pytest.raises(InvalidRequest) as caught:
        decide(body)
    assert caught.value.path == path


def test_numbers_and_their_text_group_together() -> None:
    """cpu 1, 1.0 and "1" are one shape: the pods share one action and one reason."""
    pods = [
        pod("u-0", requests={"cpu": 1}),
        pod("u-1", requests={"cpu": 1.0}),
        pod("u-2", requests={"cpu": "1"}),
        pod("u-3", requests={"cpu": "1"}, tolerations=[{"key": "k", "tolerationSeconds": [1]}]),
    ]
    reply = decide(request(pods, [pool("np-a")], strategy="pool-first"))
    assert [action["pods"] for action in reply["actions"]] == [["u-0", "u-1", "u-2", "u-3"]]
