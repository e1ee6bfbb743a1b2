"""Any JSON value anywhere in a request gives a reply or a DecisionError — never another exception."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions import DecisionError, decide
from tests.support.decide_requests import eci, pod, pool, request

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def _base() -> dict[str, Any]:
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]}
                ]
            }
        }
    }
    pods = [
        pod("u-1"),
        pod(
            "u-2",
            affinity=affinity,
            tolerations=[{"key": "t", "operator": "Exists"}],
            annotations={"ray-ack-scaler/placement": "ecs"},
        ),
    ]
    pools = [
        pool(
            "np-a",
            labels={"tier": "a"},
            taints=[{"key": "t", "value": "v", "effect": "NoSchedule"}],
            desired=1,
            scalingSince="2026-11-29T04:59:00Z",
        )
    ]
    return request(pods, pools, eci_config=eci())


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


PATHS = _paths(_base())[1:]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(where=st.sampled_from(PATHS), value=JSON, delete=st.booleans())
def test_any_value_anywhere_is_a_reply_or_a_decision_error(
    where: tuple[Any, ...], value: Any, delete: bool
) -> None:
    """Replacing or deleting one field never escapes as TypeError, KeyError, ValueError, ..."""
    body = copy.deepcopy(_base())
    parent = body
    for step in where[:-1]:
        parent = parent[step]
    if delete and isinstance(parent, dict):
        del parent[where[-1]]
    else:
        parent[where[-1]] = value
    try:
        reply = decide(body)
    except DecisionError as error:
        assert error.to_json()["error"]["message"]
    else:
        assert reply["schema"] == "decide/v1"
