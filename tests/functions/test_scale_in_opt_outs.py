"""scale-in/v1's node opt-outs: `scaleDownDisabled` (cluster-autoscaler's scale-down-disabled
annotation) keeps a node whatever else holds, and `lastRemovalFailedAt` backs a node off for
`scaleDownDelayAfterFailureSeconds` (cluster-autoscaler's scale-down-delay-after-failure, 3
minutes); both are validated with the path named."""

from __future__ import annotations

from typing import Any

import pytest

from functions.contract import SCALE_DOWN_DISABLED_ANNOTATION
from functions.errors import InvalidRequest
from functions.scalein.decision import scale_in
from tests.support.scale_in_requests import ago, kept, node, pod, removed, request

DISABLED = f'scale-down disabled (annotation {SCALE_DOWN_DISABLED_ANNOTATION}: "true")'


def test_a_disabled_node_stays_even_when_it_would_be_the_first_to_go():
    """Empty and long unneeded, or never Ready past maxProvisionSeconds: kept all the same."""
    reply = scale_in(
        request(
            [
                node("a", scaleDownDisabled=True),
                node("b", scaleDownDisabled=True, ready=False, everReady=False),
                node("c"),
            ]
        )
    )
    assert removed(reply) == ["c"]
    assert kept(reply) == {"a": DISABLED, "b": DISABLED}


def test_a_disabled_node_still_takes_pods_moved_from_a_drained_one():
    """The opt-out is about removal only: it stays a destination."""
    reply = scale_in(
        request(
            [node("a", pod("p", cpu="500m")), node("k", scaleDownDisabled=True)],
            drainNonEmpty=True,
        )
    )
    assert removed(reply) == ["a"]
    assert kept(reply) == {"k": DISABLED}


@pytest.mark.parametrize(
    ("failed", "delay", "verdict"),
    [
        (ago(30), None, "back-off: removing it failed 30s ago (scaleDownDelayAfterFailureSeconds 180)"),
        (ago(179), None, "back-off: removing it failed 179s ago (scaleDownDelayAfterFailureSeconds 180)"),
        (ago(180), None, None),
        (ago(30), 20, None),
        (None, None, None),
    ],
)  # fmt: skip
def test_a_failed_removal_holds_the_node_for_the_delay(
    failed: str | None, delay: float | None, verdict: str | None
) -> None:
    """Kept while now - lastRemovalFailedAt < scaleDownDelayAfterFailureSeconds (default 180)."""
    policy: dict[str, Any] = {} if delay is None else {"scaleDownDelayAfterFailureSeconds": delay}
    reply = scale_in(request([node("a", lastRemovalFailedAt=failed)], **policy))
    if verdict is None:
        assert removed(reply) == ["a"]
    else:
        assert kept(reply) == {"a": verdict}


def test_the_opt_outs_enter_the_decision_id():
    """The same cluster with a node disabled is a different decision."""
    plain = scale_in(request([node("a")]))
    disabled = scale_in(request([node("a", scaleDownDisabled=True)]))
    assert plain["decisionId"] != disabled["decisionId"]


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda r: r["nodes"][0].update(scaleDownDisabled="true"), "nodes[0].scaleDownDisabled"),
        (lambda r: r["nodes"][0].update(lastRemovalFailedAt="soon"), "nodes[0].lastRemovalFailedAt"),
        (lambda r: r["policy"].update(scaleDownDelayAfterFailureSeconds=-1),
         "policy.scaleDownDelayAfterFailureSeconds"),
    ],
)  # fmt: skip
def test_bad_opt_out_fields_are_refused_with_their_path(mutate: Any, path: str) -> None:
    body = request([node("a")])
    mutate(body)
    with pytest.raises(InvalidRequest) as caught:
        scale_in(body)
    assert caught.value.path == path
