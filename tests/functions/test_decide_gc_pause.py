"""`decide` pauses the cyclic garbage collector for the call and restores it, because a decision
makes no reference cycles for it to find (functions/scaleout/decision.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from functions import decide
from functions.errors import InvalidRequest
from tests.support.decide_requests import eci, pod, pool, request


@pytest.fixture(autouse=True)
def _gc_restored() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def _request() -> dict[str, object]:
    pods = [pod(f"a-{i}", cpu="3", memory="3Gi") for i in range(20)]
    pods += [pod(f"b-{i}", cpu="500m", memory="6Gi") for i in range(20)]
    pools = [pool("np-1", max_size=20), pool("np-2", cpu="7800m", memory="30Gi", max_size=3)]
    return request(pods, pools, eci_config=eci(max_pods=5), maxNewNodesPerDecision=8)


@pytest.mark.parametrize("enabled", [True, False])
def test_decide_leaves_the_collector_as_it_found_it(enabled: bool) -> None:
    seen: list[bool] = []
    if enabled:
        gc.enable()
    else:
        gc.disable()
    gc.callbacks.append(lambda phase, info: seen.append(gc.isenabled()))
    try:
        reply = decide(_request())
    finally:
        gc.callbacks.pop()
    assert reply["actions"], "the request asks for capacity"
    assert gc.isenabled() is enabled
    assert seen == [], "no collection runs during the call"


def test_decide_restores_the_collector_when_the_request_is_invalid() -> None:
    gc.enable()
    with pytest.raises(InvalidRequest):
        decide({"schema": "decide/v1", "pods": "not a list"})
    assert gc.isenabled()


def test_a_decision_leaves_no_cyclic_garbage() -> None:
    """What makes the pause free: nothing a decision drops waits for the collector."""
    gc.collect()
    gc.disable()
    decide(_request())
    assert gc.collect() == 0
