"""`pods[].anticipated` (docs/decide-contract.md): a worker a RayCluster wants that has no pod
yet. Optional and boolean; decided exactly like a pod, so an anticipated worker and the pod
that later replaces it need the same capacity."""

from __future__ import annotations

from typing import Any

import pytest

from functions import InvalidRequest, decide
from tests.support.decide_requests import pod, pool, request


def _request(flags: list[Any]) -> dict[str, Any]:
    pods = []
    for i, flag in enumerate(flags):
        entry = pod(f"u-{i}")
        if flag is not None:
            entry["anticipated"] = flag
        pods.append(entry)
    return request(pods, [pool("np-a", cpu="3900m")])


def _actions(reply: dict[str, Any]) -> list[tuple[str, str, int, int]]:
    return [
        (a["kind"], a.get("poolId", ""), a.get("toDesired", 0), len(a["pods"]))
        for a in reply["actions"]
    ]


def test_anticipated_workers_are_decided_like_pods() -> None:
    """Four workers, two of them anticipated: the same pool raise as for four pods."""
    mixed = decide(_request([None, None, True, True]))
    pods_only = decide(_request([None, None, None, None]))
    assert _actions(mixed) == _actions(pods_only) == [("scale-pool", "np-a", 2, 4)]
    assert sorted(mixed["actions"][0]["pods"]) == ["u-0", "u-1", "u-2", "u-3"]


def test_false_and_null_mean_a_pod() -> None:
    reply = decide(_request([False, None, None]))
    assert _actions(reply) == [("scale-pool", "np-a", 1, 3)]


@pytest.mark.parametrize("bad", ["yes", 1, 0, [], {}])
def test_a_non_boolean_is_refused_with_its_path(bad: Any) -> None:
    with pytest.raises(InvalidRequest) as refused:
        decide(_request([None, bad]))
    assert refused.value.path == "pods[1].anticipated"
    assert "boolean" in str(refused.value)
